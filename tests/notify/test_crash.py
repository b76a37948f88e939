"""A dispatcher killed mid-batch, in-process: each row's call is marked as starting before it
starts and its outcome committed as soon as it returns, so a restart sends again exactly the
rows whose call never started, and only a member's message whose call was under way (it may
or may not have arrived) becomes a to-do for their branch secretary."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from sqlalchemy import event, select, update

from bangfu_bot.members.models import bindings
from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.notify.outbox import DeliveryRules, Dispatcher, status_counts
from bangfu_bot.notify.queue import outbox_row, queue_messages
from bangfu_bot.todos.models import todos
from bangfu_bot.wechat.client import WeChatAPIError
from tests.broadcasts.test_broadcasts import add_members as bulk_members
from tests.county import bind

NOTICE = "12月5日上午九点在镇党委会议室开全体党员大会，请带笔记本，不能来的请向支部书记请假。"
TEMPLATE = "TM-notice-001"
TEMPLATE_KEYS = {"thing1": "thing", "thing2": "thing", "time3": "time"}


@pytest.fixture
async def bot(start_bot: Any) -> Any:
    """Four calls under way at once (32 rows a batch), as in the measured kill."""
    return await start_bot(outbox_concurrency="4")


async def add_members(bot: Any, branch: int, count: int, *, wrote: bool = True) -> list[str]:
    """Bound members of a branch who follow the account (and wrote within 48 hours)."""
    openids = await bulk_members(bot, branch, count, wrote=wrote)
    for openid in openids:
        bot.api.follow(openid)
        if wrote:
            bot.api.user_wrote(openid)
    return openids


async def queue_notice(bot: Any, openids: list[str]) -> None:
    async with bot.services.engine.begin() as conn:
        await queue_messages(
            conn,
            [
                outbox_row(
                    key=f"notice:{openid}",
                    openid=openid,
                    kind="notice",
                    content=NOTICE,
                    reason="test",
                    now=bot.clock.now(),
                    urgent=True,
                )
                for openid in openids
            ],
        )


async def by_openid(bot: Any) -> dict[str, Any]:
    async with bot.services.engine.connect() as conn:
        return {
            row.openid: row
            for row in await conn.execute(select(outbox).where(outbox.c.kind == "notice"))
        }


class FreezesAfter:
    """The WeChat client of a process that freezes: the first `calls` calls go through,
    every later one hangs (it started, and nobody will ever know how it ended)."""

    def __init__(self, client: Any, calls: int, refuse: dict[str, int] | None = None) -> None:
        self._client = client
        self._left = calls
        self._refuse = refuse or {}  # openid: errcode its call that goes through answers
        self.started: list[str] = []  # openids whose call started, in order
        self.hung = 0

    async def _call(self, method: str, **kwargs: Any) -> Any:
        self.started.append(kwargs["openid"])
        if self._left <= 0:
            self.hung += 1
            await asyncio.Event().wait()
        self._left -= 1
        if kwargs["openid"] in self._refuse:
            raise WeChatAPIError(
                errcode=self._refuse[kwargs["openid"]], errmsg="injected", endpoint=method
            )
        return await getattr(self._client, method)(**kwargs)

    async def send_text(self, **kwargs: Any) -> Any:
        return await self._call("send_text", **kwargs)

    async def send_template(self, **kwargs: Any) -> Any:
        return await self._call("send_template", **kwargs)


async def kill_mid_batch(
    bot: Any, calls: int, batches: int = 2, refuse: dict[str, int] | None = None
) -> FreezesAfter:
    """Another dispatcher process claims `batches` batches, gets `calls` calls through and
    freezes with every slot holding a call; then it is killed (its task cancelled: with no
    next claim under way, that writes nothing, just as kill -9 would not)."""
    services = bot.services
    rules = DeliveryRules.from_settings(services.settings)
    client = FreezesAfter(services.client, calls, refuse)
    doomed = Dispatcher(
        engine=services.engine, client=cast(Any, client), clock=bot.clock, rules=rules
    )
    running = asyncio.create_task(doomed.send_due(limit=batches * max(32, 8 * rules.concurrency)))
    deadline = time.monotonic() + 60  # a ceiling: a busy machine takes its time
    while client.hung < rules.concurrency and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert client.hung == rules.concurrency, "the doomed dispatcher did not get that far"
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    return client


async def test_a_notice_one_by_one_killed_mid_batch(
    bot: Any, county: Any, chat: Any, capsys: Any
) -> None:
    """The measured kill in-process: 100 members, concurrency 4. Only the calls under way
    (at most the concurrency) are in doubt; each of those is a to-do for the branch
    secretary. Every call that returned was committed as it did, batch recorded or not."""
    staff = chat("o-sun")
    await bind(staff, "孙丽", county.staff_number)
    await bot.stop_dispatcher()  # this process sends only after the "restart"
    members = await add_members(bot, county.tree.branch, 100)
    await queue_notice(bot, members)

    frozen = await kill_mid_batch(bot, calls=40)
    at_kill = await by_openid(bot)
    # 40 calls went through and 4 hung; the rest of what was claimed never started (on
    # SQLite two batches of 32 are claimed by then; on PostgreSQL, with no write lock
    # between the claim and the calls, more), and no batch was recorded at its end.
    completed, hung = set(frozen.started[:40]), set(frozen.started[40:])
    assert len(hung) == DeliveryRules.from_settings(bot.services.settings).concurrency == 4
    assert {openid: at_kill[openid].status for openid in completed} == dict.fromkeys(
        completed, "sent"
    )  # each committed as its call returned
    async with bot.services.engine.connect() as conn:
        tried = list(await conn.execute(select(outbox_attempts)))
    assert sorted((a.outbox_id, a.channel, a.errcode) for a in tried) == sorted(
        (at_kill[openid].id, "custom", 0) for openid in completed
    )
    in_flight = {openid for openid, row in at_kill.items() if row.status == "sending"}
    started = {openid for openid in frozen.started if openid in in_flight}
    assert started == hung and len(in_flight) >= len(hung)
    assert {openid for openid in in_flight if at_kill[openid].calling_at} == hung

    await bot.services.dispatcher.send_due()  # before the claim is stale: the rows never
    # claimed go; those left claimed wait
    assert bot.api.sent_texts().count(NOTICE) == 100 - len(in_flight)
    assert {o for o, row in (await by_openid(bot)).items() if row.status == "sending"} == in_flight
    bot.clock.advance(minutes=6)  # the restarted dispatcher takes the stale claim up
    await bot.flush_outbox()

    rows = await by_openid(bot)
    async with bot.services.engine.connect() as conn:
        asked = list(
            await conn.execute(
                select(todos).where(
                    todos.c.assignee_id == county.secretary_id, todos.c.kind == "tell_member"
                )
            )
        )
    asked_about = {todo.subject_id: todo for todo in asked}
    async with bot.services.engine.connect() as conn:
        person_of = dict(
            (
                await conn.execute(
                    select(bindings.c.openid, bindings.c.person_id).where(
                        bindings.c.openid.in_(members)
                    )
                )
            ).all()
        )
    for n, openid in enumerate(members):
        received = bot.api.sent_texts(openid).count(NOTICE)
        row = rows[openid]
        if openid not in hung:  # never in doubt: received exactly once
            assert (received, row.status) == (1, "sent"), openid
            assert person_of[openid] not in asked_about
            continue
        # In doubt: its call was under way at the kill. Never sent twice; a person makes sure.
        assert received <= 1
        assert (row.status, row.channel) == ("unknown", "escalated")
        todo = asked_about[person_of[openid]]
        first_line, *rest = todo.text.splitlines()
        assert (
            first_line
            == f"党员{n}可能没收到：“12月5日上午九点在镇党委会议室开全体党员大会…”，请告知"
        )
        assert f"全文：{NOTICE}" in rest
    assert len(asked) == len(hung)
    # The 4 that hung never reached WeChat.
    assert sum(bot.api.sent_texts(openid).count(NOTICE) for openid in hung) == 0

    assert [row.status for row in rows.values()].count("sent") == 96
    async with bot.services.engine.connect() as conn:
        counts = await status_counts(conn)
        tried = list(await conn.execute(select(outbox_attempts)))
    assert counts["unknown_escalated"] == 4 and "unknown" not in counts
    # One attempt row per message sent: none written twice, by the call or its batch.
    assert sorted((a.outbox_id, a.errcode) for a in tried) == sorted(
        (row.id, 0) for row in rows.values() if row.status == "sent"
    )
    report = await staff.send("发送情况")
    assert "发送中断、已请书记确认 4" in report and "发送中断、不确定" not in report
    from bangfu_bot.cli import outbox_status

    capsys.readouterr()
    assert await outbox_status(bot.services.settings) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert (printed["unknown"], printed["unknown_escalated"]) == ("0", "4")


async def test_calls_that_returned_are_not_in_doubt_whatever_they_answered(
    bot: Any, county: Any
) -> None:
    """Killed before its batch was recorded: a call refused (it did not arrive) is sent
    again, a busy one is due again after its backoff, the sent ones stay sent; only the
    calls under way are in doubt."""
    await bot.stop_dispatcher()
    members = await add_members(bot, county.tree.branch, 12)
    await queue_notice(bot, members)
    refused, busy = members[1], members[2]  # no template configured: a refusal escalates
    frozen = await kill_mid_batch(bot, calls=8, batches=1, refuse={refused: 45015, busy: 45009})
    hung = set(frozen.started[8:])
    assert len(hung) == 4
    at_kill = await by_openid(bot)
    async with bot.services.engine.connect() as conn:
        tried = {
            a.outbox_id: (a.channel, a.errcode) for a in await conn.execute(select(outbox_attempts))
        }
    for openid in frozen.started[:8]:
        row = at_kill[openid]
        expected = {
            refused: ("sending", False, 0, 45015),  # the batch was to escalate it
            busy: ("pending", True, 1, 45009),
        }.get(openid, ("sent", True, 1, 0))
        assert (
            row.status,
            row.calling_at is not None,
            row.attempts,
            row.last_errcode,
        ) == expected, openid
        assert tried[row.id] == ("custom", expected[-1])
    assert {o for o, row in at_kill.items() if row.calling_at and row.status == "sending"} == hung

    bot.clock.advance(minutes=6)
    await bot.flush_outbox()
    rows = await by_openid(bot)
    assert {o: row.status for o, row in rows.items()} == {
        o: "unknown" if o in hung else "sent" for o in members
    }
    for openid in members:  # the refused one reached its member on the second try
        assert bot.api.sent_texts(openid).count(NOTICE) == (0 if openid in hung else 1)
    async with bot.services.engine.connect() as conn:
        asked = (
            (await conn.execute(select(todos.c.text).where(todos.c.kind == "tell_member")))
            .scalars()
            .all()
        )
    assert len(asked) == 4 and all("可能没收到" in text for text in asked)


async def test_templates_killed_mid_batch_each_arrive_once(start_bot: Any, county: Any) -> None:
    """Templates carry a client_msg_id: a started call is made again and WeChat drops the
    second copy; nothing is in doubt."""
    bot = await start_bot(outbox_concurrency="4", wechat_template_id=TEMPLATE)
    bot.api.add_template(TEMPLATE, TEMPLATE_KEYS)
    await bot.stop_dispatcher()
    members = await add_members(bot, county.tree.branch, 50, wrote=False)
    await queue_notice(bot, members)
    await kill_mid_batch(bot, calls=40)
    bot.clock.advance(minutes=6)
    await bot.flush_outbox()
    assert {row.status for row in (await by_openid(bot)).values()} == {"sent"}
    assert sorted(t["touser"] for t in bot.api.sent_templates()) == sorted(members)


async def test_an_officials_message_in_doubt_is_not_escalated(
    bot: Any, county: Any, chat: Any
) -> None:
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    await secretary.send("帮助")  # his window is open
    async with bot.services.engine.begin() as conn:
        # What a killed process leaves: a to-do's push to the secretary, during its call.
        await queue_messages(
            conn,
            [
                outbox_row(
                    key="todo:x",
                    openid="o-zhang",
                    kind="todo",
                    content="请审核王德福的申请。",
                    reason="test",
                    now=bot.clock.now(),
                )
            ],
        )
        await conn.execute(
            update(outbox)
            .where(outbox.c.idempotency_key == "todo:x")
            .values(status="sending", channel="custom", calling_at=bot.clock.now())
        )
    bot.clock.advance(minutes=6)
    await bot.flush_outbox()
    async with bot.services.engine.connect() as conn:
        row = (await conn.execute(select(outbox).where(outbox.c.idempotency_key == "todo:x"))).one()
        asked = (await conn.execute(select(todos).where(todos.c.kind == "tell_member"))).all()
        counts = await status_counts(conn)
    assert (row.status, row.channel, asked) == ("unknown", "custom", [])
    assert counts["unknown"] == 1 and "unknown_escalated" not in counts
    assert bot.api.sent_texts("o-zhang").count("请审核王德福的申请。") == 0


async def test_the_mark_is_committed_before_the_call_and_only_for_it(start_bot: Any) -> None:
    bot = await start_bot(outbox_concurrency="1")
    await bot.stop_dispatcher()
    for openid in ("o-a", "o-b", "o-c"):
        bot.api.follow(openid)
        await bot.driver().text(openid, "你好")
    await queue_notice(bot, ["o-a", "o-b", "o-c"])
    held = bot.api.hold_next("message/custom/send")
    sending = asyncio.create_task(bot.flush_outbox())
    await asyncio.wait_for(held.arrived.wait(), 10)  # o-a's call is under way, held by WeChat
    # Read on another connection: only what committed.
    marked = {openid: row.calling_at is not None for openid, row in (await by_openid(bot)).items()}
    assert marked == {"o-a": True, "o-b": False, "o-c": False}
    assert bot.api.sent_texts() == []
    held.release()
    await sending
    assert {row.status for row in (await by_openid(bot)).values()} == {"sent"}


async def test_calls_starting_together_share_one_mark(start_bot: Any, county: Any) -> None:
    bot = await start_bot(outbox_concurrency="8")
    await bot.stop_dispatcher()
    members = await add_members(bot, county.tree.branch, 64)
    await queue_notice(bot, members)
    marks: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE outbox SET calling_at"):
            marks.append(len(params) - 1 if isinstance(params, (list, tuple)) else 0)

    engine = bot.services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    bot.api.latency_s = 0.05  # calls finish together, as against the real platform
    try:
        await bot.flush_outbox()
    finally:
        event.remove(engine, "before_cursor_execute", count)
        bot.api.latency_s = 0
    assert sorted(t for o in members for t in bot.api.sent_texts(o)) == [NOTICE] * 64
    # The first call of a wave to finish is marked alone, the rest of the wave together
    # (e.g. 8, 1, 7, 1, 7 ...): a few rows a statement, never one statement per call.
    assert sum(marks) == 64 and len(marks) <= 64 // 2, marks
