"""The desk's read side is tested on the ledger tests' county (two townships), with loans
and fund movements added where a test needs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.members.models import organisations
from tests.ledger.test_export import county  # noqa: F401  (the fixture, shared)


@pytest.fixture
async def session(engine: Any) -> AsyncIterator[AsyncSession]:
    """A session as the desk opens one per request."""
    async with AsyncSession(engine) as session:
        yield session


@pytest.fixture
async def baishui(engine: Any, county: Any) -> int:
    """白水镇党委's id (the ledger's county keeps its branch's)."""
    async with engine.connect() as conn:
        parent = await conn.scalar(
            select(organisations.c.parent_id).where(organisations.c.id == county.baishui)
        )
    return int(parent)
