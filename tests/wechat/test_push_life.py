"""A push's life (wechat/inbox.py): one test per PushState, and one for an illegal move.

The inbox is driven here without the webhook: a real group committer on the test store, a
journal in tmp_path, and bots whose answers the tests hold back or break."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bangfu_bot import db
from bangfu_bot.clock import FrozenClock
from bangfu_bot.conversation.bot import Inbound, say
from bangfu_bot.group_commit import GroupCommitter
from bangfu_bot.metrics import Metrics
from bangfu_bot.notify.models import outbox
from bangfu_bot.wechat.inbound import read_inbound
from bangfu_bot.wechat.inbox import (
    MOVES,
    IllegalTransition,
    Inbox,
    Outcome,
    Push,
    PushState,
    prefetch_answers,
)
from bangfu_bot.wechat.models import inbound_messages
from bangfu_bot.wechat.spool import Spool

S = PushState
_msg_ids = iter(range(5_000_000, 6_000_000))


def push_xml(openid: str, text: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_county]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>1794300000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{next(_msg_ids)}</MsgId></xml>"
    )


class HeldBot:
    """Answers `收到：<text>`, once the test lets it (`release`), or as `behave` says."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls: list[str] = []
        self.behave: Callable[[Inbound], None] = lambda message: None

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    async def handle(self, conn: Any, message: Inbound, now: Any) -> str:
        self.calls.append(message.content)
        await self.gate.wait()
        self.behave(message)
        return f"收到：{message.content}"


class Harness:
    def __init__(
        self,
        inbox: Inbox,
        bot: HeldBot,
        spool: Spool,
        engine: Any,
        clock: FrozenClock,
        metrics: Metrics,
    ) -> None:
        self.inbox, self.bot, self.spool, self.engine = inbox, bot, spool, engine
        self.clock, self.metrics = clock, metrics

    def message(self, openid: str = "o-member", text: str = "你好") -> Inbound:
        return read_inbound(push_xml(openid, text), self.clock)

    async def state_becomes(self, message: Inbound, state: PushState) -> Push:
        push = self.inbox.push_of(message)
        assert push is not None
        for _ in range(200):
            if push.state is state:
                return push
            await asyncio.sleep(0.01)
        raise AssertionError(f"{push!r} never became {state.name}")

    async def recorded(self, message: Inbound) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(inbound_messages.c.outcome, inbound_messages.c.reply_text).where(
                        inbound_messages.c.dedupe_key == message.dedupe_key
                    )
                )
            ).first()

    async def late_replies(self, message: Inbound) -> list[str]:
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(outbox.c.content).where(
                            outbox.c.idempotency_key == f"reply:{message.dedupe_key}"
                        )
                    )
                ).scalars()
            )

    def counted(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "bangfu_messages_total", {"type": "text", "outcome": outcome}
        )
        return value or 0.0


@pytest.fixture
async def life(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    committer = GroupCommitter(engine, window_s=0.005, prefetch=[prefetch_answers])
    committer.start()
    spool = Spool(tmp_path / "spool")
    spool.open()
    bot, clock, metrics = HeldBot(), FrozenClock(), Metrics()
    inbox = Inbox(committer=committer, bot=bot, clock=clock, spool=spool, metrics=metrics)
    yield Harness(inbox, bot, spool, engine, clock, metrics)
    bot.release()
    await inbox.drain(1.0)
    await committer.close(1.0)
    spool.close()
    await engine.dispose()


def database_away(message: Inbound) -> None:
    raise ConnectionError("the database went away")


# --- one test per state ------------------------------------------------------------------


async def test_received_waits_for_the_same_members_previous_push(life: Harness) -> None:
    life.bot.hold()
    first, second = life.message(text="一"), life.message(text="二")
    other = life.message(openid="o-other", text="三")
    answers = [life.inbox.submit(m) for m in (first, second, other)]
    await life.state_becomes(first, S.QUEUED)
    assert life.inbox.push_of(second).state is S.RECEIVED  # type: ignore[union-attr]
    await life.state_becomes(other, S.QUEUED)  # another member does not wait
    life.bot.release()
    outcomes = await asyncio.gather(*answers)
    assert [o.reply for o in outcomes] == ["收到：一", "收到：二", "收到：三"]
    assert life.bot.calls.index("二") > life.bot.calls.index("一")


async def test_queued_while_its_unit_is_with_the_committer(life: Harness) -> None:
    life.bot.hold()
    message = life.message()
    answer = life.inbox.submit(message)
    assert life.inbox.submit(message) is answer  # a retry joins the push under way
    push = life.inbox.push_of(message)
    assert push is not None and push.state is S.QUEUED  # at once: nobody before it
    while not life.bot.calls:  # its unit runs in a shared transaction
        await asyncio.sleep(0.01)
    assert push.state is S.QUEUED and not answer.done()
    life.bot.release()
    assert (await answer).status is S.HANDLED and push.state is S.HANDLED


async def test_handled_is_the_bots_answer_recorded(life: Harness) -> None:
    message = life.message(text="申请")
    outcome = await life.inbox.submit(message)
    assert outcome == Outcome("收到：申请", S.HANDLED)
    assert tuple(await life.recorded(message)) == ("replied", "收到：申请")
    assert life.inbox.push_of(message) is None and life.inbox.under_way == 0
    assert life.counted("handled") == 1


async def test_duplicate_is_the_stored_answer_without_the_bot(life: Harness) -> None:
    message = life.message(text="进度")
    await life.inbox.submit(message)
    again = await life.inbox.submit(message)  # WeChat's retry after the answer was lost
    assert again == Outcome("收到：进度", S.DUPLICATE)
    assert life.bot.calls == ["进度"]
    assert life.counted("duplicate") == 1


async def test_failed_is_an_apology_recorded(life: Harness) -> None:
    def bug(message: Inbound) -> None:
        raise ZeroDivisionError("a bug in a domain service")

    life.bot.behave = bug
    message = life.message()
    outcome = await life.inbox.submit(message)
    assert outcome == Outcome(say("apology"), S.FAILED)
    assert tuple(await life.recorded(message)) == ("failed", say("apology"))


async def test_unavailable_leaves_nothing_behind(life: Harness) -> None:
    life.bot.behave = database_away
    message = life.message()
    outcome = await life.inbox.submit(message)
    assert outcome == Outcome(None, S.UNAVAILABLE)
    assert await life.recorded(message) is None  # WeChat's retry handles it afresh
    assert life.inbox.availability.away == "ConnectionError"
    assert message.dedupe_key not in life.spool


async def test_late_is_answered_through_the_outbox_and_leaves_the_journal(life: Harness) -> None:
    life.bot.hold()
    message = life.message(text="慢一点")
    answer = life.inbox.submit(message)
    await life.state_becomes(message, S.QUEUED)
    await life.inbox.stop_waiting(message)  # the reply budget is spent: journaled
    assert message.dedupe_key in life.spool and life.inbox.push_of(message).late  # type: ignore[union-attr]
    life.bot.release()
    assert (await answer).status is S.HANDLED
    assert await life.late_replies(message) == ["收到：慢一点"]
    assert message.dedupe_key not in life.spool
    assert life.counted("handled") == 1


async def test_a_journaled_push_replayed_ends_late(life: Harness) -> None:
    message = life.message(text="重来")
    life.spool.add(message.dedupe_key, message.xml)  # answered `success`, then a restart
    assert await life.inbox.replay() == 1
    push = life.inbox.push_of(message)
    assert push is not None and push.late
    await push.answer
    assert push.state is S.LATE
    assert await life.late_replies(message) == ["收到：重来"]
    assert len(life.spool) == 0


async def test_journaled_when_the_database_is_away_for_a_late_push(life: Harness) -> None:
    life.bot.hold()
    life.bot.behave = database_away
    message = life.message()
    answer = life.inbox.submit(message)
    push = await life.state_becomes(message, S.QUEUED)
    await life.inbox.stop_waiting(message)
    life.bot.release()
    assert (await answer).status is S.UNAVAILABLE
    assert push.state is S.JOURNALED
    assert message.dedupe_key in life.spool  # the replayer starts it again
    assert await life.late_replies(message) == [] and await life.recorded(message) is None
    life.bot.behave = lambda message: None  # the database is back
    assert await life.inbox.replay() == 1
    assert (await life.inbox.push_of(message).answer).status is S.HANDLED  # type: ignore[union-attr]
    assert await life.late_replies(message) == ["收到：你好"]


async def test_not_late_after_all_is_answered_as_usual(life: Harness) -> None:
    """The journal could not be written: the webhook waits again, so no late reply."""
    life.bot.hold()
    message = life.message()
    answer = life.inbox.submit(message)
    push = await life.state_becomes(message, S.QUEUED)
    push.late = True  # what stop_waiting does before its journal write fails
    life.inbox.not_late(message)
    life.bot.release()
    assert (await answer).reply == "收到：你好" and push.state is S.HANDLED
    assert await life.late_replies(message) == []


async def test_a_step_that_breaks_still_ends_the_push(
    life: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(key: str) -> None:
        raise OSError("the journal's disk is gone")

    monkeypatch.setattr(life.spool, "resolve", broken)
    message = life.message()
    life.spool.add(message.dedupe_key, message.xml)
    answer = life.inbox.submit(message, late=True)
    push = life.inbox.push_of(message)
    assert (await answer).status is S.UNAVAILABLE  # never left hanging
    assert push is not None and push.state is S.JOURNALED and life.inbox.under_way == 0


# --- the moves ---------------------------------------------------------------------------


async def test_an_illegal_move_raises_and_leaves_the_push_where_it_was() -> None:
    message = read_inbound(push_xml("o-member", "你好"), FrozenClock())
    push = Push(message, asyncio.get_running_loop().create_future(), late=False)
    with pytest.raises(IllegalTransition, match="RECEIVED -> HANDLED"):
        push.move(S.HANDLED)  # not committed before it was queued
    assert push.state is S.RECEIVED
    push.move(S.QUEUED)
    push.move(S.HANDLED)
    with pytest.raises(IllegalTransition):
        push.move(S.QUEUED)  # an ended push never runs again
    for end in (S.UNAVAILABLE, S.LATE, S.JOURNALED):
        assert MOVES[end] == frozenset()
    assert set(MOVES) == set(PushState)
