"""Schedules never lose or gain a fen, and follow the stated rules."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from bangfu_bot.loans.schedule import build, due_dates, interest


def test_bullet_two_years_at_the_bank_rate() -> None:
    (only,) = build(
        kind="bullet", principal_fen=500_000, start=date(2026, 3, 15), term_years=2, rate_bp=435
    )
    assert only.due_on == date(2028, 3, 15) and only.principal_fen == 500_000
    assert (
        only.interest_fen == interest(500_000, 435, 731) == 43_560
    )  # 158,992,500,000 / 3,650,000 = 43,559.59…


def test_yearly_falls_on_year_ends_and_puts_the_remainder_last() -> None:
    schedule = build(
        kind="yearly", principal_fen=350_001, start=date(2026, 3, 1), term_years=2, rate_bp=0
    )
    assert [(i.due_on, i.principal_fen) for i in schedule] == [
        (date(2026, 12, 31), 175_000),
        (date(2027, 12, 31), 175_001),
    ]


def test_yearly_skips_a_year_end_too_close_to_disbursement() -> None:
    assert due_dates("yearly", date(2026, 11, 20), 2) == [date(2027, 12, 31), date(2028, 12, 31)]


def test_equal_principal_interest_shrinks_with_the_principal() -> None:
    first, second = build(
        kind="equal_principal",
        principal_fen=400_000,
        start=date(2026, 1, 10),
        term_years=2,
        rate_bp=500,
    )
    assert first.principal_fen == second.principal_fen == 200_000
    assert first.interest_fen == 20_000 and second.interest_fen == 10_000


def test_interest_rounds_half_up() -> None:
    assert interest(1, 10_000 * 365 // 2, 1) == 1  # exactly half a fen rounds up
    assert interest(1, 1, 1) == 0


@given(
    principal=st.integers(min_value=1, max_value=10_000_000_00),
    term=st.integers(min_value=1, max_value=10),
    rate=st.integers(min_value=0, max_value=2_000),
    kind=st.sampled_from(["bullet", "yearly", "equal_principal"]),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
)
def test_no_schedule_loses_or_gains_a_fen(
    principal: int, term: int, rate: int, kind: str, start: date
) -> None:
    schedule = build(kind=kind, principal_fen=principal, start=start, term_years=term, rate_bp=rate)
    assert sum(i.principal_fen for i in schedule) == principal
    assert all(i.principal_fen >= 0 and i.interest_fen >= 0 for i in schedule)
    assert [i.due_on for i in schedule] == sorted(i.due_on for i in schedule)
    assert all(i.due_on > start for i in schedule)
