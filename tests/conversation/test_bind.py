"""Binding a WeChat user to the roster: success, wrong answers, the lock, QR codes, 解绑."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from bangfu_bot.members.models import binding_tickets, bindings
from tests.county import bind


async def test_follow_welcomes_in_three_lines(bot: Any, county: Any, chat: Any) -> None:
    welcome = await chat("o-new").event("subscribe")
    assert len(welcome.splitlines()) == 3 and "绑定" in welcome


async def test_unbound_user_is_told_how_to_bind(bot: Any, county: Any, chat: Any) -> None:
    assert "绑定" in await chat("o-new").send("申请")
    assert "绑定" in await chat("o-new").send("进度")


async def test_binding_with_name_and_id_tail(bot: Any, county: Any, chat: Any) -> None:
    wang = chat("o-wang")
    assert "叫什么名字" in await wang.send("绑定")
    assert "最后 6 位" in await wang.send("王 德 福")
    summary = await wang.send(county.wang_number[-6:])
    assert "1. 姓名：王德福" in summary and f"2. 身份证后六位：{county.wang_number[-6:]}" in summary
    done = await wang.send("对")
    assert done.startswith("绑定好了！王德福，您好。")
    assert "申请帮扶" in await wang.send("帮助") or "申请" in await wang.send("帮助")
    assert "已经绑定了，是王德福" in await wang.send("绑定")


async def test_bad_id_tail_is_asked_again_without_losing_the_name(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = chat("o-wang")
    await wang.send("绑定")
    await wang.send("王德福")
    retry = await wang.send("12345")
    assert retry.startswith("请回复身份证号最后 6 位")
    summary = await wang.send(county.wang_number[-6:])
    assert "王德福" in summary


async def test_five_wrong_tries_lock_binding_for_an_hour(bot: Any, county: Any, chat: Any) -> None:
    stranger = chat("o-stranger")
    for attempt in range(5):
        if attempt == 0:
            await stranger.send("绑定")
        await stranger.send("王德福")
        await stranger.send("99999X")
        answer = await stranger.send("1")
    assert "太多" in answer
    assert "太多" in await stranger.send("绑定")
    bot.clock.advance(minutes=61)
    assert "叫什么名字" in await stranger.send("绑定")
    await stranger.send("王德福")
    await stranger.send(county.wang_number[-6:])
    assert (await stranger.send("1")).startswith("绑定好了")


async def test_unbind_is_recorded_not_deleted(bot: Any, county: Any, chat: Any) -> None:
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    assert "已经解绑" in await wang.send("解绑")
    assert "绑定" in await wang.send("进度")
    async with bot.services.engine.connect() as conn:
        rows = (await conn.execute(select(bindings))).all()
    assert len(rows) == 1 and rows[0].unbound_at is not None


async def test_scanning_a_personal_qr_code_binds(bot: Any, county: Any, chat: Any) -> None:
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        await conn.execute(insert(binding_tickets).values(
            scene="p7Kq2", person_id=county.li_id, created_at=now,
            expires_at=now + timedelta(days=30)))
    li = chat("o-li")
    assert "扫码绑定好了！李大山" in await li.event("subscribe", "qrscene_bind:p7Kq2")
    assert "用过或过期" in await chat("o-thief").event("SCAN", "bind:p7Kq2")
