"""The annual report's figures (年度报告), read from the rows they sum, years side by side.

Each figure is one SQL aggregate over its own table: the ledger, the household outcomes,
the fund's movements, the visits, the training notices and their sign-ups, the loans and
their follow-ups. Nothing is estimated; a year without a plan has no targets to show.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.broadcasts.models import broadcasts, signups
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import figures_now
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.models import loans
from bangfu_bot.outcomes.models import household_outcomes, loan_outcomes, training_attendance
from bangfu_bot.outcomes.service import Plan, plan_for
from bangfu_bot.visits.models import visit_campaigns, visits

YEARS_SHOWN = 3  # the report's year and the two before it


@dataclass
class YearFigures:
    """Everything the report says of one year."""

    year: int
    plan: Plan | None
    households: Counter[str] = field(default_factory=Counter)  # by category
    new: int = 0
    exited: int = 0
    reviewed: int = 0
    income_before_fen: int = 0  # summed over reviewed households
    income_after_fen: int = 0
    persons: int = 0  # household members of the reviewed households
    income_fell: int = 0  # households whose income fell
    out_of_hardship: Counter[str] = field(default_factory=Counter)  # by reason
    raised_fen: Counter[str] = field(default_factory=Counter)  # by source
    movements_fen: Counter[str] = field(default_factory=Counter)  # by kind, in the year
    outstanding_fen: int = 0  # principal lent out at the year's end
    cash_fen: int = 0  # cash on hand at the year's end
    visits: Counter[str] = field(default_factory=Counter)  # households visited by occasion
    visit_cash_fen: Counter[str] = field(default_factory=Counter)
    trainings: int = 0
    signed_up: int = 0
    attended: int = 0
    loans_by_project: dict[str, list[int]] = field(default_factory=dict)
    # project → [loans, fen lent, followed up, expected fen, earned fen]

    @property
    def income_per_person_before_fen(self) -> int:
        """Average income per person of the reviewed households, before the year."""
        return self.income_before_fen // self.persons if self.persons else 0

    @property
    def income_per_person_after_fen(self) -> int:
        """Average income per person of the reviewed households, after the year."""
        return self.income_after_fen // self.persons if self.persons else 0


async def year_figures(conn: AsyncConnection, year: int) -> YearFigures:
    """One year's figures."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    figures = YearFigures(year=year, plan=await plan_for(conn, year))
    for category, count in await conn.execute(
        select(ledger_entries.c.category, func.count())
        .where(ledger_entries.c.year == year)
        .group_by(ledger_entries.c.category)
    ):
        figures.households[str(category)] = int(count)
    previous = select(ledger_entries.c.person_id).where(ledger_entries.c.year == year - 1)
    figures.new = int(
        (
            await conn.execute(
                select(func.count())
                .select_from(ledger_entries)
                .where(ledger_entries.c.year == year, ledger_entries.c.person_id.not_in(previous))
            )
        ).scalar_one()
    )
    figures.exited = int(
        (
            await conn.execute(
                select(func.count())
                .select_from(ledger_entries)
                .where(ledger_entries.c.year == year, ledger_entries.c.status == "exited")
            )
        ).scalar_one()
    )
    for row in await conn.execute(
        select(household_outcomes).where(household_outcomes.c.year == year)
    ):
        if row.reason == "passed_away":
            continue  # a household whose member passed away has no income after
        figures.reviewed += 1
        figures.income_before_fen += int(row.income_before_fen)
        figures.income_after_fen += int(row.income_after_fen)
        figures.persons += int(row.household_size)
        figures.income_fell += int(row.income_after_fen < row.income_before_fen)
    for reason, count in await conn.execute(
        select(household_outcomes.c.reason, func.count())
        .where(household_outcomes.c.year == year, household_outcomes.c.reason.is_not(None))
        .group_by(household_outcomes.c.reason)
    ):
        figures.out_of_hardship[str(reason)] = int(count)
    in_year = (fund_movements.c.occurred_on >= start, fund_movements.c.occurred_on <= end)
    for kind, source, total in await conn.execute(
        select(
            fund_movements.c.kind, fund_movements.c.source, func.sum(fund_movements.c.amount_fen)
        )
        .where(*in_year)
        .group_by(fund_movements.c.kind, fund_movements.c.source)
    ):
        figures.movements_fen[str(kind)] += int(total or 0)
        if kind == "contribution":
            figures.raised_fen[str(source)] += int(total or 0)
    at_end = await figures_now(conn, until=end)
    figures.outstanding_fen = at_end.outstanding_fen
    figures.cash_fen = at_end.cash_fen
    for occasion, count, cash in await conn.execute(
        select(visit_campaigns.c.occasion, func.count(), func.sum(visits.c.cash_fen))
        .select_from(visits.join(visit_campaigns, visit_campaigns.c.id == visits.c.campaign_id))
        .where(visits.c.visited_on >= start, visits.c.visited_on <= end)
        .group_by(visit_campaigns.c.occasion)
    ):
        figures.visits[str(occasion)] = int(count)
        figures.visit_cash_fen[str(occasion)] = int(cash or 0)
    trainings = select(broadcasts.c.id).where(
        broadcasts.c.training.is_(True),
        func.extract("year", broadcasts.c.created_at) == year,
    )
    training_ids = [int(i) for i in (await conn.execute(trainings)).scalars()]
    figures.trainings = len(training_ids)
    if training_ids:
        figures.signed_up = await _count(conn, signups, signups.c.broadcast_id, training_ids)
        figures.attended = await _count(
            conn, training_attendance, training_attendance.c.broadcast_id, training_ids
        )
    outcome = (
        select(
            loan_outcomes.c.loan_id,
            func.max(loan_outcomes.c.expected_fen).label("expected"),
            func.max(loan_outcomes.c.earned_fen).label("earned"),
        )
        .group_by(loan_outcomes.c.loan_id)
        .subquery()
    )
    for row in await conn.execute(
        select(loans.c.project, loans.c.amount_fen, outcome.c.expected, outcome.c.earned)
        .select_from(loans.outerjoin(outcome, outcome.c.loan_id == loans.c.id))
        .where(loans.c.disbursed_on >= start, loans.c.disbursed_on <= end)
    ):
        item = figures.loans_by_project.setdefault(str(row.project), [0, 0, 0, 0, 0])
        item[0] += 1
        item[1] += int(row.amount_fen)
        if row.earned is not None:
            item[2] += 1
            item[3] += int(row.expected)
            item[4] += int(row.earned)
    return figures


async def _count(conn: AsyncConnection, table: Any, column: Any, ids: list[int]) -> int:
    return int(
        (
            await conn.execute(select(func.count()).select_from(table).where(column.in_(ids)))
        ).scalar_one()
    )


async def report_figures(conn: AsyncConnection, year: int) -> list[YearFigures]:
    """The report's year and the years before it, oldest first."""
    return [await year_figures(conn, y) for y in range(year - YEARS_SHOWN + 1, year + 1)]
