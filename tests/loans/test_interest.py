"""Interest by the day (actual/365, rounded half up once on the total): schedules, the
reminders' figures, what a repayment settles and the member's statement agree to the fen,
whenever the member pays."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from bangfu_bot.loans.schedule import build, fen_days, interest_on
from bangfu_bot.loans.service import Ledger


def book(
    amount: int, start: date, kind: str, years: int, rate: int, paid: list[tuple[date, int, int]]
) -> Ledger:
    """A loan's book with these (day, interest, principal) payments."""
    plan = [
        (1, item.number, item.due_on, item.principal_fen, item.interest_fen)
        for item in build(
            kind=kind, principal_fen=amount, start=start, term_years=years, rate_bp=rate
        )
    ]
    return Ledger(
        amount,
        "disbursed",
        plan,
        sum(p[1] for p in paid),
        sum(p[2] for p in paid),
        None,
        start,
        rate,
        [(day, principal) for day, _, principal in paid],
    )


def pay(
    ledger_paid: list[tuple[date, int, int]], current: Ledger, day: date, amount: int
) -> tuple[int, int]:
    """What `loans.service.repay` books: the interest accrued to the day first."""
    to_interest = min(amount, current.on(day).interest_due_fen)
    ledger_paid.append((day, to_interest, amount - to_interest))
    return to_interest, amount - to_interest


def by_the_day(
    amount: int, start: date, until: date, rate: int, paid: list[tuple[date, int, int]]
) -> int:
    """Interest to `until`, counted one day at a time with exact fractions."""
    total, day = Fraction(0), start
    while day < until:
        left = amount - sum(principal for paid_on, _, principal in paid if paid_on <= day)
        total += Fraction(left * rate, 10_000 * 365)
        day += timedelta(days=1)
    return int(total + Fraction(1, 2))


def test_the_worked_example_of_the_readme() -> None:
    # 3,000 yuan on 1 January 2026 at 4.35 %, due in one sum a year later.
    start, paid = date(2026, 1, 1), []
    ledger = book(300_000, start, "bullet", 1, 435, paid)
    assert ledger.plan[0][4] == 13_050  # 300000 × 365 × 4.35 % / 365 = 130.50 yuan
    # 1,000 yuan paid on 1 July (181 days): interest to that day first, then principal.
    assert pay(paid, ledger, date(2026, 7, 1), 100_000) == (6_471, 93_529)
    ledger = book(300_000, start, "bullet", 1, 435, paid)
    # On the due date: the 2,064.71 yuan left and its 184 days' interest.
    due = ledger.on(date(2027, 1, 1))
    assert (due.principal_outstanding_fen, due.interest_due_fen) == (206_471, 4_528)
    assert due.overdue_fen == 206_471 + 4_528
    assert 6_471 + 4_528 == 10_999 < 13_050  # paying early saved 20.51 yuan, not all of it


@settings(max_examples=150, deadline=None)
@given(
    amount=st.integers(min_value=300_000, max_value=500_000),
    kind=st.sampled_from(["bullet", "yearly", "equal_principal"]),
    years=st.integers(min_value=1, max_value=3),
    rate=st.integers(min_value=0, max_value=1_500),
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
)
def test_paying_every_instalment_on_its_day_settles_exactly_the_schedule(
    amount: int, kind: str, years: int, rate: int, start: date
) -> None:
    paid: list[tuple[date, int, int]] = []
    for item in build(kind=kind, principal_fen=amount, start=start, term_years=years, rate_bp=rate):
        ledger = book(amount, start, kind, years, rate, paid)
        position = ledger.on(item.due_on)
        # The reminder's figure is exactly the instalment, and paying it settles it.
        assert position.overdue_fen == item.total_fen
        assert position.interest_due_fen == item.interest_fen
        assert pay(paid, ledger, item.due_on, item.total_fen) == (
            item.interest_fen,
            item.principal_fen,
        )
        assert book(amount, start, kind, years, rate, paid).on(item.due_on).overdue_fen == 0
    last = book(amount, start, kind, years, rate, paid)
    assert last.principal_paid_fen == amount
    assert last.interest_paid_fen == interest_on(
        fen_days(amount, start, last.principal_paid, last.plan[-1][2]), rate
    )


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["bullet", "yearly", "equal_principal"]),
    rate=st.integers(min_value=1, max_value=1_500),
    payments=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500), st.integers(min_value=1, max_value=400_000)
        ),
        max_size=6,
    ),
)
def test_any_payments_accrue_by_the_day_and_never_lose_a_fen(
    kind: str, rate: int, payments: list[tuple[int, int]]
) -> None:
    amount, start, years = 400_000, date(2026, 3, 10), 2
    paid: list[tuple[date, int, int]] = []
    amounts: list[int] = []
    day = start
    for gap, wanted in payments:
        day += timedelta(days=gap)
        ledger = book(amount, start, kind, years, rate, paid)
        owed = ledger.on(day)
        if owed.owed_now_fen == 0:
            break
        amount_paid = min(wanted, owed.owed_now_fen)
        amounts.append(amount_paid)
        to_interest, to_principal = pay(paid, ledger, day, amount_paid)
        # Interest is what accrued to the day, counted a day at a time, less what was paid.
        assert owed.interest_due_fen == (
            by_the_day(amount, start, day, rate, paid[:-1]) - sum(p[1] for p in paid[:-1])
        )
        assert to_interest == min(amount_paid, owed.interest_due_fen)
        after = book(amount, start, kind, years, rate, paid).on(day)
        assert after.principal_outstanding_fen == owed.principal_outstanding_fen - to_principal
        assert after.principal_outstanding_fen >= 0
        if to_principal:
            assert after.interest_due_fen == 0  # settled to the day before principal
    # The member's statement: every payment is its interest plus its principal, to the fen,
    # and the principal never passes the loan.
    assert [p[1] + p[2] for p in paid] == amounts
    assert sum(p[2] for p in paid) <= amount


def test_a_year_late_owes_the_year_s_interest_and_the_reminder_says_it() -> None:
    start, paid = date(2026, 1, 1), []
    ledger = book(300_000, start, "bullet", 1, 435, paid)
    late = ledger.on(date(2028, 1, 1))
    assert late.days_overdue == 365
    assert late.overdue_fen == 300_000 + 13_050  # what fell due on the due date
    assert late.owed_now_fen == 300_000 + 26_100  # paying today: two years' interest
