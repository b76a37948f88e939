"""Repayment schedules in integer fen.

Rules (stated, so a county treasurer can check them by hand):
- principal is split into equal whole-fen parts; the remainder goes on the last instalment;
- interest for a period = outstanding principal × annual rate × days in the period / 365,
  rounded half up to the fen, per period (the bank's simple interest, 年终带本付息);
- kinds: `bullet` — everything at the end of the term; `yearly` — one instalment on
  31 December of each year of the term, the first at the first year-end at least 180 days
  after disbursement, the principal in equal parts; `equal_principal` — one instalment on
  each anniversary of disbursement, equal principal.
"""

from __future__ import annotations

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


def interest(principal_fen: int, rate_bp: int, days: int) -> int:
    """Simple interest in fen, rounded half up: P × rate × days / 365."""
    numerator = principal_fen * rate_bp * days
    whole, rest = divmod(numerator, 10_000 * 365)
    return whole + (1 if rest * 2 >= 10_000 * 365 else 0)


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


def build(*, kind: str, principal_fen: int, start: date, term_years: int, rate_bp: int,
          first_number: int = 1) -> list[Instalment]:
    """The schedule from `start` for `principal_fen` outstanding."""
    if principal_fen <= 0 or term_years <= 0:
        return []
    dates = due_dates(kind, start, term_years)
    return split(principal_fen, start, dates, rate_bp, first_number)


def split(principal_fen: int, start: date, dates: list[date], rate_bp: int,
          first_number: int = 1) -> list[Instalment]:
    """Equal principal over `dates` (remainder last) with interest on what is outstanding."""
    count = len(dates)
    part, remainder = divmod(principal_fen, count)
    outstanding = principal_fen
    previous = start
    schedule = []
    for index, due in enumerate(dates):
        principal = part + (remainder if index == count - 1 else 0)
        days = max((due - previous).days, 0)
        schedule.append(Instalment(first_number + index, due, principal,
                                   interest(outstanding, rate_bp, days)))
        outstanding -= principal
        previous = due
    return schedule
