"""The one transition table of a loan, and the one function that moves a loan along it:
audited, checked against the authority policy, refused whole (nothing written) otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Refused, Subject, acting_role, check
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import loan_events, loans
from bangfu_bot.members.models import organisations, people
from bangfu_bot.members.service import Person
from bangfu_bot.texts import speaker
from bangfu_bot.todos.models import todos

say = speaker("bangfu_bot.loans")

# The one transition table of a loan: (from, to) → the act (in the authority table) it is.
TRANSITIONS: dict[tuple[L, L], str] = {
    (L.APPLIED, L.APPROVED): "loan.decide",
    (L.APPLIED, L.REJECTED): "loan.decide",
    (L.APPROVED, L.INSPECTED): "loan.inspect",
    (L.APPROVED, L.REJECTED): "loan.inspect",
    (L.INSPECTED, L.GUARANTEED): "loan.guarantee",
    (L.GUARANTEED, L.RECORDED): "loan.record_disbursement",
    (L.RECORDED, L.DISBURSED): "loan.confirm_disbursement",
    (L.DISBURSED, L.REPAID): "loan.close",
    (L.DISBURSED, L.WRITTEN_OFF): "loan.write_off",
}


class LoanRefused(Refused):
    """A step that may not happen; `message` is Chinese for the person trying it."""


_LOAN_SUBJECT = select(
    loans,
    people.c.branch_id.label("borrower_branch_id"),
    organisations.c.parent_id.label("committee_id"),
).select_from(
    loans.join(people, people.c.id == loans.c.person_id).outerjoin(
        organisations, organisations.c.id == people.c.branch_id
    )
)


async def load_loan(conn: AsyncConnection, loan_id: int, *, lock: bool = False) -> Any:
    """A loan with where its borrower belongs now (for the authority policy). `lock`: hold
    the loan's row until the transaction ends (PostgreSQL), so two repayments of one loan
    arriving together are booked one after the other, the second seeing the first."""
    query = _LOAN_SUBJECT.where(loans.c.id == loan_id)
    if lock:
        query = query.with_for_update(of=loans)
    return (await conn.execute(query)).first()


def loan_subject(loan: Any) -> Subject:
    """A loan as the authority policy reads it: the borrower, their branch and township as
    the roster has them now (an officer moved away no longer reaches it), and who recorded
    the disbursement (never its checker)."""
    return Subject(
        person_id=loan.person_id,
        branch_id=loan.borrower_branch_id,
        committee_id=loan.committee_id,
        maker_id=loan.recorded_by,
    )


async def transition(
    conn: AsyncConnection,
    *,
    loan_id: int,
    target: L,
    actor: Person | None,
    role: str | None = None,
    channel: str,
    now: datetime,
    reason: str | None = None,
    expected: str | None = None,
    **changes: Any,
) -> Any:
    """Apply one move of the table, audited, if the authority policy allows it; refuse
    anything else (nothing written). `expected`: the status the actor saw when they opened
    the step (from their to-do); if someone moved the loan since, they are told who."""
    loan = await load_loan(conn, loan_id)
    if loan is None:
        raise LoanRefused(say("not_found"))
    if expected is not None and loan.status != expected:
        raise LoanRefused(
            await _raced(conn, loan_id), f"loan {loan_id} is {loan.status}, expected {expected}"
        )
    act = TRANSITIONS.get((L(loan.status), target))
    if act is None:
        raise LoanRefused(
            say("wrong_status", status=say("status_" + loan.status)),
            f"loan {loan_id} is {loan.status}, not a step to {target}",
        )
    subject = loan_subject(loan)
    role = role or acting_role(act, actor, subject)
    check(LoanRefused, act, actor, role, subject)
    moved = await conn.execute(
        update(loans)
        .where(loans.c.id == loan_id, loans.c.status == loan.status)
        .values(status=target, updated_at=now, **changes)
    )
    if moved.rowcount != 1:
        raise LoanRefused(await _raced(conn, loan_id), f"loan {loan_id} moved concurrently")
    # The step is done: its to-dos (for every staff member who got one) close with it.
    await conn.execute(
        update(todos)
        .where(todos.c.loan_id == loan_id, todos.c.done_at.is_(None))
        .values(done_at=now)
    )
    await conn.execute(
        insert(loan_events).values(
            loan_id=loan_id,
            actor_id=actor.id if actor else None,
            role=role,
            channel=channel,
            at=now,
            from_status=loan.status,
            to_status=target,
            reason=reason,
        )
    )
    return (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()


async def _raced(conn: AsyncConnection, loan_id: int) -> str:
    """Who moved the loan first, for the one who came second (on PostgreSQL the second
    update waits for the first to commit, then finds the status changed)."""
    row = (
        await conn.execute(
            select(people.c.name, loan_events.c.to_status)
            .select_from(loan_events.outerjoin(people, people.c.id == loan_events.c.actor_id))
            .where(loan_events.c.loan_id == loan_id)
            .order_by(loan_events.c.id.desc())
        )
    ).first()
    if row is None or row.name is None:
        return say("raced")
    return say("raced_by", name=row.name, status=say("status_" + row.to_status))
