"""The outbox: written once, sent once, every attempt recorded, undeliverable not retried."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.notify.outbox import Dispatcher, queue_message

OPENID = "o-member-wang"


async def queue(bot: Any, key: str = "notice:1", content: str = "明天上午九点开会。") -> None:
    async with bot.services.engine.begin() as conn:
        await queue_message(conn, key=key, openid=OPENID, kind="notice", content=content,
                            reason="test", now=bot.clock.now())


async def rows(bot: Any, table: Any = outbox) -> list[Any]:
    async with bot.services.engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def test_same_intent_written_twice_is_one_row_sent_once(bot: Any) -> None:
    bot.api.user_wrote(OPENID)
    await queue(bot)
    await queue(bot)
    await bot.services.dispatcher.send_due()
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["明天上午九点开会。"]
    (row,) = await rows(bot)
    assert row.status == "sent" and row.attempts == 1


async def test_outside_the_window_is_undeliverable_and_not_retried(bot: Any) -> None:
    bot.api.follow(OPENID)  # follows, but has not written in 48 hours
    await queue(bot)
    await bot.flush_outbox()
    bot.clock.advance(hours=1)
    await bot.flush_outbox()
    (row,) = await rows(bot)
    assert row.status == "undeliverable" and row.last_errcode == 45015
    assert [a.errcode for a in await rows(bot, outbox_attempts)] == [45015]


async def test_busy_platform_is_retried_with_backoff(bot: Any) -> None:
    bot.api.user_wrote(OPENID)
    bot.api.fail_next("message/custom/send", errcode=45009)
    await queue(bot)
    await bot.flush_outbox()
    (row,) = await rows(bot)
    assert row.status == "pending" and row.last_errcode == 45009
    await bot.services.dispatcher.send_due()  # not due yet: nothing sent
    assert bot.api.sent_texts(OPENID) == []
    bot.clock.advance(seconds=15)
    await bot.flush_outbox()
    assert bot.api.sent_texts(OPENID) == ["明天上午九点开会。"]
    assert [a.errcode for a in await rows(bot, outbox_attempts)] == [45009, 0]


async def test_two_dispatchers_never_send_a_row_twice(bot: Any) -> None:
    bot.api.user_wrote(OPENID)
    for n in range(4):
        await queue(bot, key=f"notice:{n}", content=f"第{n}条")
    services = bot.services
    other = Dispatcher(engine=services.engine, client=services.client, clock=bot.clock)
    await asyncio.gather(services.dispatcher.send_due(), other.send_due())
    await bot.flush_outbox()
    assert sorted(bot.api.sent_texts(OPENID)) == ["第0条", "第1条", "第2条", "第3条"]


async def test_outbound_calls_are_counted_by_errcode(bot: Any) -> None:
    bot.api.follow(OPENID)
    await queue(bot)
    await bot.flush_outbox()
    async with bot.session.get(bot.url("/metrics")) as response:
        metrics = await response.text()
    assert 'bangfu_wechat_calls_total{endpoint="message/custom/send",errcode="45015"} 1.0' in metrics
