"""Group commit: shared transactions, and one bad unit never undoes the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from bangfu_bot import db
from bangfu_bot.group_commit import GroupCommitter
from bangfu_bot.wechat.models import wechat_users

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def add_user(openid: str, fail: bool = False):  # type: ignore[no-untyped-def]
    async def work(conn):  # type: ignore[no-untyped-def]
        await conn.execute(insert(wechat_users).values(openid=openid, subscribed=True,
                                                       first_seen_at=NOW))
        if fail:
            raise ValueError(f"bad unit {openid}")
        return openid

    return work


@pytest.fixture
async def committer(database_url: str):  # type: ignore[no-untyped-def]
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    group = GroupCommitter(engine, window_s=0.05, max_batch=100)
    group.start()
    yield group, engine
    await group.close()
    await engine.dispose()


async def count_users(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(wechat_users))).scalar()


async def test_units_share_one_transaction(committer) -> None:  # type: ignore[no-untyped-def]
    group, engine = committer
    results = await asyncio.gather(*(group.run(add_user(f"u{n}")) for n in range(20)))
    assert results == [f"u{n}" for n in range(20)]
    assert group.batches == 1
    assert await count_users(engine) == 20


async def test_one_bad_unit_fails_alone(committer) -> None:  # type: ignore[no-untyped-def]
    group, engine = committer
    units = [add_user("good-1"), add_user("bad", fail=True), add_user("good-2")]
    results = await asyncio.gather(*(group.run(unit) for unit in units), return_exceptions=True)
    assert results[0] == "good-1" and results[2] == "good-2"
    assert isinstance(results[1], ValueError)
    async with engine.connect() as conn:
        stored = set((await conn.execute(select(wechat_users.c.openid))).scalars())
    assert stored == {"good-1", "good-2"}


async def test_a_conflict_in_the_batch_does_not_lose_the_others(committer) -> None:  # type: ignore[no-untyped-def]
    group, engine = committer
    await group.run(add_user("taken"))
    units = [add_user("fresh-1"), add_user("taken"), add_user("fresh-2")]
    results = await asyncio.gather(*(group.run(unit) for unit in units), return_exceptions=True)
    assert results[0] == "fresh-1" and results[2] == "fresh-2"
    assert await count_users(engine) == 3
