"""Group commit: shared transactions, and one bad unit never undoes the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bangfu_bot import db
from bangfu_bot.conversation import store as dialogues
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.models import conversations
from bangfu_bot.conversation.store import DIALOGUES
from bangfu_bot.dbutil import upsert
from bangfu_bot.group_commit import UNKNOWN, GroupCommitter, Hints, Kind, UnitOfWork, UnitTimeout
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.service import PEOPLE, prefetch_people
from bangfu_bot.wechat.inbox import ANSWERS, prefetch_answers
from bangfu_bot.wechat.models import inbound_messages, wechat_users
from tests.broadcasts.test_broadcasts import add_members
from tests.conversation.chat import answered_later

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def add_user(openid: str, fail: bool = False):  # type: ignore[no-untyped-def]
    async def work(uow):  # type: ignore[no-untyped-def]
        await uow.conn.execute(
            insert(wechat_users).values(openid=openid, subscribed=True, first_seen_at=NOW)
        )
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

    async def hangs(uow):  # type: ignore[no-untyped-def]
        await add_user("hung")(uow)
        await asyncio.Event().wait()  # never returns: only the unit time limit ends it

    try:
        units = [add_user("before"), hangs, add_user("after")]
        results = await asyncio.gather(*(group.run(unit) for unit in units), return_exceptions=True)
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
        async def work(uow):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.02)
            return await add_user(openid)(uow)

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
    group = GroupCommitter(engine, window_s=0.05, max_batch=20, writers=2, on_batch=sizes.append)
    running: list[str] = []  # the units running now, across both writers
    overlaps: list[list[str]] = []

    def unit(openid: str):  # type: ignore[no-untyped-def]
        async def work(uow):  # type: ignore[no-untyped-def]
            running.append(openid)
            await add_user(openid)(uow)  # a statement: the other writer gets to run
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
    msg_ids = {
        (openid, n): 9_000_000 + i * 10 + n
        for i, openid in enumerate(openids)
        for n in range(len(steps))
    }

    async def member(openid: str) -> list[str]:
        replies = []
        for n, step in enumerate(steps):
            xml = driver.message_xml(openid, "text", {"Content": step}, msg_ids[(openid, n)])
            before = len(bot.api.sent_texts(openid))
            # The platform's retry arrives while the first is still under way.
            first, again = await asyncio.gather(driver.send(openid, xml), driver.send(openid, xml))
            answered = {d.text for d in (first, again) if d.text}
            assert len(answered) <= 1, answered  # the retry never gets another answer
            if not answered:  # both acknowledged: the answer came as a pushed message
                answered = {await answered_later(bot, openid, before)}
            replies.append(answered.pop())
        return replies

    everyone = await asyncio.gather(*(member(openid) for openid in openids))
    assert bot.services.inbox._committer.batches < 12 * len(steps)  # members shared commits
    for replies in everyone:  # each member's steps in order, whoever shared their batch
        assert "困难" in replies[0] and "先不填了" in replies[1]
        assert replies[2].startswith("接着上次") and "先不填了" in replies[3]
    async with bot.services.engine.connect() as conn:
        handled = await conn.execute(select(func.count()).select_from(inbound_messages))
        states = dict(
            (
                await conn.execute(
                    select(conversations.c.openid, conversations.c.status).where(
                        conversations.c.openid.in_(openids)
                    )
                )
            ).all()
        )
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


async def test_a_failing_step_does_not_undo_its_batch_mates(
    start_bot: Any, bot: Any, county: Any
) -> None:
    openids = await add_members(bot, county.tree.branch, 6)
    failing = await start_bot(bot=FailOn(bot.services.bot, openids[0]), batch_window_ms="200")
    driver = failing.driver()
    deliveries = await asyncio.gather(*(driver.text(openid, "申请") for openid in openids))
    assert failing.services.inbox._committer.batches >= 1
    assert deliveries[0].text == say("apology")
    assert all("困难" in (d.text or "") for d in deliveries[1:])
    async with bot.services.engine.connect() as conn:
        started = set(
            (
                await conn.execute(
                    select(conversations.c.openid).where(conversations.c.flow == "apply")
                )
            ).scalars()
        )
    assert started == set(openids[1:])


async def test_a_restarted_database_costs_no_unit(committer, database_url: str) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("needs a database server whose connections can be cut")
    group, engine = committer
    await group.run(add_user("before"))  # the writer now keeps a connection
    async with engine.connect() as conn:  # what a server restart does to every connection
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert await group.run(add_user("alone")) == "alone"
    results = await asyncio.gather(*(group.run(add_user(f"b{n}")) for n in range(5)))
    assert results == [f"b{n}" for n in range(5)]
    assert await count_users(engine) == 7


# --- the unit of work: prefetched kinds, one freshness rule, deferred writes -------------

KINDS = {"answer": ANSWERS, "dialogue": DIALOGUES, "person": PEOPLE}
# One write statement per table a kind is read from (matching no row: a write all the same).
WRITES = {
    "inbound_messages": update(inbound_messages)
    .where(inbound_messages.c.id == -1)
    .values(outcome="failed"),
    "conversations": delete(conversations).where(conversations.c.openid == "nobody"),
    "people": update(people).where(people.c.id == -1).values(name="x"),
    "bindings": update(bindings).where(bindings.c.id == -1).values(channel="x"),
    "person_roles": delete(person_roles).where(person_roles.c.person_id == -1),
    "organisations": update(organisations).where(organisations.c.id == -1).values(name="x"),
}


@pytest.fixture
async def message_path(database_url: str):  # type: ignore[no-untyped-def]
    """A committer with the message path's three prefetches, as app.py builds it."""
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    group = GroupCommitter(
        engine,
        window_s=0.05,
        max_batch=100,
        prefetch=[prefetch_answers, dialogues.prefetch, prefetch_people],
    )
    group.start()
    yield group, engine
    await group.close()
    await engine.dispose()


HINT = Hints("o-member", "msg:1")
KEYS = {"answer": "msg:1", "dialogue": "o-member", "person": "o-member"}


def held(uow: UnitOfWork) -> set[str]:
    return {name for name, kind in KINDS.items() if uow.get(kind, KEYS[name]) is not UNKNOWN}


@pytest.mark.parametrize("table", sorted(WRITES))
async def test_every_kind_is_dropped_by_a_write_to_a_table_it_is_read_from(
    message_path, table: str
) -> None:  # type: ignore[no-untyped-def]
    group, _ = message_path
    read_from = {name for name, kind in KINDS.items() if table in kind.tables}
    assert read_from  # every table here is read by a kind

    async def work(uow: UnitOfWork) -> tuple[set[str], set[str]]:
        before = held(uow)
        await uow.conn.execute(WRITES[table])  # seen by the engine's listener
        return before, held(uow)

    before, after = await group.run(work, HINT)
    assert before == set(KINDS)  # all three prefetched, None values included
    assert after == set(KINDS) - read_from  # the same rule, whichever kind it is


async def test_a_deferred_row_becomes_its_keys_value_or_drops_the_kind(message_path) -> None:  # type: ignore[no-untyped-def]
    group, engine = message_path

    async def work(uow: UnitOfWork) -> tuple[Any, Any, set[str]]:
        assert uow.get(ANSWERS, "msg:1") is None and uow.get(DIALOGUES, "o-member") is None
        await uow.defer(
            insert(inbound_messages),
            {
                "dedupe_key": "msg:1",
                "openid": "o-member",
                "msg_type": "text",
                "event": None,
                "created_at": NOW,
                "received_at": NOW,
                "payload": "<xml/>",
                "outcome": "replied",
                "reply_text": "好",
            },
        )
        await uow.defer(
            upsert(uow.conn, conversations, ["openid"], ["status", "state", "updated_at"]),
            {
                "openid": "o-member",
                "flow": None,
                "status": "idle",
                "state": {},
                "started_at": None,
                "updated_at": NOW,
            },
        )
        # PEOPLE is read from four tables, so a deferred row cannot be its value: dropped.
        await uow.defer(
            insert(people),
            {
                "name": "新人",
                "id_number": "110101199001011234",
                "active": True,
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
        answer, dialogue = uow.get(ANSWERS, "msg:1"), uow.get(DIALOGUES, "o-member")
        return answer.reply_text, dialogue.status, held(uow)  # type: ignore[union-attr]

    assert await group.run(work, HINT) == ("好", "idle", {"answer", "dialogue"})
    async with engine.connect() as conn:  # and the rows were written at the flush
        assert (await conn.execute(select(inbound_messages.c.reply_text))).scalar() == "好"


USERS: Kind[Any] = Kind("user", tables=("wechat_users",), key="openid")


async def prefetch_users(uow: UnitOfWork) -> None:
    rows = await uow.conn.execute(
        select(wechat_users).where(wechat_users.c.openid.in_([hint.openid for hint in uow.hints]))
    )
    uow.fill(USERS, {row.openid: row for row in rows})


async def test_a_unit_retried_alone_sees_fresh_data(database_url: str) -> None:
    """A unit's deferred row fails the shared transaction at the flush (as a second
    process's copy of a push record does); its batch-mate, which read that row, is run again
    alone and reads the store afresh, not what the rolled-back transaction held."""
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    group = GroupCommitter(engine, window_s=0.05, prefetch=[prefetch_users])
    group.start()
    seen: list[bool] = []
    await group.run(add_user("o-1"))  # subscribed

    async def adds_again(uow: UnitOfWork) -> None:
        await uow.defer(
            insert(wechat_users),  # o-1 exists: fails at the flush
            {"openid": "o-1", "subscribed": False, "first_seen_at": NOW},
        )

    async def reads(uow: UnitOfWork) -> bool:
        user = uow.get(USERS, "o-1")
        assert user is not UNKNOWN
        seen.append(user.subscribed)
        return bool(user.subscribed)

    try:
        results = await asyncio.gather(
            group.run(adds_again, Hints("o-1")),
            group.run(reads, Hints("o-1")),
            return_exceptions=True,
        )
    finally:
        await group.close()
    assert isinstance(results[0], IntegrityError)
    assert seen == [False, True]  # in the shared transaction; then alone, afresh
    assert results[1] is True
    assert await count_users(engine) == 1
    await engine.dispose()


async def test_outside_a_group_commit_a_unit_of_work_holds_nothing_and_writes_at_once(
    database_url: str,
) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    async with engine.begin() as conn:
        uow = UnitOfWork.of(conn)
        assert uow.get(ANSWERS, "msg:1") is UNKNOWN
        await uow.defer(
            insert(wechat_users), {"openid": "o-now", "subscribed": True, "first_seen_at": NOW}
        )
        assert (await conn.execute(select(func.count()).select_from(wechat_users))).scalar() == 1
    await engine.dispose()


async def test_the_units_of_one_transaction_share_its_unit_of_work(committer) -> None:  # type: ignore[no-untyped-def]
    group, _ = committer

    async def which(uow: UnitOfWork) -> UnitOfWork:
        assert UnitOfWork.of(uow.conn) is uow  # what the chat bot finds from its conn
        return uow

    first, second = await asyncio.gather(group.run(which), group.run(which))
    assert first is second
    assert (await group.run(which)) is not first  # a new transaction, a new one
