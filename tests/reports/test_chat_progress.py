"""进度 through the webhook (reports/chat.py): a member reads their applications and
loans — the next
instalment, its amount and day, what is owed, arrears first; 借款 refused while one is open."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import update

from bangfu_bot.loans.models import loans
from tests.loans.test_loan_chat import staff_pair


async def disbursed(bot: Any, county: Any, chat: Any) -> Any:
    """王德福's 3,500 yuan loan, disbursed on 10 November 2026, year-end instalments."""
    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    for persona, lines in [
        (wang, ["借款", "3500", "养猪", "年底出栏 8 头", "每年年底还一部分", "1"]),
        (officer, ["待办", "1", "批准", "1"]),
        (sun, ["待办", "1", "今天", "孙丽", "猪圈已建好", "是", "1"]),
        (sun, ["待办", "1", "青山镇财政所", "青财担〔2026〕7号", "1"]),
        (sun, ["待办", "1", "今天", "放款单 001", "1"]),
        (qian, ["待办", "1", "是", "1"]),
    ]:
        for line in lines:
            await persona.send(line)
    return wang


async def test_progress_shows_the_next_instalment_and_what_is_owed(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = await disbursed(bot, county, chat)
    text = await wang.send("进度")
    assert text.startswith("您的借款：")
    assert "借款 3,500元（生猪养殖）：" in text
    assert "下一期：第1期 1,923.52元，2027年12月31日到期" in text
    assert "一共还欠 3,500元（本金 3,500元，利息 0元）" in text
    assert "已过期" not in text


async def test_an_overdue_instalment_comes_first_and_is_marked(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = await disbursed(bot, county, chat)
    bot.clock.advance(days=(date(2028, 1, 10) - date(2026, 11, 10)).days)
    text = await wang.send("进度")
    lines = text.splitlines()
    overdue = next(n for n, line in enumerate(lines) if "已过期" in line)
    assert lines[overdue].startswith("【已过期 10 天】现在应还 1,923.52元")
    assert "第2期" in lines[overdue + 1] and "12月31日到期" in lines[overdue + 1]


async def test_a_repaid_loan_is_one_line(bot: Any, county: Any, chat: Any) -> None:
    wang = await disbursed(bot, county, chat)
    async with bot.services.engine.begin() as conn:
        await conn.execute(update(loans).values(status="repaid"))
    text = await wang.send("进度")
    assert "借款 3,500元（生猪养殖）：已还清" in text
    assert "下一期" not in text and "还欠" not in text


async def test_a_second_loan_is_refused_before_any_question(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = await disbursed(bot, county, chat)
    answer = await wang.send("借款")
    assert answer.startswith("您还有一笔借款没还清，还清后才能再借：")
    assert "一共还欠 3,500元" in answer and "乡镇财政所" in answer
    assert "想借多少" not in answer
    assert "您的借款" in await wang.send("进度")  # no flow was begun


async def test_an_application_and_no_loan_reads_as_before(bot: Any, county: Any, chat: Any) -> None:
    from tests.county import bind

    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    assert "您还没有申请" in await wang.send("进度")
