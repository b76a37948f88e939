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

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.members.models import organisations
from bangfu_bot.members.service import Person
from bangfu_bot.texts import speaker
from bangfu_bot.todos.models import todos


@dataclass(frozen=True)
class Move:
    """One allowed change of status and the roles that may make it."""

    source: S
    target: S
    roles: frozenset[str]


def _move(source: S, target: S, *roles: str) -> Move:
    return Move(source, target, frozenset(roles))


TRANSITIONS: tuple[Move, ...] = (
    _move(S.SUBMITTED, S.UNDER_EVALUATION, "secretary"),
    _move(S.UNDER_EVALUATION, S.EVALUATED_PASSED, "secretary"),
    _move(S.UNDER_EVALUATION, S.EVALUATED_FAILED, "secretary"),
    _move(S.EVALUATED_PASSED, S.ON_NOTICE, "system", "secretary"),
    _move(S.ON_NOTICE, S.NOTICE_CLOSED, "system", "secretary"),
    _move(S.NOTICE_CLOSED, S.REPORTED, "secretary"),
    _move(S.REPORTED, S.APPROVED, "committee"),
    _move(S.REPORTED, S.RETURNED, "committee"),
    # A returned case goes back to the step the committee named (cases.return_to).
    _move(S.RETURNED, S.SUBMITTED, "secretary"),
    _move(S.RETURNED, S.UNDER_EVALUATION, "secretary"),
    _move(S.APPROVED, S.FILED, "department"),
    _move(S.FILED, S.IN_LEDGER, "system", "department"),
    _move(S.IN_LEDGER, S.EXITED, "secretary", "department"),
)


class TransitionRefused(Exception):
    """A move that may not happen; `message` is a short Chinese sentence for the actor."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


say = speaker("bangfu_bot.cases")


def status_name(status: str) -> str:
    """A status as members read it."""
    return say(f"status_{status}")


def find_move(source: str, target: str) -> Move | None:
    """The table's entry for this change, if there is one."""
    return next((m for m in TRANSITIONS if m.source == source and m.target == target), None)


async def load_case(conn: AsyncConnection, case_id: int) -> Any:
    """A case with its branch's committee id (for scope checks)."""
    row = (await conn.execute(
        select(cases, organisations.c.parent_id.label("committee_id"))
        .select_from(cases.outerjoin(organisations, organisations.c.id == cases.c.branch_id))
        .where(cases.c.id == case_id))).first()
    return row


async def transition(conn: AsyncConnection, *, case_id: int, target: S, actor: Person | None,
                     role: str, channel: str, now: datetime, reason: str | None = None,
                     return_to: S | None = None, expected: S | None = None) -> Any:
    """Apply one move of the table; raise TransitionRefused (nothing written) otherwise.

    `expected` is the status the actor saw when they started (e.g. from their to-do): if the
    case has moved since, they are told someone else handled it.
    """
    case = await load_case(conn, case_id)
    if case is None:
        raise TransitionRefused(say("refused_no_case"), f"no case {case_id}")
    if expected is not None and case.status != expected:
        raise TransitionRefused(say("refused_raced"),
                                f"case {case_id} is {case.status}, expected {expected}")
    move = find_move(case.status, target)
    if move is None:
        raise TransitionRefused(
            say("refused_not_in_table", source=status_name(case.status),
                target=status_name(target)),
            f"{case.status} -> {target} is not in the transition table")
    _check_actor(case, move, actor, role)
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if target == S.RETURNED:
        changes["return_to"] = return_to
    moved = await conn.execute(update(cases).where(cases.c.id == case_id,
                                                   cases.c.status == case.status)
                               .values(**changes))
    if moved.rowcount != 1:
        raise TransitionRefused(say("refused_raced"), f"case {case_id} moved concurrently")
    await conn.execute(update(todos).where(todos.c.case_id == case_id, todos.c.done_at.is_(None))
                       .values(done_at=now))
    await conn.execute(insert(case_events).values(
        case_id=case_id, actor_id=actor.id if actor else None, role=role, channel=channel,
        at=now, from_status=case.status, to_status=target, reason=reason))
    return await load_case(conn, case_id)


def _check_actor(case: Any, move: Move, actor: Person | None, role: str) -> None:
    if role not in move.roles:
        raise TransitionRefused(say("refused_role", step=status_name(move.target)),
                                f"role {role} may not move {move.source} -> {move.target}")
    if role == "system":
        if actor is not None:
            raise TransitionRefused(say("refused_role", step=status_name(move.target)),
                                    "a person cannot act as the system")
        return
    if actor is None or not actor.has(role):
        raise TransitionRefused(say("refused_role", step=status_name(move.target)),
                                f"actor does not hold the role {role}")
    if role != "member" and actor.id == case.person_id:
        raise TransitionRefused(say("refused_own_case"), "an official may not act on their own case")
    if role == "secretary" and actor.branch_id != case.branch_id:
        raise TransitionRefused(say("refused_scope"), "secretary of another branch")
    if role == "committee" and actor.committee_id != case.committee_id:
        raise TransitionRefused(say("refused_scope"), "committee officer of another township")
    if role == "member" and actor.id != case.person_id:
        raise TransitionRefused(say("refused_scope"), "member acting on another's case")
