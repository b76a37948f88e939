"""The fund against the loans: the reconciliation line, the 基金 summary, and the
supervision group's yearly fund report (帮扶基金年度报告) as XLSX.

Every cell is written through `bangfu_bot.xlsx`, so a receipt number or note stays text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot import xlsx
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.money import yuan
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import SOURCE_NAMES, Figures, figures_now
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.loans.service import Position, books_of, loans_outstanding_fen
from bangfu_bot.members.models import people
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.reports")

KIND_NAMES = {
    kind: say(f"kind_{kind}")
    for kind in ("contribution", "relief", "loan_out", "principal_in", "interest_in", "write_off")
}
AGES = (
    (say("age_current"), 0, 0),
    (say("age_1_30"), 1, 30),
    (say("age_31_90"), 31, 90),
    (say("age_over_90"), 91, 10**6),
)


async def reconciliation_fen(conn: AsyncConnection, figures: Figures | None = None) -> int:
    """Principal out according to the fund minus principal owed according to the loans:
    must be exactly zero. `figures`: the fund's figures already summed (a full pass over
    the movements; the 工作台 reads them once for both lines)."""
    if figures is None:
        figures = await figures_now(conn)
    return figures.outstanding_fen - await loans_outstanding_fen(conn)


async def fund_summary(conn: AsyncConnection, *, today: date) -> str:
    """基金: the current figures in one short message."""
    figures = await figures_now(conn)
    gap = await reconciliation_fen(conn, figures)
    lines = [
        say("summary_header", day=chinese_date(today)),
        say("summary_cash", cash=yuan(figures.cash_fen)),
        say("summary_outstanding", outstanding=yuan(figures.outstanding_fen)),
        say(
            "summary_raised",
            raised=yuan(figures.contributions_fen),
            relief=yuan(figures.relief_fen),
        ),
        say(
            "summary_returned",
            principal=yuan(figures.principal_in_fen),
            interest=yuan(figures.interest_in_fen),
            written_off=yuan(figures.written_off_fen),
        ),
        say("summary_balanced") if gap == 0 else say("summary_gap", gap=yuan(abs(gap))),
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class FundReport:
    """What was written."""

    path: Path
    movements: int
    reconciliation_fen: int


def _lines(key: str) -> list[str]:
    """A text of one line per item, e.g. a sheet's column headers in order."""
    return say(key).splitlines()


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class FundReportData:
    """What the yearly fund report shows, read from the store."""

    year: int
    moves: list[Any]
    figures: Figures
    reconciliation_fen: int
    ages: list[tuple[Any, Position]]
    expected: list[Any]


async def export_fund_report(
    engine: AsyncEngine, *, year: int, out: Path, today: date
) -> FundReport:
    """Movements of the year, loans outstanding by age, amount at risk, expected repayments
    by month, and the reconciliation line (must be 0.00)."""
    async with engine.connect() as conn:
        data = await read_fund_report(conn, year=year, today=today)
    await asyncio.to_thread(_write_file, out, data)
    return FundReport(out, len(data.moves), data.reconciliation_fen)


def _write_file(out: Path, data: FundReportData) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as stream:
        write_fund_report(data, stream)


async def read_fund_report(conn: AsyncConnection, *, year: int, today: date) -> FundReportData:
    """The report's figures, in a bounded number of queries (the loans' books in bulk)."""
    moves = (
        await conn.execute(
            select(fund_movements)
            .where(
                fund_movements.c.occurred_on >= date(year, 1, 1),
                fund_movements.c.occurred_on <= date(year, 12, 31),
            )
            .order_by(fund_movements.c.occurred_on, fund_movements.c.id)
        )
    ).all()
    figures = await figures_now(conn, until=min(today, date(year, 12, 31)))
    gap = await reconciliation_fen(conn)
    open_loans = (
        await conn.execute(
            select(loans, people.c.name)
            .select_from(loans.join(people, people.c.id == loans.c.person_id))
            .where(loans.c.status == L.DISBURSED)
            .order_by(loans.c.id)
        )
    ).all()
    books = await books_of(conn, [loan.id for loan in open_loans])
    ages = [(loan, books[loan.id].on(today)) for loan in open_loans]
    expected = (
        await conn.execute(
            select(
                instalments.c.due_on,
                func.sum(instalments.c.principal_fen),
                func.sum(instalments.c.interest_fen),
            )
            .select_from(instalments.join(loans, loans.c.id == instalments.c.loan_id))
            .where(loans.c.status == L.DISBURSED, instalments.c.due_on >= today)
            .group_by(instalments.c.due_on)
        )
    ).all()
    return FundReportData(year, list(moves), figures, gap, ages, list(expected))


def write_fund_report(data: FundReportData, out: BinaryIO) -> None:
    """Write the report's workbook to a binary file object (blocking: call it off the event
    loop). The CLI and the desk's download both write through this one function."""
    year, moves, figures, gap = data.year, data.moves, data.figures, data.reconciliation_fen
    ages, expected = data.ages, data.expected
    book = Workbook()
    summary = book.active
    summary.title = say("report_summary_sheet")
    rows = [
        (say("report_title", year=year), None),
        (say("report_contributions"), figures.contributions_fen),
        (say("report_relief"), figures.relief_fen),
        (say("report_loans_out"), figures.loans_out_fen),
        (say("report_principal_in"), figures.principal_in_fen),
        (say("report_interest_in"), figures.interest_in_fen),
        (say("report_written_off"), figures.written_off_fen),
        (say("report_cash"), figures.cash_fen),
        (say("report_outstanding"), figures.outstanding_fen),
        (say("report_reconciliation"), gap),
    ]
    for label, fen in rows:
        xlsx.append(summary, [label, None if fen is None else _yuan(fen)])
    summary["A1"].font = Font(bold=True, size=14)
    movement_sheet = book.create_sheet(say("report_movements_sheet"))
    xlsx.append(movement_sheet, _lines("report_movements_headers"))
    for move in moves:
        xlsx.append(
            movement_sheet,
            [
                move.occurred_on.isoformat(),
                KIND_NAMES.get(move.kind, move.kind),
                SOURCE_NAMES.get(move.source or "", ""),
                _yuan(move.amount_fen),
                move.document,
                move.loan_id,
                move.note or "",
            ],
        )
    age_sheet = book.create_sheet(say("report_loans_sheet"))
    xlsx.append(age_sheet, _lines("report_loans_headers"))
    at_risk = 0
    for loan, owed in ages:
        label = next(name for name, low, high in AGES if low <= owed.days_overdue <= high)
        if owed.days_overdue > 90:
            at_risk += owed.principal_outstanding_fen
        xlsx.append(
            age_sheet,
            [
                loan.id,
                loan.name,
                loan.project,
                _yuan(owed.principal_outstanding_fen),
                _yuan(owed.overdue_fen),
                owed.days_overdue,
                label,
            ],
        )
    xlsx.append(age_sheet, [])
    xlsx.append(age_sheet, [say("report_at_risk"), None, None, _yuan(at_risk)])
    month_sheet = book.create_sheet(say("report_expected_sheet"))
    xlsx.append(month_sheet, _lines("report_expected_headers"))
    by_month: dict[str, list[int]] = {}
    for due_on, principal, interest in expected:
        bucket = by_month.setdefault(due_on.strftime("%Y-%m"), [0, 0])
        bucket[0] += int(principal)
        bucket[1] += int(interest)
    for month in sorted(by_month):
        xlsx.append(month_sheet, [month, _yuan(by_month[month][0]), _yuan(by_month[month][1])])
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "0.00"
        sheet.column_dimensions["A"].width = 24
    book.save(out)
