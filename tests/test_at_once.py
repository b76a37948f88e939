"""Two people at once, through the webhook: two confirmations of one disbursement, two
resolutions of one objection, two repayments with one receipt number, and one person's
double tap. Exactly one takes effect, the other is told who did it, money moves once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, insert, select

from bangfu_bot.cases import procedure
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases, objections
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import contribute
from bangfu_bot.loans import prompts
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import repayments
from bangfu_bot.members.service import person_by_id
from bangfu_bot.reports.fund import reconciliation_fen
from bangfu_bot.todos.models import todos
from tests.county import bind
from tests.factories import make_person

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


async def staff_trio(bot: Any, county: Any, chat: Any) -> tuple[Any, Any, int]:
    """孙丽 and 周敏 (department) bound in chat; 钱进 (department) records disbursements."""
    engine, now = bot.services.engine, bot.clock.now()
    zhou_id, zhou_no = await make_person(
        engine,
        now,
        name="周敏",
        branch=None,
        roles=("department",),
        serial=886,
        born=date(1983, 6, 6),
    )
    qian_id, _ = await make_person(
        engine,
        now,
        name="钱进",
        branch=None,
        roles=("department",),
        serial=885,
        born=date(1982, 4, 4),
    )
    sun, zhou = chat("o-sun"), chat("o-zhou")
    await bind(sun, "孙丽", county.staff_number)
    await bind(zhou, "周敏", zhou_no)
    async with engine.begin() as conn:
        await contribute(
            conn,
            actor=None,
            amount_fen=10_000_000,
            source="county_finance",
            document="县财政〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=now,
        )
    return sun, zhou, qian_id


async def recorded_loan(bot: Any, county: Any, qian_id: int, *, confirm: bool = False) -> int:
    """王德福's loan walked up to the recorded disbursement (by 钱进), or past it."""
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        member = await person_by_id(conn, county.wang_id)
        officer = await person_by_id(conn, county.officer_id)
        qian = await person_by_id(conn, qian_id)
        staff = await person_by_id(conn, county.staff_id)
        loan_id = await loans.apply(
            conn,
            member=member,
            amount_fen=300_000,
            project="烤烟",
            earnings="卖烟",
            schedule_kind="bullet",
            terms=loans.Terms(term_years=1),
            now=now,
        )
        await loans.decide(
            conn, loan_id=loan_id, officer=officer, approve=True, reason=None, now=now
        )
        await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=qian,
            on=date(2026, 11, 10),
            inspector="钱进",
            finding="属实",
            passed=True,
            now=now,
        )
        await loans.guarantee(
            conn,
            loan_id=loan_id,
            staff=qian,
            guarantor="青山镇财政所",
            document="青财担7号",
            now=now,
        )
        await loans.record_disbursement(
            conn, loan_id=loan_id, staff=qian, on=date(2026, 11, 10), document="放款单 7", now=now
        )
        if confirm:
            await loans.confirm_disbursement(conn, loan_id=loan_id, staff=staff, now=now)
        await prompts.after(conn, loan_id=loan_id, now=now)
    return loan_id


async def movements(bot: Any, kind: str) -> int:
    async with bot.services.engine.connect() as conn:
        assert await reconciliation_fen(conn) == 0
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(fund_movements)
                    .where(fund_movements.c.kind == kind)
                )
            ).scalar_one()
        )


async def test_two_confirmations_at_once_pay_out_once(bot: Any, county: Any, chat: Any) -> None:
    sun, zhou, qian_id = await staff_trio(bot, county, chat)
    loan_id = await recorded_loan(bot, county, qian_id)
    for staff in (sun, zhou):
        assert "钱进登记了给王德福放款 3000元" in await staff.send("待办")
        await staff.send("1")
        await staff.send("是")
    first, second = await asyncio.gather(sun.send("1"), zhou.send("1"))
    assert sorted(["已确认放款" in first, "已确认放款" in second]) == [False, True]
    later = second if "已确认放款" in first else first
    winner = "孙丽" if "已确认放款" in first else "周敏"
    assert f"这笔借款刚由{winner}办过了" in later
    assert await movements(bot, "loan_out") == 1
    async with bot.services.engine.connect() as conn:
        loan = (await conn.execute(select(loans.loans).where(loans.loans.c.id == loan_id))).one()
    assert loan.status == "disbursed"


async def test_a_double_tap_on_confirm_pays_out_once(bot: Any, county: Any, chat: Any) -> None:
    sun, _, qian_id = await staff_trio(bot, county, chat)
    await recorded_loan(bot, county, qian_id)
    for line in ("待办", "1", "是"):
        await sun.send(line)
    taps = await asyncio.gather(sun.send("1"), sun.send("1"))
    assert sum("已确认放款" in tap for tap in taps) == 1
    assert await movements(bot, "loan_out") == 1


async def test_two_repayments_with_one_receipt_are_booked_once(
    bot: Any, county: Any, chat: Any
) -> None:
    sun, zhou, qian_id = await staff_trio(bot, county, chat)
    loan_id = await recorded_loan(bot, county, qian_id, confirm=True)
    for staff in (sun, zhou):
        for line in ("还款登记", "王德福", county.wang_number[-6:], "1000", "今天", "收据 0098"):
            await staff.send(line)
    first, second = await asyncio.gather(sun.send("1"), zhou.send("1"))
    assert sorted(["已记下还款 1000元" in first, "已记下还款 1000元" in second]) == [False, True]
    later, winner = (second, "孙丽") if "已记下还款" in first else (first, "周敏")
    assert f"这张收据（收据 0098）{winner}已经登记过了" in later
    async with bot.services.engine.connect() as conn:
        booked = (
            await conn.execute(
                select(func.count()).select_from(repayments).where(repayments.c.loan_id == loan_id)
            )
        ).scalar_one()
    assert booked == 1 and await movements(bot, "principal_in") == 1


async def test_two_secretaries_resolving_one_objection_resolve_it_once(
    bot: Any, county: Any, chat: Any
) -> None:
    engine, now = bot.services.engine, bot.clock.now()
    _, meng_no = await make_person(
        engine,
        now,
        name="孟书记",
        branch=county.tree.branch,
        roles=("member", "secretary"),
        serial=458,
        born=date(1972, 7, 7),
    )
    objector_id, _ = await make_person(
        engine, now, name="陈群众", branch=county.tree.branch, serial=459, born=date(1966, 6, 6)
    )
    zhang, meng = chat("o-zhang"), chat("o-meng")
    await bind(zhang, "张建国", county.secretary_number)
    await bind(meng, "孟书记", meng_no)
    async with engine.begin() as conn:
        case_id = int(
            (
                await conn.execute(
                    insert(cases).values(
                        person_id=county.wang_id,
                        branch_id=county.tree.branch,
                        kind="hardship",
                        status=S.ON_NOTICE,
                        category="缺资金",
                        help_wanted="资金",
                        household_size=1,
                        household_income_fen=0,
                        looks_above_line=False,
                        answers={},
                        filed_by=county.wang_id,
                        consent_recorded=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            ).inserted_primary_key[0]
        )
        objector = await person_by_id(conn, objector_id)
        assert objector is not None
        await procedure.raise_objection(
            conn, person=objector, name="王德福", text="他家有车", now=now
        )
    for secretary in (zhang, meng):  # both secretaries hold a copy of the to-do
        assert "对王德福的公示有异议" in await secretary.send("待办")
        await secretary.send("1")
        await secretary.send("已核实，车是借的，异议不成立")
    first, second = await asyncio.gather(zhang.send("1"), meng.send("1"))
    assert sorted(["已记下处理结果" in first, "已记下处理结果" in second]) == [False, True]
    winner = "张建国" if "已记下处理结果" in first else "孟书记"
    assert f"这条异议{winner}已经处理过了" in (second if winner == "张建国" else first)
    async with engine.connect() as conn:
        resolved = (
            await conn.execute(
                select(func.count())
                .select_from(objections)
                .where(objections.c.case_id == case_id, objections.c.resolved_at.is_not(None))
            )
        ).scalar_one()
        open_copies = (
            await conn.execute(
                select(func.count())
                .select_from(todos)
                .where(
                    todos.c.case_id == case_id,
                    todos.c.kind == "objection",
                    todos.c.done_at.is_(None),
                )
            )
        ).scalar_one()
    assert resolved == 1 and open_copies == 0  # every copy of the to-do closed with it


async def test_the_same_acts_sent_again_after_a_restart_take_effect_once(
    start_bot: Any, bot: Any, county: Any, chat: Any
) -> None:
    sun, zhou, qian_id = await staff_trio(bot, county, chat)
    loan_id = await recorded_loan(bot, county, qian_id)
    for staff in (sun, zhou):  # both open the 复核 to-do before the restart
        await staff.send("待办")
        await staff.send("1")
        await staff.send("是")
    confirmed = await sun.driver.text(sun.openid, "1", msg_id=7_700_001)
    assert "已确认放款" in (confirmed.text or "")
    for line in ("还款登记", "王德福", county.wang_number[-6:], "1000", "今天", "收据 0099"):
        await sun.send(line)
    assert "已记下还款 1000元" in await sun.send("1")

    await bot.server.close()  # the process restarts; nothing is kept in memory
    again = await start_bot()
    sun.driver, zhou.driver = again.driver("safe"), again.driver("safe")
    # WeChat's retry of the confirmation, after the restart: the stored answer, no second act.
    retried = await sun.driver.text(sun.openid, "1", msg_id=7_700_001)
    assert retried.text == confirmed.text
    # The other staff member confirms from the flow he opened before the restart.
    assert "这笔借款刚由孙丽办过了" in await zhou.send("1")
    # The one who confirmed has no 复核 left to do; her repayment typed again is refused.
    assert "复核" not in await sun.send("待办")
    for line in ("还款登记", "王德福", county.wang_number[-6:], "1000", "今天", "收据 0099"):
        await sun.send(line)
    assert "这张收据（收据 0099）孙丽已经登记过了" in await sun.send("1")
    await sun.send("取消")
    async with again.services.engine.connect() as conn:
        booked = (
            await conn.execute(
                select(func.count()).select_from(repayments).where(repayments.c.loan_id == loan_id)
            )
        ).scalar_one()
    assert booked == 1
    assert await movements(again, "loan_out") == 1 and await movements(again, "principal_in") == 1


async def test_a_to_do_number_sent_by_another_user_opens_nothing_of_hers(
    bot: Any, county: Any, chat: Any
) -> None:
    sun, _, qian_id = await staff_trio(bot, county, chat)
    loan_id = await recorded_loan(bot, county, qian_id)
    wang, zhao = chat("o-wang"), chat("o-zhao")
    await bind(wang, "王德福", county.wang_number)
    await bind(zhao, "赵明", county.officer_number)
    assert "1. 钱进登记了给王德福放款 3000元" in await sun.send("待办")
    # Her list is hers: the borrower and an officer sending its number open nothing of it.
    for other in (wang, zhao):
        assert "复核" not in await other.send("1")
        assert "钱进登记了" not in await other.send("待办")
        for line in ("1", "是", "1"):
            assert "已确认放款" not in await other.send(line)
    async with bot.services.engine.connect() as conn:
        loan = (await conn.execute(select(loans.loans).where(loans.loans.c.id == loan_id))).one()
    assert loan.status == "recorded" and await movements(bot, "loan_out") == 0
    # Her own number still opens it.
    assert "钱进登记了给王德福放款 3000元" in await sun.send("1")
