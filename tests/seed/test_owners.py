"""No case or loan rests where nobody has a to-do for it: every status of the demo county is
walked, and each case or loan waiting for a person has an open to-do held by someone the
authority policy lets make the next act. Statuses the system moves on by date, and the
ends, are named as such, so a new status must be placed here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.authority import able
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases, objections
from bangfu_bot.cases.transitions import case_subject, load_case
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import loans
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.members.service import person_by_id
from bangfu_bot.seed.county import seed_demo
from bangfu_bot.todos.models import todos

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)

# A case in this status waits for this to-do and act.
CASE_WAITS = {
    S.SUBMITTED: ("evaluate", "case.open_evaluation"),
    S.UNDER_EVALUATION: ("evaluate", "case.record_evaluation"),
    S.NOTICE_CLOSED: ("report", "case.report"),
    S.REPORTED: ("approve", "case.decide"),
    S.RETURNED: ("returned", "case.resume_returned"),
    S.APPROVED: ("file", "case.file"),
}
CASE_BY_DATE = {S.ON_NOTICE, S.IN_LEDGER}  # the notice job; the yearly review
CASE_PASSING = {S.EVALUATED_PASSED, S.FILED}  # the system moves on in the same transaction
CASE_ENDS = {S.EVALUATED_FAILED, S.EXITED}

LOAN_WAITS = {
    L.APPLIED: ("loan_review", "loan.decide"),
    L.APPROVED: ("loan_inspect", "loan.inspect"),
    L.INSPECTED: ("loan_guarantee", "loan.guarantee"),
    L.GUARANTEED: ("loan_disburse", "loan.record_disbursement"),
    L.RECORDED: ("loan_confirm", "loan.confirm_disbursement"),
}
LOAN_BY_DATE = {L.DISBURSED}  # reminders, then the guarantor call and write-off to-dos
LOAN_ENDS = {L.REJECTED, L.REPAID, L.WRITTEN_OFF}


def test_every_status_is_placed() -> None:
    assert set(S) == set(CASE_WAITS) | CASE_BY_DATE | CASE_PASSING | CASE_ENDS
    assert set(L) == set(LOAN_WAITS) | LOAN_BY_DATE | LOAN_ENDS


async def owners(conn: Any, *, kind: str, act: str, subject: Any, **target: int) -> list[str]:
    """Who holds an open to-do of this kind on the case or loan and may make the act."""
    column, value = next(iter(target.items()))
    held = (
        (
            await conn.execute(
                select(todos.c.assignee_id).where(
                    getattr(todos.c, column) == value,
                    todos.c.kind == kind,
                    todos.c.done_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    found = []
    for person_id in held:
        person = await person_by_id(conn, person_id)
        if person is not None and able(act, person, subject):
            found.append(person.name)
    return found


async def test_every_case_and_loan_of_the_demo_county_has_an_owner(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    seen: set[str] = set()
    async with engine.connect() as conn:
        for row in (await conn.execute(select(cases.c.id, cases.c.status))).all():
            seen.add(f"case:{row.status}")
            case = await load_case(conn, row.id)
            subject = await case_subject(conn, case)
            if row.status == S.ON_NOTICE:
                held = (
                    await conn.execute(
                        select(objections.c.id).where(
                            objections.c.case_id == row.id, objections.c.resolved_at.is_(None)
                        )
                    )
                ).first()
                if held is not None:  # an open objection: its resolution is a person's
                    assert await owners(
                        conn,
                        kind="objection",
                        act="objection.resolve",
                        subject=subject,
                        case_id=row.id,
                    ), row
                continue
            if row.status not in CASE_WAITS:
                assert row.status not in CASE_PASSING, row
                continue
            kind, act = CASE_WAITS[S(row.status)]
            assert await owners(conn, kind=kind, act=act, subject=subject, case_id=row.id), row
        for row in (await conn.execute(select(loans.c.id, loans.c.status))).all():
            seen.add(f"loan:{row.status}")
            if row.status not in LOAN_WAITS:
                continue
            kind, act = LOAN_WAITS[L(row.status)]
            subject = loan_subject(await load_loan(conn, row.id))
            assert await owners(conn, kind=kind, act=act, subject=subject, loan_id=row.id), row
    # The demo county has every status a case or a loan rests at.
    assert {f"case:{s}" for s in CASE_WAITS if s != S.UNDER_EVALUATION} <= seen
    assert {f"loan:{s}" for s in LOAN_WAITS} <= seen
