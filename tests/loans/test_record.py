"""What the committee reads when reviewing a loan: the summary in the review prompt (amount,
term, project, guarantor, earlier loans and their arrears) and the record on 详情."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert

from bangfu_bot.loans.models import instalments, loans, repayments
from tests.loans.test_loan_chat import staff_pair


async def _an_earlier_loan_repaid_late(bot: Any, county: Any) -> None:
    """A 3,000-yuan loan of 2024, due at the end of 2025 and repaid three weeks late."""
    at = datetime(2024, 3, 1, tzinfo=UTC)
    async with bot.services.engine.begin() as conn:
        loan_id = (
            await conn.execute(
                insert(loans).values(
                    person_id=county.wang_id,
                    branch_id=county.tree.branch,
                    status="repaid",
                    amount_fen=300_000,
                    project="烤烟",
                    earnings="卖烟叶",
                    schedule_kind="bullet",
                    term_years=2,
                    annual_rate_bp=435,
                    disbursed_on=date(2024, 3, 1),
                    created_at=at,
                    updated_at=at,
                )
            )
        ).inserted_primary_key[0]
        await conn.execute(
            insert(instalments).values(
                loan_id=loan_id,
                number=1,
                due_on=date(2025, 12, 31),
                principal_fen=300_000,
                interest_fen=0,
            )
        )
        await conn.execute(
            insert(repayments).values(
                loan_id=loan_id,
                amount_fen=300_000,
                interest_fen=0,
                principal_fen=300_000,
                paid_on=date(2026, 1, 21),
                receipt="收据 0001",
                recorded_at=at,
            )
        )


async def test_the_review_prompt_carries_the_loan_and_the_record_on_details(
    bot: Any, county: Any, chat: Any
) -> None:
    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    await _an_earlier_loan_repaid_late(bot, county)
    for line in ["借款", "3500", "养猪", "年底出栏 8 头，约 1 万 6 千元", "每年年底还一部分"]:
        await wang.send(line)
    assert "借款申请已交上去" in await wang.send("1")
    await officer.send("待办")
    prompt = await officer.send("1")
    assert prompt.startswith("审批王德福的借款申请：")
    for line in [
        "· 借 3500元，2 年，每年年底还一部分，年利率 4.35%",
        "· 用于生猪养殖：年底出栏 8 头，约 1 万 6 千元",
        "· 担保：还没有",
        "· 以前借过 1 笔，还清 1 笔，逾期过 1 期",
        "看全部情况回复“详情”。",
        "批准吗？",
    ]:
        assert line in prompt, line
    assert len(prompt.splitlines()) <= 12

    record = await officer.send("详情")
    assert "【王德福的借款】编号 2，桃源村党支部" in record and "现在：等党委审批" in record
    assert "能挣多少：年底出栏 8 头" in record and "等党委审批（王德福）" in record
    assert record.rstrip().endswith("2. 不批准")
    # The department has no say in the review, so no record either.
    assert "请先回复“待办”" in await sun.send("详情")


async def test_a_first_loan_says_so(bot: Any, county: Any, chat: Any) -> None:
    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    for line in ["借款", "3000", "烤烟", "明年卖烟", "到期一次还清", "1"]:
        await wang.send(line)
    await officer.send("待办")
    assert "· 以前没借过" in await officer.send("1")
