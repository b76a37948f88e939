"""Group commit: shared transactions, and one bad unit never undoes the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from bangfu_bot import db
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.models import conversations
from bangfu_bot.group_commit import GroupCommitter, UnitTimeout
from bangfu_bot.wechat.models import inbound_messages, wechat_users
from tests.broadcasts.test_broadcasts import add_members

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


async def test_a_hung_unit_fails_alone_and_its_batch_mates_commit(database_url: str) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    group = GroupCommitter(engine, window_s=0.05, max_batch=100, unit_timeout_s=0.3)
    group.start()

    async def hangs(conn):  # type: ignore[no-untyped-def]
        await add_user("hung")(conn)
        await asyncio.Event().wait()  # never returns: only the unit time limit ends it

    try:
        units = [add_user("before"), hangs, add_user("after")]
        results = await asyncio.gather(*(group.run(unit) for unit in units),
                                       return_exceptions=True)
    finally:
        await group.close()
    assert results[0] == "before" and results[2] == "after"
    assert isinstance(results[1], UnitTimeout)
    async with engine.connect() as conn:
        stored = set((await conn.execute(select(wechat_users.c.openid))).scalars())
    await engine.dispose()
    assert stored == {"before", "after"}


async def test_the_queue_predicts_its_wait(committer) -> None:  # type: ignore[no-untyped-def]
    group, _ = committer

    def slow(openid: str):  # type: ignore[no-untyped-def]
        async def work(conn):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.02)
            return await add_user(openid)(conn)
        return work

    await asyncio.gather(*(group.run(slow(f"s{n}")) for n in range(5)))
    idle = group.expected_wait_s()
    queued = [asyncio.ensure_future(group.run(slow(f"q{n}"))) for n in range(40)]
    await asyncio.sleep(0)  # queued, not yet taken by the writer
    assert group.expected_wait_s() > 20 * idle  # the webhook sheds on this, not on a timeout
    await asyncio.gather(*queued)


async def test_two_writers_split_a_burst_and_take_turns_running_units(database_url: str) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    sizes: list[int] = []  # the batch sizes, as metrics see them
    group = GroupCommitter(engine, window_s=0.05, max_batch=20, writers=2,
                           on_batch=sizes.append)
    running: list[str] = []  # the units running now, across both writers
    overlaps: list[list[str]] = []

    def unit(openid: str):  # type: ignore[no-untyped-def]
        async def work(conn):  # type: ignore[no-untyped-def]
            running.append(openid)
            await add_user(openid)(conn)  # a statement: the other writer gets to run
            await asyncio.sleep(0.01)
            if len(running) > 1 and running not in overlaps:
                overlaps.append(list(running))
            running.remove(openid)
            return openid
        return work

    group.start()
    try:
        results = await asyncio.gather(*(group.run(unit(f"t{n}")) for n in range(20)))
    finally:
        await group.close()
    assert results == [f"t{n}" for n in range(20)]
    assert await count_users(engine) == 20
    await engine.dispose()
    assert sizes == [10, 10]  # each writer took half the cap
    assert overlaps == []  # units run inside one batch at a time, in turn


# --- the message path: batches of real conversation steps --------------------------------


async def test_concurrent_members_keep_order_and_exactly_once(bot: Any, county: Any) -> None:
    openids = await add_members(bot, county.tree.branch, 12)
    driver = bot.driver("safe")
    steps = ["申请", "取消", "继续", "取消"]
    msg_ids = {(openid, n): 9_000_000 + i * 10 + n for i, openid in enumerate(openids)
               for n in range(len(steps))}

    async def member(openid: str) -> list[str]:
        replies = []
        for n, text in enumerate(steps):
            xml = driver.message_xml(openid, "text", {"Content": text}, msg_ids[(openid, n)])
            # The platform's retry arrives while the first is still under way.
            first, again = await asyncio.gather(driver.send(openid, xml), driver.send(openid, xml))
            assert first.text == again.text
            replies.append(first.text or "")
        return replies

    everyone = await asyncio.gather(*(member(openid) for openid in openids))
    assert bot.services.inbox._committer.batches < 12 * len(steps)  # members shared commits
    for replies in everyone:  # each member's steps in order, whoever shared their batch
        assert "困难" in replies[0] and "先不填了" in replies[1]
        assert replies[2].startswith("接着上次") and "先不填了" in replies[3]
    async with bot.services.engine.connect() as conn:
        handled = (await conn.execute(select(func.count()).select_from(inbound_messages)))
        states = dict((await conn.execute(select(conversations.c.openid, conversations.c.status)
                                          .where(conversations.c.openid.in_(openids)))).all())
    assert handled.scalar() == 12 * len(steps)  # every push once, the retries not again
    assert set(states.values()) == {"paused"} and len(states) == 12


class FailOn:
    """The real bot, except that one member's step is a bug."""

    def __init__(self, real: Any, openid: str) -> None:
        self.real, self.openid = real, openid

    async def handle(self, conn: Any, message: Any, now: Any) -> Any:
        if message.openid == self.openid:
            raise ZeroDivisionError("a bug")
        return await self.real.handle(conn, message, now)


async def test_a_failing_step_does_not_undo_its_batch_mates(start_bot: Any, bot: Any,
                                                            county: Any) -> None:
    openids = await add_members(bot, county.tree.branch, 6)
    failing = await start_bot(bot=FailOn(bot.services.bot, openids[0]), batch_window_ms="200")
    driver = failing.driver()
    deliveries = await asyncio.gather(*(driver.text(openid, "申请") for openid in openids))
    assert failing.services.inbox._committer.batches >= 1
    assert deliveries[0].text == say("apology")
    assert all("困难" in (d.text or "") for d in deliveries[1:])
    async with bot.services.engine.connect() as conn:
        started = set((await conn.execute(select(conversations.c.openid).where(
            conversations.c.flow == "apply"))).scalars())
    assert started == set(openids[1:])


async def test_a_restarted_database_costs_no_unit(committer, database_url: str) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("needs a database server whose connections can be cut")
    group, engine = committer
    await group.run(add_user("before"))  # the writer now keeps a connection
    async with engine.connect() as conn:  # what a server restart does to every connection
        await conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    assert await group.run(add_user("alone")) == "alone"
    results = await asyncio.gather(*(group.run(add_user(f"b{n}")) for n in range(5)))
    assert results == [f"b{n}" for n in range(5)]
    assert await count_users(engine) == 7
