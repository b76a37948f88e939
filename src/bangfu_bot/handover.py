"""To-dos follow people's authority when the roster changes.

A re-import can move an officer to another township, take a secretary's role away or
deactivate someone. Their open to-dos on cases and loans then name a step they may no
longer take: each such to-do is closed, and a step left with no open to-do is handed to
everyone the authority policy now lets take it, so no case or loan is left without an owner.
A step whose roster has nobody left to take it is named to the operator. Run after every
roster import (`bangfu-bot import members`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import BY_NAME, Subject, able
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases
from bangfu_bot.cases.transitions import case_subject, load_case
from bangfu_bot.loans.models import loans
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.members.models import people
from bangfu_bot.members.service import people_able, person_by_id
from bangfu_bot.notify.intents import add_todo
from bangfu_bot.texts import speaker
from bangfu_bot.todos.models import todos

say = speaker("bangfu_bot")

log = logging.getLogger(__name__)

# The act a to-do of this kind stands for (an evaluation under way is recorded, not opened).
CASE_ACTS = {
    "evaluate": "case.open_evaluation",
    "report": "case.report",
    "approve": "case.decide",
    "file": "case.file",
    "returned": "case.resume_returned",
    "objection": "objection.resolve",
    "review": "case.review",
}
LOAN_ACTS = {
    "loan_review": "loan.decide",
    "loan_inspect": "loan.inspect",
    "loan_guarantee": "loan.guarantee",
    "loan_disburse": "loan.record_disbursement",
    "loan_confirm": "loan.confirm_disbursement",
    "loan_write_off": "loan.write_off",
}


@dataclass
class Handover:
    """What a hand-over did: to-dos closed, to-dos given, and steps nobody may take (the
    roster has no one with the authority: the operator is told)."""

    closed: int = 0
    handed: int = 0
    unowned: list[str] = field(default_factory=list)


async def hand_over(conn: AsyncConnection, *, now: datetime) -> Handover:
    """Close open to-dos their holder may no longer act on; hand every step that waits for
    a person and has no open to-do (those just closed, and any left before because nobody
    could take them) to those who may now."""
    rows = (
        await conn.execute(
            select(todos)
            .where(todos.c.done_at.is_(None), todos.c.kind.in_([*CASE_ACTS, *LOAN_ACTS]))
            .order_by(todos.c.id)
        )
    ).all()
    closed: list[Any] = []
    for row in rows:
        step = await _step(conn, row)
        if step is None:
            continue
        act, subject = step
        person = await person_by_id(conn, row.assignee_id)
        if person is None or able(act, person, subject) is None:
            await conn.execute(update(todos).where(todos.c.id == row.id).values(done_at=now))
            closed.append((row, act, subject))
    done = Handover(closed=len(closed))
    texts = {(row.kind, row.case_id, row.loan_id): row.text for row, _, _ in closed}
    for kind, act, subject, case_id, loan_id in await _waiting(conn):
        if await _held(conn, kind, case_id, loan_id):
            continue
        hands = await people_able(conn, act, subject)
        if not hands:
            done.unowned.append(f"{'case' if case_id else 'loan'} {case_id or loan_id}: {act}")
        text = texts.get((kind, case_id, loan_id)) or say(
            "handover_todo", name=await _name(conn, subject.person_id), step=BY_NAME[act].label
        )
        for person_id in hands:  # a to-do of this hand-over's own (the step may be handed
            # to the same person again after a later change)
            await add_todo(
                conn,
                assignee_id=person_id,
                kind=kind,
                text=text,
                now=now,
                subject_id=subject.person_id,
                case_id=case_id,
                loan_id=loan_id,
                key=f"handover:{kind}:{case_id}:{loan_id}:{now.isoformat()}:{person_id}",
            )
            done.handed += 1
    if done.closed or done.handed or done.unowned:
        log.info(
            "roster change: %d to-do(s) closed, %d handed over, %d step(s) without "
            "anyone to take them",
            done.closed,
            done.handed,
            len(done.unowned),
        )
    return done


# A case or loan in this status waits for this to-do and act (the rest the system moves by
# date, or they have ended).
CASE_WAITS = {
    S.SUBMITTED: ("evaluate", "case.open_evaluation"),
    S.UNDER_EVALUATION: ("evaluate", "case.record_evaluation"),
    S.NOTICE_CLOSED: ("report", "case.report"),
    S.REPORTED: ("approve", "case.decide"),
    S.RETURNED: ("returned", "case.resume_returned"),
    S.APPROVED: ("file", "case.file"),
}
LOAN_WAITS = {
    "applied": ("loan_review", "loan.decide"),
    "approved": ("loan_inspect", "loan.inspect"),
    "inspected": ("loan_guarantee", "loan.guarantee"),
    "guaranteed": ("loan_disburse", "loan.record_disbursement"),
    "recorded": ("loan_confirm", "loan.confirm_disbursement"),
}


async def _waiting(conn: AsyncConnection) -> list[tuple[str, str, Subject, Any, Any]]:
    """Every case and loan waiting for a person: (to-do kind, act, subject, case, loan)."""
    found: list[tuple[str, str, Subject, Any, Any]] = []
    for case_id, status in (
        await conn.execute(
            select(cases.c.id, cases.c.status)
            .where(cases.c.status.in_(list(CASE_WAITS)))
            .order_by(cases.c.id)
        )
    ).all():
        kind, act = CASE_WAITS[S(status)]
        case = await load_case(conn, case_id)
        found.append((kind, act, await case_subject(conn, case), case_id, None))
    for loan_id, status in (
        await conn.execute(
            select(loans.c.id, loans.c.status)
            .where(loans.c.status.in_(list(LOAN_WAITS)))
            .order_by(loans.c.id)
        )
    ).all():
        kind, act = LOAN_WAITS[status]
        found.append((kind, act, loan_subject(await load_loan(conn, loan_id)), None, loan_id))
    return found


async def _step(conn: AsyncConnection, row: Any) -> tuple[str, Subject] | None:
    if row.loan_id is not None and row.kind in LOAN_ACTS:
        loan = await load_loan(conn, row.loan_id)
        return (LOAN_ACTS[row.kind], loan_subject(loan)) if loan is not None else None
    if row.case_id is not None and row.kind in CASE_ACTS:
        case = await load_case(conn, row.case_id)
        if case is None:
            return None
        act = CASE_ACTS[row.kind]
        if row.kind == "evaluate" and case.status == S.UNDER_EVALUATION:
            act = "case.record_evaluation"
        return act, await case_subject(conn, case)
    return None


async def _name(conn: AsyncConnection, person_id: int | None) -> str:
    return str(
        (await conn.execute(select(people.c.name).where(people.c.id == person_id))).scalar() or ""
    )


async def _held(conn: AsyncConnection, kind: str, case_id: Any, loan_id: Any) -> bool:
    """Whether someone holds an open to-do of this step."""
    same = todos.c.loan_id == loan_id if loan_id is not None else todos.c.case_id == case_id
    return (
        await conn.execute(
            select(todos.c.id).where(same, todos.c.kind == kind, todos.c.done_at.is_(None))
        )
    ).first() is not None
