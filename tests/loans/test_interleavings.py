"""Random interleavings of the loan chain by random actors, entitled or not, each step run as
a front end runs it (in a savepoint, rolled back on refusal): after every step the fund
reconciles to 0 fen and every movement has the accepted act it pays for."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bangfu_bot import db
from bangfu_bot.authority import Refused
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import contribute
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import loan_events, repayments
from bangfu_bot.members.service import person_by_id
from bangfu_bot.reports.fund import reconciliation_fen
from tests.factories import _org, make_person, make_tree

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SERIALS = itertools.count(500)
ACTORS = ("officer", "officer_other", "staff", "staff_2", "borrower", "secretary", "supervisor")
STEPS = ("decide", "inspect", "guarantee", "record", "confirm", "repay", "write_off")


@pytest.fixture
async def county(database_url: str) -> Any:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    tree = await make_tree(engine, NOW)
    async with engine.begin() as conn:
        township_2 = await _org(conn, "committee", "绿水镇党委", tree.county)
        branch_c = await _org(conn, "branch", "河口村党支部", township_2)
    ids = {
        "officer": (tree.other_branch, ("member", "committee")),
        "officer_other": (branch_c, ("member", "committee")),
        "staff": (None, ("department",)),
        "staff_2": (None, ("department",)),
        "secretary": (tree.branch, ("member", "secretary")),
        "supervisor": (None, ("supervisor",)),
    }
    people: dict[str, Any] = {}
    for key, (branch, roles) in ids.items():
        serial = next(SERIALS)
        person_id, _ = await make_person(
            engine, NOW, name=key, branch=branch, roles=roles, serial=serial
        )
        async with engine.connect() as conn:
            people[key] = await person_by_id(conn, person_id)
    async with engine.begin() as conn:
        await contribute(
            conn,
            actor=None,
            amount_fen=2_000_000,
            source="county_finance",
            document="县财政〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=NOW,
        )
    yield engine, tree, people
    await engine.dispose()


async def act(
    engine: Any, step: str, actor: Any, loan_id: int, day: date, amount: int, receipt: str
) -> bool:
    """One step as chat runs it: in a savepoint, rolled back whole on a refusal."""
    async with engine.begin() as conn:
        savepoint = await db.savepoint(conn)
        try:
            await _step(conn, step, actor, loan_id, day, amount, receipt)
        except Refused:
            await savepoint.rollback()
            return False
        await savepoint.commit()
        return True


async def _step(
    conn: Any, step: str, actor: Any, loan_id: int, day: date, amount: int, receipt: str
) -> None:
    now = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
    if step == "decide":
        await loans.decide(conn, loan_id=loan_id, officer=actor, approve=True, reason=None, now=now)
    elif step == "inspect":
        await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=actor,
            on=day,
            inspector="孙丽",
            finding="属实",
            passed=True,
            now=now,
        )
    elif step == "guarantee":
        await loans.guarantee(
            conn,
            loan_id=loan_id,
            staff=actor,
            guarantor="青山镇财政所",
            document="青财担7号",
            now=now,
        )
    elif step == "record":
        await loans.record_disbursement(
            conn, loan_id=loan_id, staff=actor, on=day, document="放款单1", now=now
        )
    elif step == "confirm":
        await loans.confirm_disbursement(conn, loan_id=loan_id, staff=actor, now=now)
    elif step == "repay":
        await loans.repay(
            conn,
            loan_id=loan_id,
            staff=actor,
            amount_fen=amount,
            paid_on=day,
            receipt=receipt,
            now=now,
        )
    else:
        await loans.write_off(
            conn, loan_id=loan_id, officer=actor, reason="无力偿还", on=day, now=now
        )


async def every_movement_has_its_act(engine: Any, loan_id: int) -> None:
    async with engine.connect() as conn:
        assert await reconciliation_fen(conn) == 0

        async def moved(kind: str) -> tuple[int, int]:
            row = (
                await conn.execute(
                    select(
                        func.count(), func.coalesce(func.sum(fund_movements.c.amount_fen), 0)
                    ).where(fund_movements.c.loan_id == loan_id, fund_movements.c.kind == kind)
                )
            ).one()
            return int(row[0]), int(row[1])

        async def events_to(status: str) -> int:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(loan_events)
                        .where(loan_events.c.loan_id == loan_id, loan_events.c.to_status == status)
                    )
                ).scalar_one()
            )

        paid = (
            await conn.execute(
                select(
                    func.coalesce(func.sum(repayments.c.interest_fen), 0),
                    func.coalesce(func.sum(repayments.c.principal_fen), 0),
                ).where(repayments.c.loan_id == loan_id)
            )
        ).one()
        loan_out = await moved("loan_out")
        assert loan_out[0] == await events_to("disbursed") <= 1
        assert (await moved("interest_in"))[1] == int(paid[0])
        assert (await moved("principal_in"))[1] == int(paid[1])
        assert (await moved("write_off"))[0] <= await events_to("written_off") <= 1
        loan = (await conn.execute(select(loans.loans).where(loans.loans.c.id == loan_id))).one()
        if loan.confirmed_by is not None:
            assert loan.confirmed_by != loan.recorded_by  # the maker never checked it


NEXT = {
    "applied": "decide",
    "approved": "inspect",
    "inspected": "guarantee",
    "guaranteed": "record",
    "recorded": "confirm",
    "disbursed": "repay",
}


async def _resolve(engine: Any, loan_id: int, step: str, who: str) -> tuple[str, str]:
    """'next': the step the loan's status calls for; 'entitled': someone the table lets
    make it (for a confirmation, the staff member who did not record it), so that the
    random walks reach disbursement, repayments and write-off often."""
    async with engine.connect() as conn:
        loan = (await conn.execute(select(loans.loans).where(loans.loans.c.id == loan_id))).one()
    if step == "next":
        step = NEXT.get(loan.status, "repay")
    if who == "entitled":
        if step in {"decide", "write_off"}:
            who = "officer"
        elif step == "confirm":
            who = "staff" if loan.recorded_by != (await _id_of(engine, "staff")) else "staff_2"
        else:
            who = "staff"
    return step, who


async def _id_of(engine: Any, name: str) -> int:
    from bangfu_bot.members.models import people

    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(people.c.id).where(people.c.name == name))).scalar_one()
        )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(("next",) * 7 + STEPS),
            st.sampled_from(("entitled",) * 5 + ACTORS),
            st.integers(min_value=0, max_value=200),
            st.integers(min_value=-100, max_value=400_000),
        ),
        min_size=1,
        max_size=24,
    )
)
async def test_any_interleaving_keeps_the_fund_whole(
    county: Any, steps: list[tuple[str, str, int, int]]
) -> None:
    engine, tree, people = county
    serial = next(SERIALS)
    borrower_id, _ = await make_person(
        engine,
        NOW,
        name="借款人",
        branch=tree.branch,
        roles=("member", "department"),
        serial=serial % 1000,
        born=date(1960 + serial // 1000, 1, 1),
    )
    async with engine.begin() as conn:
        borrower = await person_by_id(conn, borrower_id)
        loan_id = await loans.apply(
            conn,
            member=borrower,
            amount_fen=300_000,
            project="生猪养殖",
            earnings="出栏",
            schedule_kind="equal_principal",
            terms=loans.Terms(),
            now=NOW,
        )
    cast = {**people, "borrower": borrower}
    day = date(2026, 3, 1)
    for n, (step, who, gap, amount) in enumerate(steps):
        day += timedelta(days=gap)
        step, who = await _resolve(engine, loan_id, step, who)
        done = await act(engine, step, cast[who], loan_id, day, amount, f"R{loan_id}-{n % 3}")
        if done and step in {"decide", "inspect", "guarantee", "record", "confirm", "write_off"}:
            # Only the table's own may have done it.
            assert (step, who) in ALLOWED, (step, who)
        await every_movement_has_its_act(engine, loan_id)


ALLOWED = {
    ("decide", "officer"),
    ("inspect", "staff"),
    ("inspect", "staff_2"),
    ("guarantee", "staff"),
    ("guarantee", "staff_2"),
    ("record", "staff"),
    ("record", "staff_2"),
    ("confirm", "staff"),
    ("confirm", "staff_2"),
    ("write_off", "officer"),
}
