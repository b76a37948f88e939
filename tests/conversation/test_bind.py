"""Binding a WeChat user to the roster: success, wrong answers, the lock, QR codes, 解绑."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
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


async def test_an_official_binding_is_pointed_at_their_work_not_at_applying(
    bot: Any, county: Any, chat: Any
) -> None:
    zhang = chat("o-zhang")
    await zhang.send("绑定")
    await zhang.send("张建国")
    await zhang.send(county.secretary_number[-6:])
    done = await zhang.send("对")
    assert done.startswith("绑定好了！张建国，您好。")
    assert "帮助" in done and "工作台" in done and "申请" not in done


@pytest.mark.parametrize("said", ["我叫王德福", "我是王德福。", "名字叫王德福", "姓名：王德福"])
async def test_a_name_said_in_a_sentence_binds(bot: Any, county: Any, chat: Any, said: str) -> None:
    wang = chat("o-wang")
    await wang.send("绑定")
    assert "最后 6 位" in await wang.send(said)
    assert "1. 姓名：王德福" in await wang.send(county.wang_number[-6:])
    assert (await wang.send("1")).startswith("绑定好了！王德福，您好。")


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


async def miss(chat: Any, name: str) -> str:
    """One whole binding try with a wrong ID tail; the answer to confirming it."""
    await chat.send("绑定")
    await chat.send(name)
    await chat.send("99999X")
    return await chat.send("1")


async def test_five_misses_for_one_name_from_five_accounts_lock_that_name(
    bot: Any, county: Any, chat: Any
) -> None:
    for n in range(4):
        assert "对不上" in await miss(chat(f"o-guess-{n}"), "王德福")
    assert "试错太多次" in await miss(chat("o-guess-4"), "王德福")
    # The name is locked for everyone, even with the right ID tail; no account is.
    wang = chat("o-wang")
    await wang.send("绑定")
    await wang.send("王德福")
    await wang.send(county.wang_number[-6:])
    assert "试错太多次" in await wang.send("1")
    await bind(chat("o-guess-0"), "李大山", county.li_number)  # another name still binds
    bot.clock.advance(minutes=61)
    await bind(wang, "王德福", county.wang_number)


async def test_tries_refused_by_the_name_lock_do_not_make_it_last_longer(
    bot: Any, county: Any, chat: Any
) -> None:
    for n in range(5):
        await miss(chat(f"o-guess-{n}"), "王德福")
    bot.clock.advance(minutes=50)
    for n in range(5, 10):  # five more knocks on the locked name
        assert "试错太多次" in await miss(chat(f"o-guess-{n}"), "王德福")
    bot.clock.advance(minutes=11)  # an hour after the fifth miss
    await bind(chat("o-wang"), "王德福", county.wang_number)


async def test_binding_the_same_person_from_a_second_account_ends_the_first(
    bot: Any, county: Any, chat: Any
) -> None:
    old_phone, new_phone = chat("o-wang-old"), chat("o-wang-new")
    await bind(old_phone, "王德福", county.wang_number)
    await bind(new_phone, "王德福", county.wang_number)
    assert "还没有绑定" in await old_phone.send("解绑")
    assert "已经绑定了，是王德福" in await new_phone.send("绑定")
    await bot.flush_outbox()
    assert old_phone.pushed() == ["您的身份已被另一个微信绑定。如不是您本人，请联系支部书记。"]
    assert new_phone.pushed() == []
    async with bot.services.engine.connect() as conn:
        rows = (await conn.execute(select(bindings).order_by(bindings.c.id))).all()
    assert [(row.openid, row.unbound_at is None) for row in rows] == [
        ("o-wang-old", False),
        ("o-wang-new", True),
    ]


async def test_a_qr_code_also_ends_the_persons_earlier_binding(
    bot: Any, county: Any, chat: Any
) -> None:
    now = bot.clock.now()
    li = chat("o-li")
    await bind(li, "李大山", county.li_number)
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            insert(binding_tickets).values(
                scene="p7Kq2",
                person_id=county.li_id,
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    assert "扫码绑定好了！李大山" in await chat("o-li-new").event("SCAN", "bind:p7Kq2")
    assert "还没有绑定" in await li.send("解绑")
    await bot.flush_outbox()
    assert li.pushed() == ["您的身份已被另一个微信绑定。如不是您本人，请联系支部书记。"]


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
        await conn.execute(
            insert(binding_tickets).values(
                scene="p7Kq2",
                person_id=county.li_id,
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    li = chat("o-li")
    assert "扫码绑定好了！李大山" in await li.event("subscribe", "qrscene_bind:p7Kq2")
    assert "用过或过期" in await chat("o-thief").event("SCAN", "bind:p7Kq2")
