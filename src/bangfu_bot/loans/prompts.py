"""Who is told what after each step of a loan (a to-do for the next actor, a push to the
member)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.fields import clause
from bangfu_bot.common.money import yuan
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.loans.service import say
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.members.models import people
from bangfu_bot.members.service import people_able
from bangfu_bot.notify.intents import add_todo, tell
from bangfu_bot.notify.templates import Facts


async def loan_context(conn: AsyncConnection, loan_id: int) -> dict[str, Any]:
    """What flows and texts show about a loan."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    name = (
        await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
    ).scalar_one()
    recorder = ""
    if loan.recorded_by:
        recorder = (
            await conn.execute(select(people.c.name).where(people.c.id == loan.recorded_by))
        ).scalar_one()
    return {
        "loan_id": loan_id,
        "name": name,
        "amount": yuan(loan.amount_fen),
        "project": loan.project,
        "recorder": recorder,
        "status": loan.status,
    }


async def _todo_for(
    conn: AsyncConnection,
    people_ids: list[int],
    *,
    kind: str,
    text: str,
    loan: Any,
    now: datetime,
    actor_id: int | None = None,
) -> None:
    for person_id in people_ids:
        await add_todo(
            conn,
            assignee_id=person_id,
            kind=kind,
            text=text,
            now=now,
            subject_id=loan.person_id,
            loan_id=loan.id,
            key=f"loan:{loan.id}:{kind}:{person_id}",
            # Whoever took the step before is in the chat now: the to-do, but no push.
            push=person_id != actor_id,
        )


async def after(
    conn: AsyncConnection,
    *,
    loan_id: int,
    now: datetime,
    reason: str | None = None,
    actor_id: int | None = None,
) -> None:
    """Prompt whoever acts next, or tell the member, for the loan's new status. The one who
    just acted (`actor_id`) gets their next to-do unpushed: they are reading the chat."""
    loan = await load_loan(conn, loan_id)
    ctx = await loan_context(conn, loan_id)
    subject = loan_subject(loan)
    # The next step's to-do goes to everyone the authority policy lets take it: the
    # borrower's township's officers (the department for a borrower in no township), and
    # for the check of a disbursement every staff member but the one who recorded it.
    step = NEXT_STEP.get(L(loan.status))
    if step is not None:
        act, kind, text = step
        await _todo_for(
            conn,
            await people_able(conn, act, subject),
            kind=kind,
            text=say(text, **ctx),
            loan=loan,
            now=now,
            actor_id=actor_id,
        )
    if loan.status == L.APPROVED:
        await tell(
            conn,
            loan.person_id,
            say("member_approved"),
            key=f"loan:{loan_id}:approved",
            now=now,
            reason="loan approved",
            facts=Facts("decision", what=say("fact_loan"), phrase=say("fact_approved")),
        )
    elif loan.status == L.REJECTED:
        await tell(
            conn,
            loan.person_id,
            say("member_rejected", reason=clause(reason or "") or say("rejected_no_reason")),
            key=f"loan:{loan_id}:rejected",
            now=now,
            reason="loan rejected",
            facts=Facts(
                "decision",
                what=say("fact_loan"),
                phrase=say("fact_rejected"),
                detail=reason or "",
            ),
        )
    elif loan.status == L.DISBURSED:
        await tell(
            conn,
            loan.person_id,
            say(
                "member_disbursed",
                amount=ctx["amount"],
                id=loan_id,
                plan=await plan_text(conn, loan_id),
            ),
            key=f"loan:{loan_id}:disbursed",
            now=now,
            reason="loan disbursed",
        )


# A loan in this status waits for this act: its to-do kind and text.
NEXT_STEP = {
    L.APPLIED: ("loan.decide", "loan_review", "review_todo"),
    L.APPROVED: ("loan.inspect", "loan_inspect", "inspect_todo"),
    L.INSPECTED: ("loan.guarantee", "loan_guarantee", "guarantee_todo"),
    L.GUARANTEED: ("loan.record_disbursement", "loan_disburse", "disburse_todo"),
    L.RECORDED: ("loan.confirm_disbursement", "loan_confirm", "confirm_todo"),
}


async def plan_text(conn: AsyncConnection, loan_id: int) -> str:
    """The schedule as the member reads it."""
    rows = (
        await conn.execute(
            select(instalments)
            .where(instalments.c.loan_id == loan_id)
            .order_by(instalments.c.number)
        )
    ).all()
    return "\n".join(
        say(
            "plan_line",
            n=row.number,
            day=chinese_date(row.due_on),
            principal=yuan(row.principal_fen),
            interest=yuan(row.interest_fen),
        )
        for row in rows
    )


async def after_repayment(
    conn: AsyncConnection, *, loan_id: int, receipt: str, text: str, now: datetime
) -> None:
    """Tell the borrower a repayment was booked (the chat's 还款登记 and the desk alike):
    the same words the one who recorded it read, under the receipt's number."""
    loan = (await conn.execute(select(loans.c.person_id).where(loans.c.id == loan_id))).one()
    await tell(
        conn,
        loan.person_id,
        say("member_repaid", receipt=receipt, text=text),
        key=f"loan:{loan_id}:repaid:{receipt}",
        now=now,
        reason="repayment recorded",
    )
