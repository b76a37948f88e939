"""Who is told after a loan step: the next step's to-do goes to everyone who may take it,
pushed to all but the one who has just acted (they are reading the chat)."""

from __future__ import annotations

from typing import Any

from tests.loans.test_loan_chat import staff_pair


async def test_no_one_is_pushed_about_the_step_they_just_took(
    bot: Any, county: Any, chat: Any
) -> None:
    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    for line in ["借款", "3000", "烤烟", "明年卖烟", "到期一次还清", "1"]:
        await wang.send(line)
    for line in ["待办", "1", "批准", "1"]:
        await officer.send(line)
    for line in ["待办", "1", "今天", "孙丽", "猪圈已建好", "是"]:
        await sun.send(line)
    await bot.flush_outbox()
    assert "已记下" in await sun.send("1")
    await bot.flush_outbox()
    assert not [text for text in sun.pushed() if "担保" in text]
    assert [text for text in qian.pushed() if "请登记乡镇财政担保" in text]
    assert "请登记乡镇财政担保" in await sun.send("待办")  # the to-do is there all the same
