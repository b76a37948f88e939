"""Repayment schedules in integer fen.

Rules (stated, so a county treasurer can check them by hand):
- principal is split into equal whole-fen parts; the remainder goes on the last instalment;
- interest accrues by the day on the principal outstanding that day, at the annual rate,
  actual/365 (the bank's simple interest, 年终带本付息). It is counted exactly, as fen-days
  (principal × days), from disbursement to a date, and rounded half up to the fen once, on
  the total: interest to a date = round(fen-days × rate_bp / 3,650,000). An instalment's
  interest is the interest to its due date less the interest to the one before, on the
  schedule's own path, so paying each instalment on its day settles exactly what accrued;
- kinds: `bullet` — everything at the end of the term; `yearly` — one instalment on
  31 December of each year of the term, the first at the first year-end at least 180 days
  after disbursement, the principal in equal parts; `equal_principal` — one instalment on
  each anniversary of disbursement, equal principal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

KINDS = ("bullet", "yearly", "equal_principal")
MIN_FIRST_PERIOD = timedelta(days=180)


@dataclass(frozen=True)
class Instalment:
    """One due payment."""

    number: int
    due_on: date
    principal_fen: int
    interest_fen: int

    @property
    def total_fen(self) -> int:
        """Principal plus interest."""
        return self.principal_fen + self.interest_fen


DENOMINATOR = 10_000 * 365  # basis points × days in the year


def interest(principal_fen: int, rate_bp: int, days: int) -> int:
    """Simple interest in fen, rounded half up: P × rate × days / 365."""
    return interest_on(principal_fen * days, rate_bp)


def interest_on(fen_days: int, rate_bp: int) -> int:
    """The interest on `fen_days` (principal × days outstanding), rounded half up once."""
    whole, rest = divmod(fen_days * rate_bp, DENOMINATOR)
    return whole + (1 if rest * 2 >= DENOMINATOR else 0)


def fen_days(
    amount_fen: int, start: date, principal_paid: Sequence[tuple[date, int]], until: date
) -> int:
    """Principal × days outstanding from `start` to `until`, the principal falling by each
    (day, fen) paid (in date order) from that day on."""
    total, outstanding, since = 0, amount_fen, start
    for paid_on, fen in principal_paid:
        if paid_on >= until:
            break
        if paid_on > since:
            total += outstanding * (paid_on - since).days
            since = paid_on
        outstanding -= fen
    if until > since:
        total += outstanding * (until - since).days
    return total


def anniversary(start: date, years: int) -> date:
    """The same day `years` later (28 Feb for a 29 Feb start in a common year)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def due_dates(kind: str, start: date, term_years: int) -> list[date]:
    """When the instalments fall due."""
    if kind == "bullet":
        return [anniversary(start, term_years)]
    if kind == "equal_principal":
        return [anniversary(start, n) for n in range(1, term_years + 1)]
    if kind == "yearly":
        first = date(start.year, 12, 31)
        if first - start < MIN_FIRST_PERIOD:
            first = date(start.year + 1, 12, 31)
        return [date(first.year + n, 12, 31) for n in range(term_years)]
    raise ValueError(f"unknown schedule kind {kind!r}")


def build(
    *,
    kind: str,
    principal_fen: int,
    start: date,
    term_years: int,
    rate_bp: int,
    first_number: int = 1,
) -> list[Instalment]:
    """The schedule from `start` for `principal_fen` outstanding."""
    if principal_fen <= 0 or term_years <= 0:
        return []
    dates = due_dates(kind, start, term_years)
    return split(principal_fen, start, dates, rate_bp, first_number)


def split(
    principal_fen: int, start: date, dates: list[date], rate_bp: int, first_number: int = 1
) -> list[Instalment]:
    """Equal principal over `dates` (remainder last) with interest on what is outstanding,
    each instalment's interest the difference of the rounded totals (see the rules above)."""
    count = len(dates)
    part, remainder = divmod(principal_fen, count)
    outstanding, previous, accrued, charged = principal_fen, start, 0, 0
    schedule = []
    for index, due in enumerate(dates):
        principal = part + (remainder if index == count - 1 else 0)
        accrued += outstanding * max((due - previous).days, 0)
        to_date = interest_on(accrued, rate_bp)
        schedule.append(Instalment(first_number + index, due, principal, to_date - charged))
        charged = to_date
        outstanding -= principal
        previous = max(due, previous)
    return schedule
