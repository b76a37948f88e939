"""Loading and saving a user's dialogue state, inside the push's transaction.

Under group commit the dialogues of a whole batch are read in one query and written in one
executemany (see group_commit): `DIALOGUES` of the unit of work is the copy units read, and
a saved dialogue's deferred row becomes its new value there.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from bangfu_bot.conversation.engine import Session
from bangfu_bot.conversation.models import conversations
from bangfu_bot.dbutil import in_list, rows_in, upsert
from bangfu_bot.group_commit import UNKNOWN, Kind, UnitOfWork

_COLUMNS = ["flow", "status", "state", "started_at", "updated_at"]
# Each user's stored dialogue row by openid (None: none stored yet).
DIALOGUES: Kind[Any] = Kind("dialogue", tables=("conversations",), key="openid")


@lru_cache(maxsize=16)
def _dialogues_of(size: int) -> Any:
    return select(conversations).where(in_list(conversations.c.openid, size))


class Dialogue:
    """The current session plus drafts of other flows kept while the user did something else."""

    def __init__(self, current: Session, drafts: dict[str, dict[str, Any]]) -> None:
        self.current = current
        self.drafts = drafts
        self.loaded = self.snapshot()

    def snapshot(self) -> str:
        """The stored form, to tell whether anything changed."""
        session = self.current
        return json.dumps(
            [session.flow, session.status, session.state, self.drafts],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )

    def park(self) -> None:
        """Keep a paused current flow as a draft so another flow can start."""
        session = self.current
        if session.flow and session.status == "paused":
            self.drafts[session.flow] = {
                "state": session.state,
                "started_at": _iso(session.started_at),
            }
        self.current = Session()

    def unpark(self, flow: str) -> bool:
        """Make a kept draft of `flow` the current (paused) session."""
        draft = self.drafts.pop(flow, None)
        if draft is None:
            return False
        self.current = Session(
            flow=flow,
            status="paused",
            state=draft["state"],
            started_at=_parse(draft.get("started_at")),
        )
        return True

    def latest_draft(self) -> str | None:
        """A kept draft's flow, if any."""
        return next(iter(self.drafts), None)


async def load(uow: UnitOfWork, openid: str) -> Dialogue:
    """The user's dialogue (empty for a newcomer)."""
    row = uow.get(DIALOGUES, openid)
    if row is UNKNOWN:
        row = (
            await uow.conn.execute(select(conversations).where(conversations.c.openid == openid))
        ).first()
    if row is None:
        return Dialogue(Session(), {})
    stored = dict(row.state or {})
    session = Session(
        flow=row.flow,
        status=row.status,
        state=stored.get("current", {}),
        started_at=row.started_at,
        updated_at=row.updated_at,
    )
    return Dialogue(session, dict(stored.get("drafts", {})))


async def save(uow: UnitOfWork, openid: str, dialogue: Dialogue, now: datetime) -> None:
    """Store the dialogue if it changed; `updated_at` (last change) drives expiry."""
    session = dialogue.current
    if session.updated_at is not None and dialogue.snapshot() == dialogue.loaded:
        return  # a follow, a 帮助 or a 进度 must not make an idle draft look fresh
    row = {
        "openid": openid,
        "flow": session.flow,
        "status": session.status,
        "state": {"current": session.state, "drafts": dialogue.drafts},
        "started_at": session.started_at,
        "updated_at": now,
    }
    # Deferred; a later load in this batch reads this row from DIALOGUES (group_commit).
    await uow.defer(upsert(uow.conn, conversations, ["openid"], _COLUMNS), row)


async def prefetch(uow: UnitOfWork) -> None:
    """One query for the dialogues of every user in the batch."""
    openids = list({hint.openid for hint in uow.hints if hint.openid})
    found: dict[str, object] = dict.fromkeys(openids)
    found.update({row.openid: row for row in await rows_in(uow.conn, _dialogues_of, openids)})
    uow.fill(DIALOGUES, found)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
