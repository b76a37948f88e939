"""借款与基金 on the desk: the figures a department officer checks against the supervisors'
fund report, to the fen."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.reports.fund import export_fund_report
from bangfu_bot.reports.money import (
    OVERDUE,
    FundReportFile,
    arrears_buckets,
    fund_movements,
    fund_position,
    fund_report_xlsx,
    loan_list,
    loan_record,
)
from tests.ledger.test_export import (
    County,
    county,  # noqa: F401  (the ledger's two-township county)
    values,
)
from tests.reports.conftest import Lending

TODAY = date(2027, 2, 15)  # 刘德明's first instalment is 46 days behind


async def test_the_loan_list_shows_where_each_loan_stands(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    page = await loan_list(session, today=TODAY)

    assert page.total == 3
    by_name = {row.borrower: row for row in page.rows}
    assert [row.borrower for row in page.rows] == ["刘德明", "陈志强", "王建国"]
    liu, chen, wang = by_name["刘德明"], by_name["陈志强"], by_name["王建国"]
    assert (liu.status, liu.status_name, liu.township, liu.branch) == (
        "disbursed",
        "已放款，按计划还款",
        "白水镇党委",
        "白水村党支部",
    )
    assert (liu.principal_outstanding_fen, liu.days_overdue) == (500_000, 46)
    assert liu.overdue_fen > 250_000  # the half due, with its interest
    assert (chen.principal_outstanding_fen, chen.days_overdue, chen.overdue_fen) == (
        250_000,
        0,
        0,
    )
    assert chen.next_due_on == date(2027, 12, 31) and chen.next_due_fen > 250_000
    assert (wang.next_due_on, wang.days_overdue) == (date(2028, 3, 10), 0)


async def test_the_loan_list_masks_phones_and_id_numbers_unless_asked(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    masked = (await loan_list(session, today=TODAY, q="刘")).rows[0]
    whole = (await loan_list(session, today=TODAY, q="刘", unmasked=True)).rows[0]

    assert masked.phone == "138****8000" and whole.phone == "13800138000"
    assert whole.id_number == county.ids["刘德明"]
    assert masked.id_number == county.ids["刘德明"][:3] + "*" * 13 + county.ids["刘德明"][-2:]


async def test_the_loan_list_filters_and_pages(
    session: AsyncSession, county: County, lending: Lending, baishui: int
) -> None:
    qingshan = await loan_list(session, today=TODAY, township_id=county.tree.committee)
    assert [row.borrower for row in qingshan.rows] == ["陈志强", "王建国"]
    branch = await loan_list(session, today=TODAY, branch_id=county.tree.branch)
    assert branch.total == 2
    assert (await loan_list(session, today=TODAY, township_id=baishui)).total == 1
    behind = await loan_list(session, today=TODAY, arrears=OVERDUE)
    assert [row.borrower for row in behind.rows] == ["刘德明"]
    second = await loan_list(session, today=TODAY, limit=2, offset=2)
    assert (second.total, [row.borrower for row in second.rows]) == (3, ["王建国"])
    assert (await loan_list(session, today=TODAY, status="repaid")).total == 0


async def test_sql_metacharacters_in_a_name_search_match_nothing(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    for q in ("%", "_", "' OR 1=1 --", "\\", "刘%"):
        assert (await loan_list(session, today=TODAY, q=q)).total == 0


async def test_a_loan_record_has_schedule_repayments_and_transitions(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    record = await loan_record(session, lending.loans["陈志强"], today=TODAY)

    assert record is not None
    assert [(line.due_on, line.principal_fen, line.settled) for line in record.schedule] == [
        (date(2026, 12, 31), 250_000, True),
        (date(2027, 12, 31), 250_000, False),
    ]
    (paid,) = record.repayments
    assert (paid.paid_on, paid.principal_fen, paid.receipt, paid.recorded_by) == (
        date(2026, 12, 31),
        250_000,
        "收据0001",
        "孙丽",
    )
    assert paid.amount_fen == paid.principal_fen + paid.interest_fen
    assert [event.to_status for event in record.events] == [
        "applied",
        "approved",
        "inspected",
        "guaranteed",
        "recorded",
        "disbursed",
    ]
    assert record.events[1].actor == "赵明"
    assert record.loan.phone == "138****8000"


async def test_another_townships_loan_is_not_found(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    loan = lending.loans["刘德明"]
    assert await loan_record(session, loan, today=TODAY, township_id=county.tree.committee) is None
    assert await loan_record(session, 9999, today=TODAY) is None


async def test_arrears_buckets_match_the_fund_reports_ages(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending, tmp_path: Path
) -> None:
    buckets = await arrears_buckets(session, today=TODAY)

    assert [(b.label, b.loans, b.principal_outstanding_fen) for b in buckets] == [
        ("未逾期", 2, 750_000),
        ("逾期1-30天", 0, 0),
        ("逾期31-90天", 1, 500_000),
        ("逾期90天以上", 0, 0),
    ]
    await export_fund_report(engine, year=2026, out=tmp_path / "基金.xlsx", today=TODAY)
    ages = values(load_workbook(tmp_path / "基金.xlsx")["借款余额"])[1:-2]
    in_report: dict[str, tuple[int, int]] = {}
    for row in ages:
        count, yuan = in_report.get(row[6], (0, 0))
        in_report[row[6]] = (count + 1, yuan + round(row[3] * 100))
    assert in_report == {
        b.label: (b.loans, b.principal_outstanding_fen) for b in buckets if b.loans
    }


async def test_arrears_buckets_age_with_time_and_keep_to_the_scope(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    later = await arrears_buckets(session, today=date(2027, 4, 15))  # 105 days
    assert [b.loans for b in later] == [2, 0, 0, 1]
    qingshan = await arrears_buckets(session, today=TODAY, township_id=county.tree.committee)
    assert [b.loans for b in qingshan] == [2, 0, 0, 0]
    due_today = await arrears_buckets(session, today=date(2026, 12, 31))
    assert [b.loans for b in due_today] == [3, 0, 0, 0]
    next_day = await arrears_buckets(session, today=date(2027, 1, 1))
    assert [b.loans for b in next_day] == [2, 1, 0, 0]


@pytest.mark.parametrize(
    ("today", "bucket"),
    [
        (date(2026, 12, 31), "current"),  # due today is not yet behind
        (date(2027, 1, 1), "1_30"),
        (date(2027, 1, 30), "1_30"),  # 30 days
        (date(2027, 1, 31), "31_90"),  # 31 days
        (date(2027, 3, 31), "31_90"),  # 90 days
        (date(2027, 4, 1), "over_90"),  # 91 days
    ],
)
async def test_a_buckets_list_holds_the_loans_it_counts(
    session: AsyncSession, county: County, lending: Lending, today: date, bucket: str
) -> None:
    buckets = await arrears_buckets(session, today=today)

    for b in buckets:
        listed = await loan_list(session, today=today, arrears=b.key)
        assert listed.total == b.loans, (today, b.key)
        assert sum(row.principal_outstanding_fen for row in listed.rows) == (
            b.principal_outstanding_fen
        )
    liu_in = await loan_list(session, today=today, arrears=bucket)
    assert "刘德明" in [row.borrower for row in liu_in.rows]
    overdue = await loan_list(session, today=today, arrears=OVERDUE)
    assert overdue.total == sum(b.loans for b in buckets if b.key != "current")


async def test_the_fund_position_reconciles_as_the_report_does(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    position = await fund_position(session)

    assert position.contributions_fen == 27_000_000
    assert position.loans_out_fen == 1_500_000
    assert position.principal_in_fen == 250_000
    assert position.outstanding_fen == position.loans_outstanding_fen == 1_250_000
    assert position.cash_fen == 27_000_000 - 1_500_000 + 250_000 + position.interest_in_fen
    assert position.reconciliation_fen == 0 and position.balanced


async def test_fund_movements_filter_by_kind_and_source(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    everything = await fund_movements(session)
    assert everything.total == 6
    lent = await fund_movements(session, kind="loan_out")
    assert (lent.total, lent.amount_fen) == (3, 1_500_000)
    assert {row.cash_effect_fen for row in lent.rows} == {-500_000}
    assert lent.rows[0].kind_name == "借款发放"
    raised = await fund_movements(session, source="county_finance")
    assert [(row.source_name, row.document) for row in raised.rows] == [
        ("县财政", "县财政拨款〔2026〕3号")
    ]
    page = await fund_movements(session, limit=2, offset=0, since=date(2026, 12, 1))
    assert page.total == 2 and {row.kind for row in page.rows} == {"principal_in", "interest_in"}


async def test_the_fund_report_download_is_the_cli_workbook(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending, tmp_path: Path
) -> None:
    await export_fund_report(engine, year=2026, out=tmp_path / "cli.xlsx", today=TODAY)
    out = io.BytesIO()

    written = await fund_report_xlsx(session, year=2026, today=TODAY, out=out)

    assert written == FundReportFile(6, 0)
    cli = load_workbook(tmp_path / "cli.xlsx")
    desk: Any = load_workbook(io.BytesIO(out.getvalue()))
    assert desk.sheetnames == cli.sheetnames
    for name in cli.sheetnames:
        assert values(desk[name]) == values(cli[name])
