"""The one transition table of a case, and the one function that applies it.

Chat and command line both call `transition`: it checks that the move is in the table, that
the actor holds a role allowed to make it and acts within their scope, applies the move only
if nobody moved the case first, closes the to-dos of the step that is over, and writes the
audit row — all in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Refused, Subject, acting_role, check
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.members.models import organisations, people
from bangfu_bot.members.service import Person, secretaries_of
from bangfu_bot.texts import speaker
from bangfu_bot.todos.models import todos


@dataclass(frozen=True)
class Move:
    """One allowed change of status and the act (in the authority table) it is."""

    source: S
    target: S
    act: str


TRANSITIONS: tuple[Move, ...] = (
    Move(S.SUBMITTED, S.UNDER_EVALUATION, "case.open_evaluation"),
    Move(S.UNDER_EVALUATION, S.EVALUATED_PASSED, "case.record_evaluation"),
    Move(S.UNDER_EVALUATION, S.EVALUATED_FAILED, "case.record_evaluation"),
    Move(S.EVALUATED_PASSED, S.ON_NOTICE, "case.open_notice"),
    Move(S.ON_NOTICE, S.NOTICE_CLOSED, "case.close_notice"),
    Move(S.NOTICE_CLOSED, S.REPORTED, "case.report"),
    Move(S.REPORTED, S.APPROVED, "case.decide"),
    Move(S.REPORTED, S.RETURNED, "case.decide"),
    # A returned case goes back to the step the committee named (cases.return_to).
    Move(S.RETURNED, S.SUBMITTED, "case.resume_returned"),
    Move(S.RETURNED, S.UNDER_EVALUATION, "case.resume_returned"),
    Move(S.APPROVED, S.FILED, "case.file"),
    Move(S.FILED, S.IN_LEDGER, "case.enter_ledger"),
    Move(S.IN_LEDGER, S.EXITED, "case.exit"),
)


class TransitionRefused(Refused):
    """A move that may not happen; `message` is a short Chinese sentence for the actor."""


say = speaker("bangfu_bot.cases")


def status_name(status: str) -> str:
    """A status as members read it."""
    return say(f"status_{status}")


def find_move(source: str, target: str) -> Move | None:
    """The table's entry for this change, if there is one."""
    return next((m for m in TRANSITIONS if m.source == source and m.target == target), None)


async def load_case(conn: AsyncConnection, case_id: int) -> Any:
    """A case with its branch's committee id (for scope checks)."""
    row = (
        await conn.execute(
            select(cases, organisations.c.parent_id.label("committee_id"))
            .select_from(cases.outerjoin(organisations, organisations.c.id == cases.c.branch_id))
            .where(cases.c.id == case_id)
        )
    ).first()
    return row


async def raced(conn: AsyncConnection, case_id: int) -> str:
    """Who moved the case first, for the one who came second."""
    row = (
        await conn.execute(
            select(people.c.name, case_events.c.to_status)
            .select_from(case_events.outerjoin(people, people.c.id == case_events.c.actor_id))
            .where(case_events.c.case_id == case_id)
            .order_by(case_events.c.id.desc())
        )
    ).first()
    if row is None or row.name is None:
        return say("refused_raced")
    return say("refused_raced_by", name=row.name, status=status_name(row.to_status))


async def case_subject(conn: AsyncConnection, case: Any) -> Subject:
    """A case as the authority policy reads it: whose it is, and where."""
    return Subject(
        person_id=case.person_id,
        branch_id=case.branch_id,
        committee_id=case.committee_id,
        secretaries=frozenset(await secretaries_of(conn, case.branch_id)),
    )


async def transition(
    conn: AsyncConnection,
    *,
    case_id: int,
    target: S,
    actor: Person | None,
    role: str | None = None,
    channel: str,
    now: datetime,
    reason: str | None = None,
    return_to: S | None = None,
    expected: S | None = None,
) -> Any:
    """Apply one move of the table; raise TransitionRefused (nothing written) otherwise.

    `expected` is the status the actor saw when they started (e.g. from their to-do): if the
    case has moved since, they are told someone else handled it.
    """
    case = await load_case(conn, case_id)
    if case is None:
        raise TransitionRefused(say("refused_no_case"), f"no case {case_id}")
    if expected is not None and case.status != expected:
        raise TransitionRefused(
            await raced(conn, case_id), f"case {case_id} is {case.status}, expected {expected}"
        )
    move = find_move(case.status, target)
    if move is None:
        raise TransitionRefused(
            say(
                "refused_not_in_table", source=status_name(case.status), target=status_name(target)
            ),
            f"{case.status} -> {target} is not in the transition table",
        )
    subject = await case_subject(conn, case)
    if role is None:
        role = acting_role(move.act, actor, subject)
    check(TransitionRefused, move.act, actor, role, subject)
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if target == S.RETURNED:
        changes["return_to"] = return_to
    moved = await conn.execute(
        update(cases).where(cases.c.id == case_id, cases.c.status == case.status).values(**changes)
    )
    if moved.rowcount != 1:
        raise TransitionRefused(await raced(conn, case_id), f"case {case_id} moved concurrently")
    await conn.execute(
        update(todos)
        .where(todos.c.case_id == case_id, todos.c.done_at.is_(None))
        .values(done_at=now)
    )
    await conn.execute(
        insert(case_events).values(
            case_id=case_id,
            actor_id=actor.id if actor else None,
            role=role,
            channel=channel,
            at=now,
            from_status=case.status,
            to_status=target,
            reason=reason,
        )
    )
    return await load_case(conn, case_id)
