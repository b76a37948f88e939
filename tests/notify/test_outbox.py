"""The outbox: the channel open now, escalation, receipts, quiet hours, retries, crashes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.notify.outbox import DeliveryRules, Dispatcher
from bangfu_bot.notify.queue import queue_message
from tests.county import bind

OPENID = "o-wang"
TEMPLATE = "TM-notice-001"


async def queue(
    bot: Any,
    key: str = "notice:1",
    content: str = "明天上午九点开会。",
    urgent: bool = False,
    openid: str = OPENID,
) -> None:
    async with bot.services.engine.begin() as conn:
        await queue_message(
            conn,
            key=key,
            openid=openid,
            kind="notice",
            content=content,
            reason="test",
            now=bot.clock.now(),
            urgent=urgent,
        )


async def rows(bot: Any, table: Any = outbox) -> list[Any]:
    async with bot.services.engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


@pytest.fixture
async def templated(start_bot: Any) -> Any:
    """A verified service account with a notice template added in the platform."""
    bot = await start_bot(wechat_template_id=TEMPLATE)
    bot.api.add_template(TEMPLATE, {"thing1": "thing", "thing2": "thing", "time3": "time"})
    return bot


async def test_inside_the_window_a_customer_service_message(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")  # the member writes: the 48-hour window opens
    await queue(bot)
    await queue(bot)  # the same intent again is one row
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["明天上午九点开会。"]
    (row,) = await rows(bot)
    assert (row.status, row.channel, row.attempts) == ("sent", "custom", 1)


async def test_outside_the_window_a_template_with_fields_shortened(templated: Any) -> None:
    bot = templated
    await bot.driver().text(OPENID, "你好")
    bot.clock.advance(hours=49)
    await queue(
        bot, content="请于十二月五日上午九点到镇党委会议室参加困难党员技术培训，带上身份证。"
    )
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == []
    (sent,) = bot.api.sent_templates(OPENID)
    assert sent["data"]["thing1"] == "组织部通知"
    assert len(sent["data"]["thing2"]) <= 20 and sent["data"]["thing2"].endswith("…")
    (row,) = await rows(bot)
    assert (row.status, row.channel) == ("sent", "template")
    receipt = await bot.driver().event(
        OPENID, "TEMPLATESENDJOBFINISH", MsgID=str(sent["msgid"]), Status="success"
    )
    assert receipt.body == "success"
    (row,) = await rows(bot)
    assert row.status == "delivered"


async def test_sixth_message_in_the_window_goes_as_a_template(templated: Any) -> None:
    bot = templated
    await bot.driver().text(OPENID, "你好")
    for n in range(6):
        await queue(bot, key=f"n{n}", content=f"第{n}条")
    await bot.flush_outbox()
    assert len(bot.api.sent_texts(OPENID)) == 5
    assert [t["data"]["thing2"] for t in bot.api.sent_templates(OPENID)] == ["第5条"]


async def test_a_window_the_platform_says_is_closed_falls_to_a_template(templated: Any) -> None:
    # Our record says the window is open; WeChat says otherwise (45015, or 45047 when the
    # quota ran out): the same row goes on as a template, once, with both attempts kept.
    bot = templated
    await bot.driver().text(OPENID, "你好")
    bot.api.fail_next("message/custom/send", errcode=45015)
    await queue(bot, key="a", content="明天开会。")
    bot.api.fail_next("message/custom/send", errcode=45047)
    await queue(bot, key="b", content="后天培训。")
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == []
    assert [t["data"]["thing2"] for t in bot.api.sent_templates(OPENID)] == [
        "明天开会。",
        "后天培训。",
    ]
    assert [(row.status, row.channel) for row in await rows(bot)] == [("sent", "template")] * 2
    tried = sorted(
        (a.outbox_id, a.id, a.channel, a.errcode) for a in await rows(bot, outbox_attempts)
    )
    assert [(channel, errcode) for _, _, channel, errcode in tried] == [
        ("custom", 45015),
        ("template", 0),
        ("custom", 45047),
        ("template", 0),
    ]


async def test_unreachable_member_is_told_by_the_secretary(
    bot: Any, county: Any, chat: Any
) -> None:
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    wang = chat(OPENID)
    await bind(wang, "王德福", county.wang_number)
    bot.clock.advance(days=3)  # the member has not written for three days; no template
    await secretary.send("帮助")
    await queue(bot, content="您的申请已批准。")
    await bot.flush_outbox()
    row = (await rows(bot))[-2]
    assert (row.openid, row.status, row.channel) == (OPENID, "escalated", "escalated")
    assert any("请打电话或上门告诉王德福：您的申请已批准。" in text for text in secretary.pushed())
    todos = await secretary.send("待办")
    assert "请打电话或上门告诉王德福" in todos
    opened = await secretary.send("1")
    assert "您的申请已批准" in opened and "13800138000" in opened


async def test_blocked_template_receipt_escalates(templated: Any, county: Any, chat: Any) -> None:
    bot = templated
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    wang = chat(OPENID)
    await bind(wang, "王德福", county.wang_number)
    bot.clock.advance(hours=49)
    await secretary.send("帮助")
    await queue(bot, content="明天开会。")
    await bot.flush_outbox()
    (sent,) = bot.api.sent_templates(OPENID)
    await bot.driver().event(
        OPENID, "TEMPLATESENDJOBFINISH", MsgID=str(sent["msgid"]), Status="failed:user block"
    )
    notice = next(r for r in await rows(bot) if r.openid == OPENID and r.kind == "notice")
    assert notice.status == "escalated"
    assert "请打电话或上门告诉王德福：明天开会。" in await secretary.send("待办")


async def test_unfollowed_user_without_a_secretary_is_undeliverable(templated: Any) -> None:
    bot = templated
    await bot.driver().text(OPENID, "你好")
    bot.api.unfollow(OPENID)  # WeChat knows before we get the event
    await queue(bot)
    await bot.flush_outbox()
    (row,) = await rows(bot)
    assert row.status == "undeliverable"
    assert [a.errcode for a in await rows(bot, outbox_attempts)] == [43004, 43004]


async def test_busy_platform_is_retried_with_backoff(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    bot.api.fail_next("message/custom/send", errcode=45009)
    bot.api.fail_next("message/custom/send", errcode=-1)
    await queue(bot)
    await bot.flush_outbox()
    (row,) = await rows(bot)
    assert row.status == "pending" and row.last_errcode == 45009
    bot.clock.advance(seconds=11)
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == []
    bot.clock.advance(seconds=21)
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["明天上午九点开会。"]
    assert [a.errcode for a in await rows(bot, outbox_attempts)] == [45009, -1, 0]


async def test_a_minute_of_rate_limit_then_random_busy_sends_each_row_once(bot: Any) -> None:
    openids = [f"o-user-{n}" for n in range(20)]
    for openid in openids:
        bot.api.follow(openid)
        await bot.driver().text(openid, "你好")  # each has an open window
    bot.api.fail_until("message/custom/send", 45009, bot.clock.now() + timedelta(minutes=1))
    bot.api.fail_at_random("message/custom/send", -1, rate=0.3, seed=7)
    for n, openid in enumerate(openids):
        await queue(bot, key=f"k{n}", content=f"第{n}条", openid=openid)
    for _ in range(60):  # an hour of passes a minute apart: past the limit and the backoffs
        await bot.flush_outbox()
        bot.clock.advance(minutes=1)
    # Each row sent once, or given up on with the reason kept; nothing sent twice.
    rows_now = await rows(bot)
    for n, (openid, row) in enumerate(zip(openids, rows_now, strict=True)):
        sent = bot.api.sent_texts(openid)
        assert (sent, row.status) == ([f"第{n}条"], "sent") or (
            sent == [] and row.status == "failed" and row.last_errcode in (45009, -1)
        )
    assert [row.status for row in rows_now] == ["sent"] * 20  # this seed: none given up
    codes = {a.errcode for a in await rows(bot, outbox_attempts)}
    assert codes == {45009, -1, 0}


async def test_token_expiring_mid_way_is_refreshed_once(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    await queue(bot, key="a", content="一")
    await bot.flush_outbox()
    bot.api.expire_tokens()
    await queue(bot, key="b", content="二")
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["一", "二"]


async def test_quiet_hours_hold_non_urgent_messages_until_morning(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    bot.clock.advance(hours=12, minutes=30)  # 22:30 in the county
    await bot.driver().text(OPENID, "还在吗")
    await queue(bot, key="routine", content="培训通知")
    await queue(bot, key="urgent", content="您的消息回复", urgent=True)
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["您的消息回复"]
    bot.clock.advance(hours=9, minutes=31)  # 08:01 next morning
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["您的消息回复", "培训通知"]


async def test_quiet_hours_within_a_day_hold_only_their_own_hours(start_bot: Any) -> None:
    bot = await start_bot(quiet_hours="12:00-14:00")
    await bot.driver().text(OPENID, "你好")  # 10:00 in the county: not quiet
    await queue(bot, key="morning", content="上午的通知")
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["上午的通知"]
    bot.clock.advance(hours=2, minutes=30)  # 12:30: quiet
    await queue(bot, key="noon", content="中午的通知")
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["上午的通知"]
    assert [row.next_attempt_at for row in await rows(bot) if row.idempotency_key == "noon"] == [
        bot.clock.now() + timedelta(hours=1, minutes=30)
    ]  # 14:00
    bot.clock.advance(hours=1, minutes=30)  # 14:00: quiet hours are over
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["上午的通知", "中午的通知"]


async def test_two_dispatchers_never_send_a_row_twice(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    for n in range(4):
        await queue(bot, key=f"notice:{n}", content=f"第{n}条")
    services = bot.services
    other = Dispatcher(
        engine=services.engine,
        client=services.client,
        clock=bot.clock,
        rules=DeliveryRules.from_settings(services.settings),
    )
    await asyncio.gather(services.dispatcher.send_due(), other.send_due())
    await bot.flush_outbox()
    assert sorted(bot.api.sent_texts(OPENID)) == ["第0条", "第1条", "第2条", "第3条"]


async def test_a_dispatcher_killed_mid_send_never_sends_twice(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    async with bot.services.engine.begin() as conn:
        # What a killed process leaves: one row claimed before its call, one during it.
        # Queued and claimed in one transaction, so the running dispatcher (woken by the
        # reply to 你好) never sees them unclaimed.
        for key, content in (("before", "没发出去"), ("during", "可能发出去了")):
            await queue_message(
                conn,
                key=key,
                openid=OPENID,
                kind="notice",
                content=content,
                reason="test",
                now=bot.clock.now(),
            )
        await conn.execute(
            update(outbox).where(outbox.c.idempotency_key == "before").values(status="sending")
        )
        await conn.execute(
            update(outbox)
            .where(outbox.c.idempotency_key == "during")
            .values(status="sending", channel="custom", calling_at=bot.clock.now())
        )
    await bot.services.dispatcher.send_due()
    assert bot.api.sent_texts(OPENID) == []  # a live claim is left alone
    bot.clock.advance(minutes=6)
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["没发出去"]
    statuses = {row.idempotency_key: row.status for row in await rows(bot)}
    assert statuses == {"before": "sent", "during": "unknown"}


async def test_outbound_calls_are_counted_by_errcode(bot: Any) -> None:
    await bot.driver().text(OPENID, "你好")
    bot.api.fail_next("message/custom/send", errcode=45047)
    await queue(bot)
    await bot.flush_outbox()
    async with bot.session.get(bot.url("/metrics")) as response:
        metrics = await response.text()
    assert (
        'bangfu_wechat_calls_total{endpoint="message/custom/send",errcode="45047"} 1.0' in metrics
    )


def test_shorten_cuts_at_a_pause_and_never_past_twenty() -> None:
    from bangfu_bot.notify.channels import shorten

    assert shorten("短消息") == "短消息"
    long = "您的帮扶申请已经通过党委审批，请等待组织部备案，备案后列入台账。"
    cut = shorten(long)
    assert len(cut) <= 20 and cut.endswith("…") and "\n" not in shorten("一\n二")
