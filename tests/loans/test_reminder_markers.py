"""What the reminder scan keeps per loan: the marker of the first instalment not covered,
worked out in SQL, must be `Ledger`'s; the triggers must make the scan look again after any
change a reminder depends on; a re-run the same day with nothing changed looks at nothing,
yet counts what the first run counted."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from bangfu_bot.loans import jobs
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.loans.service import DUE_ON, PLAN_COLUMNS, Ledger
from bangfu_bot.members.models import bindings, people, person_roles
from tests.factories import make_person
from tests.loans.test_reminders import (  # noqa: F401 - the county fixture
    CALL_DAYS,
    NOW,
    TODAY,
    Lender,
    at,
    bind,
    county,
    repay,
)

RECEIPTS = itertools.count()


async def marker(engine: Any, loan_id: int) -> date | None:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(loans.c.covered_through).where(loans.c.id == loan_id))
        ).scalar()


async def work_out(engine: Any) -> None:
    async with engine.begin() as conn:
        await jobs._work_out_coverage(conn)


async def ledgers_marker(engine: Any, loan_id: int) -> date:
    """The first instalment not covered, as `Ledger` (the single-loan arithmetic) has it."""
    async with engine.connect() as conn:
        loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
        plan = (
            await conn.execute(
                select(*PLAN_COLUMNS)
                .where(instalments.c.loan_id == loan_id)
                .order_by(instalments.c.number)
            )
        ).all()
        paid = (
            await conn.execute(
                select(repayments.c.interest_fen, repayments.c.principal_fen).where(
                    repayments.c.loan_id == loan_id
                )
            )
        ).all()
    book = Ledger(
        loan.amount_fen, L.DISBURSED, plan, sum(p[0] for p in paid), sum(p[1] for p in paid)
    )
    first = book.on(jobs.ALL_COVERED).oldest_unpaid
    return first[DUE_ON] if first is not None else jobs.ALL_COVERED


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["bullet", "yearly", "equal_principal"]),
    years=st.integers(min_value=1, max_value=5),
    payments=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40_000), st.integers(min_value=0, max_value=250_000)
        ),
        max_size=5,
    ),
    exactly=st.integers(min_value=0, max_value=6),
)
async def test_the_marker_is_ledgers_oldest_unpaid(
    county: Any, kind: str, years: int, payments: list[tuple[int, int]], exactly: int
) -> None:
    engine, tree, _ = county
    lender = Lender(engine, tree.branch)
    lender.serial = 100 + next(RECEIPTS) % 800
    loan_id = await lender.loan("借款人", TODAY, kind=kind, years=years, openids=0)
    async with engine.begin() as conn:
        if exactly:  # paid to the fen what the first instalments come to: the boundary
            plan = (
                await conn.execute(
                    select(instalments.c.principal_fen, instalments.c.interest_fen)
                    .where(instalments.c.loan_id == loan_id)
                    .order_by(instalments.c.number)
                )
            ).all()
            owed = [sum(row) for row in plan[:exactly]]
            payments = [*payments, (0, sum(owed))]
        for interest, principal in payments:
            await conn.execute(
                insert(repayments).values(
                    loan_id=loan_id,
                    amount_fen=interest + principal,
                    interest_fen=interest,
                    principal_fen=principal,
                    paid_on=TODAY,
                    receipt=f"R{next(RECEIPTS)}",
                    recorded_at=NOW,
                )
            )
    await work_out(engine)
    assert await marker(engine, loan_id) == await ledgers_marker(engine, loan_id)


async def test_any_change_to_the_plan_or_repayments_clears_the_marker(county: Any) -> None:
    engine, tree, _ = county
    loan_id = await Lender(engine, tree.branch).loan("甲", TODAY + timedelta(40))
    await work_out(engine)
    assert await marker(engine, loan_id) == TODAY + timedelta(40)
    await repay(engine, loan_id, 100, 100, TODAY)  # as the service writes it
    assert await marker(engine, loan_id) is None
    await work_out(engine)
    async with engine.begin() as conn:  # by hand, as a script or psql would
        await conn.execute(
            update(repayments).where(repayments.c.loan_id == loan_id).values(principal_fen=10**9)
        )
    assert await marker(engine, loan_id) is None
    await work_out(engine)
    assert await marker(engine, loan_id) == jobs.ALL_COVERED
    async with engine.begin() as conn:
        await conn.execute(
            update(instalments)
            .where(instalments.c.loan_id == loan_id, instalments.c.number == 1)
            .values(principal_fen=10**10)
        )
    await work_out(engine)
    assert await marker(engine, loan_id) == TODAY + timedelta(40)


async def test_a_loan_repaid_ahead_is_not_read_until_it_comes_near(county: Any) -> None:
    engine, tree, _ = county
    lender = Lender(engine, tree.branch)
    near = await lender.loan("近", TODAY + timedelta(7))
    far = await lender.loan("远", TODAY + timedelta(45))
    async with engine.connect() as conn:
        await jobs._work_out_coverage(conn)
        found = [
            row[0] for row in await conn.execute(jobs._candidates(TODAY + timedelta(30), None))
        ]
        await conn.rollback()
    assert near in found and far not in found


async def rerun(engine: Any, day: date = TODAY) -> tuple[int, int]:
    """Run the scan; (its count, how many loans it looked at)."""
    looked: list[int] = []
    real = jobs._plans

    async def counting(conn: Any, loan_ids: Any, horizon: Any) -> Any:
        looked.extend(loan_ids)
        return await real(conn, loan_ids, horizon)

    jobs._plans = counting  # type: ignore[assignment]
    try:
        async with engine.begin() as conn:
            count = await jobs.remind(conn, now=at(day), today=day, call_days=CALL_DAYS)
    finally:
        jobs._plans = real  # type: ignore[assignment]
    return count, len(looked)


async def test_a_same_day_rerun_looks_at_nothing_and_counts_the_same(county: Any) -> None:
    engine, tree, _ = county
    lender = Lender(engine, tree.branch)
    due = [
        await lender.loan(f"借{n}", TODAY + timedelta(days))
        for n, days in enumerate((7, 1, 0, -1, -8, -31))
    ]
    first, looked = await rerun(engine)
    assert looked == len(due) and first > len(due)
    again, looked = await rerun(engine)
    calls = 1  # the guarantor call of the loan 31 days behind is made once
    assert (again, looked) == (first - calls, 0)
    assert await rerun(engine, TODAY + timedelta(1)) != (0, 0)  # a new day: all again


async def test_what_a_reminder_depends_on_makes_the_rerun_look_again(county: Any) -> None:
    engine, tree, _ = county
    lender = Lender(engine, tree.branch)
    loan_id = await lender.loan("甲", TODAY - timedelta(8))
    other = await lender.loan("乙", TODAY + timedelta(7))
    await rerun(engine)
    async with engine.connect() as conn:
        member = (
            await conn.execute(select(loans.c.person_id).where(loans.c.id == loan_id))
        ).scalar_one()
    # The member binds another WeChat: only that loan is looked at again.
    await bind(engine, member, "o-new-phone")
    assert (await rerun(engine))[1] == 1
    # A new secretary for the branch (a role): every loan is looked at again.
    secretary, _ = await make_person(
        engine, NOW, name="新书记", branch=tree.branch, roles=("member", "secretary"), serial=950
    )
    assert (await rerun(engine))[1] == 2
    assert (await rerun(engine))[1] == 0
    # An official binds their WeChat: their to-do pushes go to it, so all again.
    await bind(engine, secretary, "o-new-secretary")
    assert (await rerun(engine))[1] == 2
    # Someone moves branch or leaves the roster: all again.
    async with engine.begin() as conn:
        await conn.execute(update(people).where(people.c.id == secretary).values(active=False))
    assert (await rerun(engine))[1] == 2
    # A member's repayment: that loan only.
    await repay(engine, other, 100, 100, TODAY)
    assert (await rerun(engine))[1] == 1
    # Untouched by the triggers: a member's own binding rows do not bump every loan.
    async with engine.begin() as conn:
        holds = (
            (
                await conn.execute(
                    select(person_roles.c.role).where(person_roles.c.person_id == member)
                )
            )
            .scalars()
            .all()
        )
        assert set(holds) == {"member"}
        await conn.execute(
            update(bindings).where(bindings.c.openid == "o-new-phone").values(unbound_at=NOW)
        )
    assert (await rerun(engine))[1] == 1
