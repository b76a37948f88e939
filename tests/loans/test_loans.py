"""A loan from application to full repayment, and another into arrears and write-off, with
the fund reconciling to the fen after every step."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bangfu_bot import db
from bangfu_bot.common.money import yuan
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import Movement, figures_now, record
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import instalments, loan_events, repayments
from bangfu_bot.members.service import person_by_id
from bangfu_bot.reports.fund import reconciliation_fen
from tests.factories import make_person, make_tree

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def county(database_url: str) -> Any:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    tree = await make_tree(engine, NOW)
    ids = {
        "wang": (await make_person(engine, NOW, name="王德福", branch=tree.branch))[0],
        "zhao": (
            await make_person(
                engine,
                NOW,
                name="赵明",
                branch=tree.other_branch,
                roles=("member", "committee"),
                serial=773,
            )
        )[0],
        "sun": (
            await make_person(
                engine, NOW, name="孙丽", branch=None, roles=("department",), serial=884
            )
        )[0],
        "qian": (
            await make_person(
                engine, NOW, name="钱进", branch=None, roles=("department",), serial=885
            )
        )[0],
    }
    async with engine.begin() as conn:
        people = {key: await person_by_id(conn, value) for key, value in ids.items()}
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=27_000_000,
            source="county_finance",
            document="县财政拨款〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=NOW,
        )
    yield engine, people
    await engine.dispose()


async def step(engine: Any, work: Any) -> Any:
    async with engine.begin() as conn:
        result = await work(conn)
        assert await reconciliation_fen(conn) == 0
        return result


async def disbursed_loan(engine: Any, people: Any, kind: str = "yearly", member: Any = None) -> int:
    terms = loans.Terms()
    loan_id = await step(
        engine,
        lambda c: loans.apply(
            c,
            member=member or people["wang"],
            amount_fen=500_000,
            project="生猪养殖",
            earnings="年底出栏 10 头，约 2 万元",
            schedule_kind=kind,
            terms=terms,
            now=NOW,
        ),
    )
    await step(
        engine,
        lambda c: loans.decide(
            c, loan_id=loan_id, officer=people["zhao"], approve=True, reason=None, now=NOW
        ),
    )
    await step(
        engine,
        lambda c: loans.inspect(
            c,
            loan_id=loan_id,
            staff=people["sun"],
            on=date(2026, 3, 5),
            inspector="孙丽",
            finding="猪圈已建好",
            passed=True,
            now=NOW,
        ),
    )
    await step(
        engine,
        lambda c: loans.guarantee(
            c,
            loan_id=loan_id,
            staff=people["sun"],
            guarantor="青山镇财政所",
            document="青财担〔2026〕7号",
            now=NOW,
        ),
    )
    await step(
        engine,
        lambda c: loans.record_disbursement(
            c,
            loan_id=loan_id,
            staff=people["sun"],
            on=date(2026, 3, 10),
            document="放款单001",
            now=NOW,
        ),
    )
    with pytest.raises(loans.LoanRefused) as refused:
        await step(
            engine,
            lambda c: loans.confirm_disbursement(c, loan_id=loan_id, staff=people["sun"], now=NOW),
        )
    assert "另一位同志复核" in refused.value.message
    await step(
        engine,
        lambda c: loans.confirm_disbursement(c, loan_id=loan_id, staff=people["qian"], now=NOW),
    )
    return loan_id


async def test_from_application_to_full_repayment(county: Any) -> None:
    engine, people = county
    loan_id = await disbursed_loan(engine, people)
    async with engine.connect() as conn:
        plan = (await conn.execute(select(instalments).order_by(instalments.c.number))).all()
        cash = (await figures_now(conn)).cash_fen
    assert [(i.due_on, i.principal_fen) for i in plan] == [
        (date(2026, 12, 31), 250_000),
        (date(2027, 12, 31), 250_000),
    ]
    assert cash == 27_000_000 - 500_000
    first_interest = plan[0].interest_fen
    with pytest.raises(loans.LoanRefused) as refused:
        await step(
            engine,
            lambda c: loans.repay(
                c,
                loan_id=loan_id,
                staff=people["sun"],
                amount_fen=600_000,
                paid_on=date(2026, 12, 31),
                receipt="R1",
                now=NOW,
            ),
        )
    assert "多了不能收" in refused.value.message
    with pytest.raises(loans.LoanRefused):
        await step(
            engine,
            lambda c: loans.repay(
                c,
                loan_id=loan_id,
                staff=people["sun"],
                amount_fen=100,
                paid_on=date(2026, 3, 1),
                receipt="R0",
                now=NOW,
            ),
        )
    text = await step(
        engine,
        lambda c: loans.repay(
            c,
            loan_id=loan_id,
            staff=people["sun"],
            amount_fen=first_interest + 250_000,
            paid_on=date(2026, 12, 31),
            receipt="R1",
            now=NOW,
        ),
    )
    assert "还欠本金 2500元" in text
    async with engine.connect() as conn:
        early = await loans.position(conn, loan_id, date(2027, 6, 1))
    # 152 days of interest on the 2,500 yuan left, accrued by the day: 250000 × 152 × 4.35%
    # / 365 = 4528.77 fen, on top of the 4,546 fen to the first due date (rounded once:
    # round(fen-days × rate) − what the first instalment settled).
    assert early.principal_outstanding_fen == 250_000
    assert early.interest_due_fen == 4529 and early.overdue_fen == 0
    with pytest.raises(loans.LoanRefused) as short:
        await step(
            engine,
            lambda c: loans.repay(
                c,
                loan_id=loan_id,
                staff=people["sun"],
                amount_fen=254_530,
                paid_on=date(2027, 6, 1),
                receipt="R2",
                now=NOW,
            ),
        )
    assert "最多应还 2545.29元（利息 45.29元，本金 2500元）" in short.value.message
    done = await step(
        engine,
        lambda c: loans.repay(
            c,
            loan_id=loan_id,
            staff=people["sun"],
            amount_fen=early.owed_now_fen,
            paid_on=date(2027, 6, 1),
            receipt="R2",
            now=NOW,
        ),
    )
    # Paying early saves the interest not yet accrued, not the interest accrued to the day.
    assert "全部还清" in done and "利息 45.29元" in done
    async with engine.connect() as conn:
        figures = await figures_now(conn)
        story = [
            (e.from_status, e.to_status, e.role)
            for e in (await conn.execute(select(loan_events).order_by(loan_events.c.id))).all()
        ]
    assert figures.cash_fen == 27_000_000 + first_interest + 4529
    assert story[-1] == ("disbursed", "repaid", "system") and story[0][1] == "applied"


async def test_arrears_and_write_off(county: Any) -> None:
    engine, people = county
    loan_id = await disbursed_loan(engine, people, kind="bullet")
    async with engine.connect() as conn:
        due = await loans.position(conn, loan_id, date(2028, 3, 10))
        late = await loans.position(conn, loan_id, date(2028, 4, 20))
    assert due.days_overdue == 0 and due.overdue_fen > 0
    assert late.days_overdue == 41 and late.overdue_fen == due.overdue_fen
    with pytest.raises(loans.LoanRefused):
        await step(
            engine,
            lambda c: loans.write_off(
                c,
                loan_id=loan_id,
                officer=people["sun"],
                reason="病故",
                on=date(2028, 5, 1),
                now=NOW,
            ),
        )
    with pytest.raises(loans.LoanRefused):
        await step(
            engine,
            lambda c: loans.write_off(
                c, loan_id=loan_id, officer=people["zhao"], reason=" ", on=date(2028, 5, 1), now=NOW
            ),
        )
    text = await step(
        engine,
        lambda c: loans.write_off(
            c,
            loan_id=loan_id,
            officer=people["zhao"],
            reason="本人病故，家中无力偿还",
            on=date(2028, 5, 1),
            now=NOW,
        ),
    )
    assert "核销" in text and "5000元" in text
    async with engine.connect() as conn:
        figures = await figures_now(conn)
    assert figures.outstanding_fen == 0 and figures.written_off_fen == 500_000


async def test_a_second_loan_while_one_is_open_is_refused(county: Any) -> None:
    engine, people = county
    await disbursed_loan(engine, people)
    with pytest.raises(loans.LoanRefused) as refused:
        await step(
            engine,
            lambda c: loans.apply(
                c,
                member=people["wang"],
                amount_fen=300_000,
                project="烤烟",
                earnings="",
                schedule_kind="bullet",
                terms=loans.Terms(),
                now=NOW,
            ),
        )
    assert "还清后才能再借" in refused.value.message
    second = await step(
        engine,
        lambda c: loans.apply(  # where the county allows a second
            c,
            member=people["wang"],
            amount_fen=300_000,
            project="烤烟",
            earnings="",
            schedule_kind="bullet",
            terms=loans.Terms(allow_second_loan=True),
            now=NOW,
        ),
    )
    assert second


SERIALS = iter(range(1000))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payments=st.lists(st.integers(min_value=1, max_value=300_000), max_size=6),
    kind=st.sampled_from(["bullet", "yearly", "equal_principal"]),
)
async def test_any_valid_sequence_reconciles(county: Any, payments: list[int], kind: str) -> None:
    engine, people = county
    serial = next(SERIALS)
    person_id, _ = await make_person(
        engine,
        NOW,
        name="借款人",
        branch=people["wang"].branch_id,
        serial=serial % 1000,
        born=date(1960 + serial // 1000, 1, 1),
    )
    async with engine.connect() as conn:
        member = await person_by_id(conn, person_id)
    loan_id = await disbursed_loan(engine, people, kind=kind, member=member)
    day = date(2026, 4, 1)
    for n, amount in enumerate(payments):
        day = date(day.year + (1 if day.month == 12 else 0), day.month % 12 + 1, 1)

        async def pay(conn: Any, amount: int = amount, day: date = day, n: int = n) -> None:
            owed = await loans.position(conn, loan_id, day)
            status = (
                await conn.execute(select(loans.loans.c.status).where(loans.loans.c.id == loan_id))
            ).scalar_one()
            if owed.owed_now_fen and status == "disbursed":
                await loans.repay(
                    conn,
                    loan_id=loan_id,
                    staff=people["sun"],
                    amount_fen=min(amount, owed.owed_now_fen),
                    paid_on=day,
                    receipt=f"P{loan_id}-{n}",
                    now=NOW,
                )

        await step(engine, pay)
    async with engine.connect() as conn:
        figures = await figures_now(conn)
        cash = figures.cash_fen
        book = await loans.book_of(conn, loan_id)
        paid = (
            await conn.execute(
                select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id)
            )
        ).all()
        moved = dict(
            (
                await conn.execute(
                    select(fund_movements.c.kind, func.sum(fund_movements.c.amount_fen))
                    .where(fund_movements.c.loan_id == loan_id)
                    .group_by(fund_movements.c.kind)
                )
            ).all()
        )
    # The member's book, the repayments booked and the fund's movements for the loan agree
    # to the fen, and the interest is never more than accrued by the day.
    assert book.interest_paid_fen == sum(r.interest_fen for r in paid)
    assert book.interest_paid_fen == moved.get("interest_in", 0)
    assert book.principal_paid_fen == sum(r.principal_fen for r in paid)
    assert book.principal_paid_fen == moved.get("principal_in", 0)
    if paid:
        assert book.interest_paid_fen <= book.accrued(paid[-1].paid_on)
    assert cash == (
        figures.contributions_fen
        - figures.loans_out_fen
        + figures.principal_in_fen
        + figures.interest_in_fen
    )
    assert cash >= 0


async def test_fund_report_reconciles_and_lists_ages(county: Any, tmp_path: Any) -> None:
    import openpyxl

    from bangfu_bot.reports.fund import export_fund_report

    engine, people = county
    loan_id = await disbursed_loan(engine, people, kind="bullet")
    out = tmp_path / "基金.xlsx"
    report = await export_fund_report(engine, year=2026, out=out, today=date(2028, 8, 1))
    assert report.reconciliation_fen == 0 and report.movements == 2
    book = openpyxl.load_workbook(out)
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True)}
    assert summary["现有资金"] == 265000 and summary["对账差额（应为 0.00）"] == 0
    (header, row, _, risk) = list(book["借款余额"].iter_rows(values_only=True))
    assert row[0] == loan_id and row[6] == "逾期90天以上" and risk[3] == 5000


@pytest.mark.parametrize(
    ("today", "age", "at_risk"),
    [
        (date(2028, 3, 1), "未逾期", 0),
        (date(2028, 3, 25), "逾期1-30天", 0),
        (date(2028, 5, 1), "逾期31-90天", 0),
        (date(2028, 8, 1), "逾期90天以上", 5000),
    ],
)
async def test_the_fund_report_ages_each_loan_and_lists_what_is_due(
    county: Any, tmp_path: Any, today: date, age: str, at_risk: int
) -> None:
    import openpyxl

    from bangfu_bot.reports.fund import export_fund_report

    engine, people = county
    await disbursed_loan(engine, people, kind="bullet")  # 5,000 yuan due on 2028-03-10
    out = tmp_path / "基金.xlsx"
    await export_fund_report(engine, year=2026, out=out, today=today)
    book = openpyxl.load_workbook(out)
    (_, row, _, risk) = list(book["借款余额"].iter_rows(values_only=True))
    assert (row[6], risk[3]) == (age, at_risk)
    moves = list(book["资金变动"].iter_rows(values_only=True))[1:]
    assert [(move[1], move[3]) for move in moves] == [("筹集", 270000), ("借款发放", 5000)]
    expected = list(book["预计还款"].iter_rows(values_only=True))[1:]
    if today <= date(2028, 3, 10):
        ((month, principal, interest),) = expected  # the bullet, with two years' interest
        assert (month, principal) == ("2028-03", 5000) and interest > 0
    else:
        assert expected == []  # what is overdue is in 借款余额, not expected


async def test_repayments_on_the_edges_of_the_schedule(county: Any) -> None:
    engine, people = county
    loan_id = await disbursed_loan(engine, people, kind="bullet")  # 5,000 yuan on 10 March

    def pay(amount: int, day: date, receipt: str) -> Any:
        return step(
            engine,
            lambda c: loans.repay(
                c,
                loan_id=loan_id,
                staff=people["sun"],
                amount_fen=amount,
                paid_on=day,
                receipt=receipt,
                now=NOW,
            ),
        )

    for amount in (0, -100):
        with pytest.raises(loans.LoanRefused) as refused:
            await pay(amount, date(2026, 3, 10), f"Z{amount}")
        assert refused.value.message == "还款金额要大于 0。"
    # On the day of disbursement no interest has accrued: all of it is principal.
    assert "利息 0元" in await pay(100_000, date(2026, 3, 10), "R1")
    async with engine.connect() as conn:
        plan = (
            await conn.execute(select(instalments).where(instalments.c.loan_id == loan_id))
        ).one()
        eve = await loans.position(conn, loan_id, plan.due_on - timedelta(days=1))
        due = await loans.position(conn, loan_id, plan.due_on)
    # The day before the due date owes one day's interest less on the 4,000 yuan left.
    assert due.interest_due_fen - eve.interest_due_fen == round(400_000 * 435 / 3_650_000)
    with pytest.raises(loans.LoanRefused) as refused:
        await pay(eve.owed_now_fen + 1, plan.due_on - timedelta(days=1), "R2")
    assert f"最多应还 {yuan(eve.owed_now_fen)}" in refused.value.message  # the figure owed
    done = await pay(eve.owed_now_fen, plan.due_on - timedelta(days=1), "R2")
    assert "全部还清" in done


async def test_a_repayment_a_year_late_settles_the_interest_of_every_day(county: Any) -> None:
    engine, people = county
    loan_id = await disbursed_loan(engine, people, kind="bullet")  # 5,000 yuan, due 2028-03-10
    late = date(2029, 3, 10)  # a year after the due date: 1,096 days since disbursement
    accrued = (500_000 * 1_096 * 435 + 1_825_000) // 3_650_000  # half up, once: 653.10 yuan
    async with engine.connect() as conn:
        owed = await loans.position(conn, loan_id, late)
    assert owed.days_overdue == 365
    assert (owed.interest_due_fen, owed.owed_now_fen) == (accrued, 500_000 + accrued)
    # What fell due a year ago (the principal with 731 days' interest) is in arrears; the
    # year since has accrued on the same principal and is owed with it.
    assert owed.overdue_fen == 500_000 + (500_000 * 731 * 435 + 1_825_000) // 3_650_000

    def pay(amount: int, receipt: str) -> Any:
        return step(
            engine,
            lambda c: loans.repay(
                c,
                loan_id=loan_id,
                staff=people["sun"],
                amount_fen=amount,
                paid_on=late,
                receipt=receipt,
                now=NOW,
            ),
        )

    with pytest.raises(loans.LoanRefused) as refused:
        await pay(500_000 + accrued + 1, "L0")
    assert f"最多应还 {yuan(500_000 + accrued)}（利息 {yuan(accrued)}" in refused.value.message
    done = await pay(500_000 + accrued, "L1")
    assert f"利息 {yuan(accrued)}，本金 5000元" in done and "全部还清" in done
    async with engine.connect() as conn:
        figures = await figures_now(conn)
    assert figures.interest_in_fen == accrued and figures.principal_in_fen == 500_000
