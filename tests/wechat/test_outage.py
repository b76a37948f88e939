"""An outage is an outage: while PostgreSQL refuses connections ("database is not accepting
connections"), pushes are journaled and answered `success`, nobody gets the apology, the log
says so once (no traceback per push), and every member is answered when it returns."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.wechat.test_webhook import CountingBot, stored_pushes, wait_for_texts


async def refuse_connections(bot: Any, refuse: bool) -> None:
    """ALLOW_CONNECTIONS off (and every session cut), or on again, from the admin database."""
    url = bot.services.engine.url
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(
                    f"ALTER DATABASE {url.database} "
                    f"ALLOW_CONNECTIONS {'false' if refuse else 'true'}"
                )
            )
            if refuse:
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": url.database},
                )
    finally:
        await admin.dispose()


async def test_postgresql_refusing_connections_is_waited_out(start_bot: Any, caplog: Any) -> None:
    counting = CountingBot()
    bot = await start_bot(bot=counting, reply_budget_s="0.5")
    if bot.services.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own refusal (SQLite's locked store has its own test)")
    caplog.set_level(logging.INFO)
    await refuse_connections(bot, True)
    try:
        driver = bot.driver("safe")
        deliveries = await asyncio.gather(*(driver.text(f"o-{n}", f"第{n}条") for n in range(6)))
        assert all(d.statuses == [200] and d.body == "success" for d in deliveries)
        assert counting.calls == 0  # nobody was handled, so nobody got the apology
    finally:
        await refuse_connections(bot, False)
    for n in range(6):  # each answered once, as a customer-service message
        texts = await wait_for_texts(bot.api, f"o-{n}", timeout=20)
        assert len(texts) == 1 and texts[0].endswith(f"处理：第{n}条")
    assert await stored_pushes(bot) == 6
    records = [r for r in caplog.records if r.name.startswith("bangfu_bot")]
    assert sum("database unavailable" in r.getMessage() for r in records) == 1
    assert any("database back" in r.getMessage() for r in records)
    assert not any(r.exc_info for r in records)  # no traceback, let alone one per push
