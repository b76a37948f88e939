"""The webhook, driven over HTTP by the fake WeChat's push driver."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bangfu_bot.conversation.bot import say
from bangfu_bot.wechat.crypto import sign
from bangfu_bot.wechat.fake import PLATFORM_ERROR
from bangfu_bot.wechat.models import inbound_messages, wechat_users
from tests.conftest import AES_KEY, AES_KEY_OLD, TOKEN
from tests.conversation.chat import answered_later

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


async def stored_pushes(bot: Any) -> int:
    async with bot.services.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(inbound_messages))).scalar()


def metric(bot: Any, name: str, **labels: str) -> float:
    """A sample of the bot's /metrics (0 if it was never counted)."""
    return bot.services.metrics.registry.get_sample_value(name, labels) or 0.0


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Wait until `condition()` holds, looking again each time the loop has turned (the
    timeout only turns a hang into a failure)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the condition never came true"
        await asyncio.sleep(0.005)


async def post_raw(bot: Any, query: dict[str, str], body: bytes) -> tuple[int, str]:
    async with bot.session.post(bot.url(), params=query, data=body) as response:
        return response.status, await response.text()


def signed_query(bot: Any, **extra: str) -> dict[str, str]:
    timestamp = str(int(bot.clock.now().timestamp()))
    return {
        "signature": sign(TOKEN, timestamp, "n0nce"),
        "timestamp": timestamp,
        "nonce": "n0nce",
        "openid": OPENID,
        **extra,
    }


# --- URL check -----------------------------------------------------------------------


async def test_url_check_echoes_echostr(bot: Any) -> None:
    query = signed_query(bot, echostr="7741285617396432111")
    async with bot.session.get(bot.url(), params=query) as response:
        assert response.status == 200
        assert await response.text() == "7741285617396432111"


async def test_url_check_with_a_forged_signature_echoes_nothing(bot: Any) -> None:
    query = signed_query(bot, echostr="7741285617396432111")
    query["signature"] = "0" * 40
    async with bot.session.get(bot.url(), params=query) as response:
        assert response.status == 403
        assert await response.text() == ""


# --- the three modes -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_follow_gets_the_welcome_in_every_mode(bot: Any, mode: str) -> None:
    delivery = await bot.driver(mode).event(OPENID, "subscribe")
    assert delivery.statuses == [200]
    assert delivery.text == say("welcome")
    if mode != "plain":
        assert "<Encrypt>" in delivery.body and "帮扶" not in delivery.body


async def test_reply_to_an_encrypted_push_is_encrypted_and_signed(bot: Any) -> None:
    delivery = await bot.driver("safe").text(OPENID, "帮助")
    assert "<MsgSignature>" in delivery.body
    assert delivery.text == say("help_unbound")


async def test_previous_aes_key_still_works_during_rotation(start_bot: Any) -> None:
    bot = await start_bot(wechat_aes_key_previous=AES_KEY_OLD)
    old_driver = bot.driver("safe", aes_key=AES_KEY_OLD)
    delivery = await old_driver.text(OPENID, "帮助")
    # The driver decrypts the answer with the old key, as WeChat would before switching.
    assert delivery.text == say("help_unbound")
    assert (await bot.driver("safe", aes_key=AES_KEY).text(OPENID, "帮助")).text == say(
        "help_unbound"
    )


async def test_follow_and_unfollow_are_tracked(bot: Any) -> None:
    driver = bot.driver()
    await driver.event(OPENID, "subscribe")
    await driver.text(OPENID, "你好")
    bot.clock.advance(seconds=5)
    delivery = await driver.event(OPENID, "unsubscribe")
    assert delivery.text is None and delivery.body == "success"
    async with bot.services.engine.connect() as conn:
        user = (await conn.execute(select(wechat_users))).one()
    assert user.subscribed is False
    assert user.last_message_at is not None and user.unsubscribed_at is not None


# --- hostile input ----------------------------------------------------------------------


async def test_forged_signature_is_refused_and_nothing_is_recorded(bot: Any) -> None:
    driver = bot.driver()
    query, body = driver.envelope(driver.message_xml(OPENID, "text", {"Content": "hi"}), OPENID)
    query["signature"] = sign("wrong-token", query["timestamp"], query["nonce"])
    assert await post_raw(bot, query, body) == (403, "")
    assert await stored_pushes(bot) == 0


async def test_replayed_push_outside_the_skew_window_is_refused(bot: Any) -> None:
    driver = bot.driver()
    query, body = driver.envelope(driver.message_xml(OPENID, "text", {"Content": "hi"}), OPENID)
    bot.clock.advance(minutes=30)
    assert await post_raw(bot, query, body) == (403, "")
    assert await stored_pushes(bot) == 0


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
async def test_missing_query_parameter_is_refused(bot: Any, missing: str) -> None:
    driver = bot.driver()
    query, body = driver.envelope(driver.message_xml(OPENID, "text", {"Content": "hi"}), OPENID)
    del query[missing]
    status, text = await post_raw(bot, query, body)
    assert status == 403 and text == ""


async def test_empty_body_is_a_bad_request(bot: Any) -> None:
    assert await post_raw(bot, signed_query(bot), b"") == (400, "")


async def test_ten_megabyte_body_is_refused_with_413(bot: Any) -> None:
    body = b"<xml><Content><![CDATA[" + b"x" * (10 * 1024 * 1024) + b"]]></Content></xml>"
    status, text = await post_raw(bot, signed_query(bot), io.BytesIO(body))  # type: ignore[arg-type]
    assert status == 413 and text == ""


async def test_ten_megabyte_chunked_body_without_length_is_refused_with_413(bot: Any) -> None:
    async def chunks() -> Any:
        for _ in range(160):
            yield b"x" * 65536

    status, _ = await post_raw(bot, signed_query(bot), chunks())  # type: ignore[arg-type]
    assert status == 413


async def test_xml_with_entity_declarations_is_refused(bot: Any) -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<xml><FromUserName>&lol2;</FromUserName><MsgType>text</MsgType></xml>"
    )
    assert await post_raw(bot, signed_query(bot), body) == (400, "")
    assert await stored_pushes(bot) == 0


async def test_non_utf8_body_is_refused(bot: Any) -> None:
    body = "<xml><Content>帮扶</Content></xml>".encode("gbk")
    assert await post_raw(bot, signed_query(bot), body) == (400, "")


async def test_truncated_ciphertext_is_refused(bot: Any) -> None:
    driver = bot.driver("safe")
    query, body = driver.envelope(driver.message_xml(OPENID, "text", {"Content": "hi"}), OPENID)
    cipher = body.decode().split("<![CDATA[")[2].split("]]>")[0]
    short = cipher[: len(cipher) // 2 + 3]
    query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], short)
    status, _ = await post_raw(bot, query, body.decode().replace(cipher, short).encode())
    assert status == 400
    assert await stored_pushes(bot) == 0


async def test_ciphertext_for_another_appid_is_refused(bot: Any) -> None:
    delivery = await bot.driver("safe", appid="wx0therapp0000000").text(OPENID, "hi")
    assert delivery.statuses == [400] and delivery.shown_error
    assert await stored_pushes(bot) == 0


async def test_wrong_aes_key_is_refused(bot: Any) -> None:
    delivery = await bot.driver("safe", aes_key=AES_KEY_OLD).text(OPENID, "hi")
    assert delivery.statuses == [400]
    assert await stored_pushes(bot) == 0


async def test_unknown_message_type_gets_a_polite_reply(bot: Any) -> None:
    driver = bot.driver()
    xml = driver.message_xml(OPENID, "hologram", {"Title": "x"})
    delivery = await driver.send(OPENID, xml)
    assert delivery.text == say("unknown_type")


async def test_unknown_event_gets_a_polite_reply(bot: Any) -> None:
    delivery = await bot.driver().event(OPENID, "some_future_event", "k")
    assert delivery.text == say("unknown_type")


async def test_made_up_message_types_are_counted_under_one_other_label(bot: Any) -> None:
    driver = bot.driver()
    for made_up in ("hologram", "smell", "telepathy", "Hologram2", "x" * 32):
        await driver.send(OPENID, driver.message_xml(OPENID, made_up, {"Title": "x"}))
    await driver.event(OPENID, "some_future_event", "k")
    await driver.text(OPENID, "帮助")
    metrics = await (await bot.session.get(bot.url("/metrics"))).text()
    series = [line for line in metrics.splitlines() if line.startswith("bangfu_messages_total{")]
    assert [line for line in series if 'type="other"' in line] == [
        'bangfu_messages_total{outcome="handled",type="other"} 6.0'
    ]
    assert sorted(series) == [
        'bangfu_messages_total{outcome="handled",type="other"} 6.0',
        'bangfu_messages_total{outcome="handled",type="text"} 1.0',
    ]


async def test_delivery_receipt_gets_success_and_no_text(bot: Any) -> None:
    delivery = await bot.driver().event(
        OPENID, "TEMPLATESENDJOBFINISH", MsgID="200163836", Status="success"
    )
    assert delivery.body == "success" and not delivery.shown_error


async def test_photo_and_location_get_a_plain_answer(bot: Any) -> None:
    driver = bot.driver()
    assert (await driver.image(OPENID)).text == say("text_only")
    assert (await driver.location(OPENID)).text == say("text_only")


# --- exactly once -------------------------------------------------------------------------


class CountingBot:
    """Counts how often it is asked; answers with the count. A `held` one answers only once
    the test sets `release`, so a push stays under way for as long as a test needs it to,
    with no race against a timer; `started` is set when it is first asked."""

    def __init__(self, held: bool = False) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def handle(self, conn: Any, message: Any, now: Any) -> str:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return f"第{self.calls}次处理：{message.content}"


async def test_same_msgid_three_times_at_once_is_handled_once(start_bot: Any) -> None:
    counting = CountingBot(held=True)
    bot = await start_bot(bot=counting)
    driver = bot.driver("safe")
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "申请"}, 77), OPENID
    )
    # The push is under way when WeChat sends it twice more.
    first = asyncio.create_task(driver.post(query, body, OPENID))
    await asyncio.wait_for(counting.started.wait(), 10)
    copies = [asyncio.create_task(driver.post(query, body, OPENID)) for _ in range(2)]
    await until(lambda: metric(bot, "bangfu_duplicates_total", stage="in_flight") == 2)
    counting.release.set()
    deliveries = await asyncio.gather(first, *copies)
    assert {d.text for d in deliveries} == {"第1次处理：申请"}
    assert counting.calls == 1
    assert await stored_pushes(bot) == 1
    again = await driver.post(query, body, OPENID)  # a late retry: answered from the store
    assert again.text == "第1次处理：申请" and counting.calls == 1
    metrics = await (await bot.session.get(bot.url("/metrics"))).text()
    assert 'bangfu_duplicates_total{stage="in_flight"} 2.0' in metrics
    assert 'bangfu_duplicates_total{stage="stored"} 1.0' in metrics


async def test_retry_after_a_crash_gets_the_stored_answer(start_bot: Any) -> None:
    first_bot = CountingBot()
    first = await start_bot(bot=first_bot)
    driver = first.driver()
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "进度"}, 88), OPENID
    )
    await driver.post(query, body, OPENID)
    await first.server.close()  # the process dies before WeChat got the answer
    second_bot = CountingBot()
    second = await start_bot(bot=second_bot)
    retry = await second.driver().post(query, body, OPENID)
    assert retry.text == "第1次处理：进度"
    assert second_bot.calls == 0
    assert await stored_pushes(second) == 1


class BatchRecordingBot:
    """Notes which shared transaction (batch number) handled each message."""

    def __init__(self) -> None:
        self.committer: Any = None
        self.batch_of: dict[str, int] = {}

    async def handle(self, conn: Any, message: Any, now: Any) -> str:
        self.batch_of[message.content] = self.committer.batches
        return message.content


async def test_one_user_in_order_other_users_share_the_transaction(start_bot: Any) -> None:
    recorder = BatchRecordingBot()
    bot = await start_bot(bot=recorder, batch_window_ms="100")
    inbox = bot.services.inbox
    committer = recorder.committer = inbox._committer
    # The writer is busy with a transaction of its own, so the pushes queue behind it, and
    # what shares the next transaction does not depend on when each push arrives.
    busy, done = asyncio.Event(), asyncio.Event()

    async def occupy(conn: Any) -> None:
        busy.set()
        await done.wait()

    occupying = committer.enqueue(occupy)
    await asyncio.wait_for(busy.wait(), 10)
    driver = bot.driver()
    a1 = asyncio.create_task(driver.text("user-a", "a-1"))
    await until(lambda: inbox.under_way == 1)
    a2 = asyncio.create_task(driver.text("user-a", "a-2"))
    b1 = asyncio.create_task(driver.text("user-b", "b-1"))
    await until(lambda: inbox.under_way == 3)
    done.set()
    await occupying
    replies, late = [], {"user-a": 0, "user-b": 0}
    for task, user in zip((a1, a2, b1), ("user-a", "user-a", "user-b"), strict=True):
        answer = (await task).text
        if answer is None:  # a busy machine spent the reply budget: it came as a message
            answer = await answered_later(bot, user, before=late[user])
            late[user] += 1
        replies.append(answer)
    assert replies == ["a-1", "a-2", "b-1"]
    # User B rides in user A's transaction; A's second message waits for the first's commit.
    assert recorder.batch_of["a-1"] == recorder.batch_of["b-1"]
    assert recorder.batch_of["a-2"] > recorder.batch_of["a-1"]


async def test_many_users_share_commits(start_bot: Any) -> None:
    bot = await start_bot(bot=CountingBot(), batch_window_ms="20")
    driver = bot.driver()
    deliveries = await asyncio.gather(*(driver.text(f"user-{n}", "你好") for n in range(30)))
    assert all(d.text and d.text.endswith("你好") for d in deliveries)
    assert await stored_pushes(bot) == 30
    assert bot.services.inbox._committer.batches < 30


# --- reply budget, failures, outages ----------------------------------------------------


async def wait_for_texts(api: Any, openid: str, count: int = 1, timeout: float = 30) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        texts = api.sent_texts(openid)
        if len(texts) >= count:
            return texts
        await asyncio.sleep(0.05)
    return api.sent_texts(openid)


async def test_slow_answer_leaves_as_a_customer_service_message(start_bot: Any) -> None:
    counting = CountingBot(held=True)  # still working on it when the budget is spent
    bot = await start_bot(bot=counting, reply_budget_s="0.2")
    delivery = await bot.driver().text(OPENID, "慢一点")
    assert delivery.body == "success" and not delivery.shown_error
    counting.release.set()
    assert await wait_for_texts(bot.api, OPENID) == ["第1次处理：慢一点"]
    metrics = await (await bot.session.get(bot.url("/metrics"))).text()
    assert 'bangfu_reply_seconds_count{channel="late"} 1.0' in metrics


class EchoBot:
    """Answers with what it was sent once the test sets `release`; notes the most pushes
    ever under way."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inbox: Any = None
        self.most_under_way = 0

    async def handle(self, conn: Any, message: Any, now: Any) -> str:
        self.most_under_way = max(self.most_under_way, self.inbox.under_way)
        await self.release.wait()
        return f"收到：{message.content}"


async def test_overload_is_answered_at_once_and_every_member_still_gets_an_answer(
    start_bot: Any,
) -> None:
    echo = EchoBot()
    bot = await start_bot(bot=echo, max_inflight="4")
    echo.inbox = bot.services.inbox
    driver = bot.driver("safe")
    users = [f"user-{n}" for n in range(20)]
    sending = [asyncio.create_task(driver.text(user, f"第{n}条")) for n, user in enumerate(users)]
    # While the answers are held, every push is either under way or answered at once.
    inbox = bot.services.inbox
    await until(lambda: sum(task.done() for task in sending) + inbox.under_way == len(users))
    echo.release.set()
    deliveries = await asyncio.gather(*sending)
    assert not any(d.shown_error for d in deliveries)
    assert all(d.tries == 1 for d in deliveries)  # nobody waited into a platform retry
    passive = {user for user, d in zip(users, deliveries, strict=True) if d.text}
    assert 0 < len(passive) <= 4
    for n, user in enumerate(users):  # the rest are answered by customer-service message
        if user not in passive:
            assert await wait_for_texts(bot.api, user) == [f"收到：第{n}条"]
        else:
            assert bot.api.sent_texts(user) == []
    assert echo.most_under_way <= 4  # memory bound: the others waited on disk
    assert await stored_pushes(bot) == 20
    metrics = await (await bot.session.get(bot.url("/metrics"))).text()
    assert f'bangfu_shed_pushes_total{{reason="full"}} {20 - len(passive)}.0' in metrics


class BrokenBot:
    """A bot with a bug."""

    async def handle(self, conn: Any, message: Any, now: Any) -> str:
        raise ZeroDivisionError("a bug in a domain service")


async def test_domain_error_is_an_apology_never_a_5xx(start_bot: Any) -> None:
    bot = await start_bot(bot=BrokenBot())
    driver = bot.driver("safe")
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "申请"}, 99), OPENID
    )
    first = await driver.post(query, body, OPENID)
    again = await driver.post(query, body, OPENID)
    assert first.statuses == [200] and first.text == say("apology")
    assert again.text == say("apology")
    assert await stored_pushes(bot) == 1


async def test_database_unreachable_answers_success_and_keeps_the_push(start_bot: Any) -> None:
    from bangfu_bot.app import create_app

    bot = await start_bot()
    settings = bot.services.settings
    import dataclasses

    down = dataclasses.replace(
        settings,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:9/x",
        spool_dir=settings.spool_dir + "-down",
    )
    from aiohttp.test_utils import TestServer

    server = TestServer(create_app(down, clock=bot.clock, migrate=False))
    await server.start_server()
    try:
        driver = bot.driver(url=str(server.make_url("/wechat")))
        delivery = await driver.text(OPENID, "我要申请帮扶")
        assert delivery.statuses == [200] and delivery.body == "success"
        async with bot.session.get(server.make_url("/healthz")) as health:
            assert health.status == 503
        from pathlib import Path

        journal = "".join(p.read_text() for p in Path(down.spool_dir).glob("*.jsonl"))
        assert "我要申请帮扶" in journal
    finally:
        await server.close()


async def test_database_locked_answers_success_then_replies_later(start_bot: Any) -> None:
    bot = await start_bot(reply_budget_s="0.5", db_busy_timeout_ms="100")
    locker = await _lock_store(bot)
    try:
        delivery = await bot.driver().text(OPENID, "帮助")
        assert delivery.statuses == [200] and delivery.body == "success"
    finally:
        await locker()
    assert await wait_for_texts(bot.api, OPENID) == [say("help_unbound")]
    assert await stored_pushes(bot) == 1


async def _lock_store(bot: Any) -> Any:
    """Take the store's write lock from another connection; return the release function."""
    engine = bot.services.engine
    if engine.dialect.name == "sqlite":
        import sqlite3

        path = engine.url.database
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")

        async def release_sqlite() -> None:
            raw.execute("COMMIT")
            raw.close()

        return release_sqlite
    conn = await engine.connect()
    transaction = await conn.begin()
    from sqlalchemy import text

    await conn.execute(text("LOCK TABLE inbound_messages, wechat_users IN ACCESS EXCLUSIVE MODE"))

    async def release_postgres() -> None:
        await transaction.commit()
        await conn.close()

    return release_postgres


async def test_healthz_and_metrics(bot: Any) -> None:
    await bot.driver().text(OPENID, "帮助")
    async with bot.session.get(bot.url("/healthz")) as health:
        assert health.status == 200 and (await health.json())["ok"] is True
    async with bot.session.get(bot.url("/metrics")) as response:
        metrics = await response.text()
    assert 'bangfu_messages_total{outcome="handled",type="text"} 1.0' in metrics
    assert "bangfu_reply_seconds_bucket" in metrics


async def test_platform_error_is_what_a_member_sees_when_the_bot_is_gone(bot: Any) -> None:
    driver = bot.driver(url="http://127.0.0.1:9/wechat", timeout_s=0.5)
    delivery = await driver.text(OPENID, "在吗")
    assert delivery.tries == 3 and delivery.text == PLATFORM_ERROR
    assert isinstance(delivery.statuses[0], str)  # connection refused, not an HTTP status


async def test_the_budget_wait_gives_up_in_time_and_never_cancels_the_answer() -> None:
    from bangfu_bot.wechat.webhook import Budgets

    budgets = Budgets(tick_s=0.01)
    loop = asyncio.get_running_loop()
    slow, quick = loop.create_future(), loop.create_future()
    loop.call_later(0.02, quick.set_result, "answer")
    assert await budgets.wait(quick, 1.0) is True
    assert await budgets.wait(slow, 0.05) is False and not slow.cancelled()
    waiting = asyncio.ensure_future(budgets.wait(slow, 5.0))
    await asyncio.sleep(0.02)
    waiting.cancel()  # the member's request went away; a duplicate may still want the answer
    await asyncio.gather(waiting, return_exceptions=True)
    assert not slow.done()


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_an_answer_repeating_a_cdata_end_still_reaches_the_member(
    start_bot: Any, mode: str
) -> None:
    bot = await start_bot(bot=CountingBot())
    delivery = await bot.driver(mode=mode).text(OPENID, "先]]>后")
    assert not delivery.shown_error
    assert delivery.text == "第1次处理：先]]>后"
