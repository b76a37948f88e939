"""A loan through the webhook: member, committee officer, two department staff; reminders;
the supervisor asks 基金."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bangfu_bot.app import run_jobs
from bangfu_bot.fund.service import Movement, record
from bangfu_bot.loans.models import loans
from tests.county import bind
from tests.factories import make_person


async def staff_pair(bot: Any, county: Any, chat: Any) -> tuple[Any, Any, Any, Any]:
    _, qian_number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱进",
        branch=None,
        roles=("department", "supervisor"),
        serial=885,
        born=date(1982, 4, 4),
    )
    wang, officer, sun, qian = chat("o-wang"), chat("o-zhao"), chat("o-sun"), chat("o-qian")
    await bind(wang, "王德福", county.wang_number)
    await bind(officer, "赵明", county.officer_number)
    await bind(sun, "孙丽", county.staff_number)
    await bind(qian, "钱进", qian_number)
    async with bot.services.engine.begin() as conn:
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=27_000_000,
            source="county_finance",
            document="县财政〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=bot.clock.now(),
        )
    return wang, officer, sun, qian


async def test_loan_from_chat_to_repayment_with_reminders(bot: Any, county: Any, chat: Any) -> None:
    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    assert "想借多少元" in await wang.send("借款")
    assert "3000 到 5000" in await wang.send("8000")  # outside the bounds: asked again
    await wang.send("三千五百元")
    assert "大概能挣多少" in await wang.send("养猪")  # 生猪养殖, by the flow's synonyms
    await wang.send("年底出栏 8 头，约 1 万 6 千元")
    summary = await wang.send("每年年底还一部分")
    assert "1. 借多少：3500元" in summary and "2. 做什么：生猪养殖" in summary
    assert "借款申请已交上去" in await wang.send("1")
    assert "还清后才能再借" in (await _reapply(wang))

    for persona, lines in [
        (officer, ["待办", "1", "批准", "1"]),
        (sun, ["待办", "1", "今天", "孙丽", "猪圈已建好，饲料已备", "是", "1"]),
        (sun, ["待办", "1", "青山镇财政所", "青财担〔2026〕7号", "1"]),
        (sun, ["待办", "1", "今天", "放款单 001", "1"]),
    ]:
        for line in lines:
            last = await persona.send(line)
    assert "已请另一位同志复核" in last
    assert "复核" not in await sun.send("待办")  # the recorder is not asked to confirm
    opened = await qian.send("待办")
    assert "孙丽登记了给王德福放款 3500元" in opened
    await qian.send("1")
    await qian.send("是")
    done = await qian.send("1")
    # Disbursed on 10 November: the first year-end is under 180 days away, so the first
    # instalment falls on the next one.
    assert "已确认放款" in done and "第1期 2027年12月31日：本金 1750元，利息 173.52元" in done
    await bot.flush_outbox()
    assert any("借款 3500元 已经放款" in text for text in wang.pushed())

    funds = await qian.send("基金")
    assert "现有资金 266500元" in funds and "在外借款本金 3500元" in funds and "对账：平" in funds
    assert "只有监督小组能用" in await wang.send("基金")

    # 30 days before the first due date, the member is reminded once.
    bot.clock.advance(days=(date(2027, 12, 1) - date(2026, 11, 10)).days)
    await wang.send("你好")  # inside the window so the reminder goes as a message
    await run_jobs(bot.services)
    await run_jobs(bot.services)
    await bot.flush_outbox()
    reminders = [text for text in wang.pushed() if "提醒一下" in text]
    assert len(reminders) == 1 and "2027年12月31日 到期，应还 1923.52元" in reminders[0]

    repaid = await sun.send("还款登记")
    assert "谁还的款" in repaid
    for line in ["王德福", county.wang_number[-6:], "1750", "今天", "收据 0098"]:
        await sun.send(line)
    recorded = await sun.send("1")
    # Paid 30 days before the due date: the interest accrued to that day (not the whole
    # period's), the rest to principal; what is left due on the day is said plainly.
    assert "已记下还款 1750元：利息 161.01元" in recorded and "本金 1588.99元" in recorded
    assert "还欠本金 1911.01元" in recorded
    assert "下一期 2027年12月31日 到期，那天应还 167.84元" in recorded
    async with bot.services.engine.connect() as conn:
        (loan,) = (await conn.execute(select(loans))).all()
    assert loan.status == "disbursed" and loan.confirmed_by != loan.recorded_by


async def _reapply(wang: Any) -> str:
    # Refused before the first question, with the loan as it stands.
    answer = await wang.send("借款")
    assert "想借多少元" not in answer and "等党委审批" in answer
    return answer


async def test_arrears_guarantor_call_and_write_off(bot: Any, county: Any, chat: Any) -> None:
    from bangfu_bot.loans import service as loan_service
    from bangfu_bot.members.service import person_by_id

    wang, officer, sun, qian = await staff_pair(bot, county, chat)
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        member = await person_by_id(conn, county.wang_id)
        zhao = await person_by_id(conn, county.officer_id)
        sun_p = await person_by_id(conn, county.staff_id)
        loan_id = await loan_service.apply(
            conn,
            member=member,
            amount_fen=300_000,
            project="烤烟",
            earnings="卖烟",
            schedule_kind="bullet",
            terms=loan_service.Terms(term_years=1),
            now=now,
        )
        await loan_service.decide(
            conn, loan_id=loan_id, officer=zhao, approve=True, reason=None, now=now
        )
        await loan_service.inspect(
            conn,
            loan_id=loan_id,
            staff=sun_p,
            on=date(2026, 11, 10),
            inspector="孙丽",
            finding="好",
            passed=True,
            now=now,
        )
        await loan_service.guarantee(
            conn, loan_id=loan_id, staff=sun_p, guarantor="青山镇财政所", document="文7", now=now
        )
        await loan_service.record_disbursement(
            conn, loan_id=loan_id, staff=sun_p, on=date(2026, 11, 10), document="单1", now=now
        )
        from bangfu_bot.members.models import people

        qian_person = await person_by_id(
            conn,
            (await conn.execute(select(people.c.id).where(people.c.name == "钱进"))).scalar_one(),
        )
        await loan_service.confirm_disbursement(conn, loan_id=loan_id, staff=qian_person, now=now)
    # Due 10 November 2027; 31 days later nothing has been paid.
    bot.clock.advance(days=365 + 31)
    for persona in (wang, secretary):
        await persona.send("你好")
    await run_jobs(bot.services)
    await run_jobs(bot.services)
    await bot.flush_outbox()
    overdue = [t for t in wang.pushed() if "已过 31 天" in t]
    assert len(overdue) == 1 and "有困难请跟支部书记说" in overdue[0]
    assert any("抄送：王德福的借款" in t for t in secretary.pushed())
    assert "请联系担保方青山镇财政所" in await sun.send("待办")
    todos = await officer.send("待办")
    assert "已请组织部联系担保方" in todos
    await officer.send("1")
    await officer.send("核销")
    await officer.send("本人病重，家中无力偿还，担保方已核实")
    assert "已核销 王德福的借款本金 3000元" in await officer.send("1")
    async with bot.services.engine.connect() as conn:
        (loan,) = (await conn.execute(select(loans))).all()
    assert loan.status == "written_off"
    assert "核销 3000元" in await qian.send("基金") and "对账：平" in await qian.send("基金")
