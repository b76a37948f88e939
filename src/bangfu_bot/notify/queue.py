"""The outbox's rows as they are written: one shape, and an insert that ignores a key
already queued. Below `notify.intents` (which decides who gets which row) and the
dispatcher (which sends them); broadcasts write their mass notices here directly."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.dbutil import insert_ignore
from bangfu_bot.notify.models import outbox
from bangfu_bot.notify.templates import Facts

# Rows per multi-row insert of `queue_messages`.
QUEUE_CHUNK = 5_000
KEY_MAX = 200  # outbox.idempotency_key: a longer key is cut to this


def outbox_row(
    *,
    key: str,
    openid: str,
    kind: str,
    content: str,
    reason: str,
    now: datetime,
    urgent: bool = False,
    facts: Facts | None = None,
) -> dict[str, Any]:
    """The one shape of a new outbox row (both queue functions write exactly this);
    `facts` fill the template of the notice's kind outside the window."""
    return {
        "idempotency_key": key[:KEY_MAX],
        "openid": openid,
        "kind": kind,
        "content": content,
        "reason": reason[:200],
        "facts": facts.json() if facts is not None else None,
        "urgent": urgent,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def queue_message(
    conn: AsyncConnection,
    *,
    key: str,
    openid: str,
    kind: str,
    content: str,
    reason: str,
    now: datetime,
    urgent: bool = False,
    facts: Facts | None = None,
) -> None:
    """Write one outbox row; a second write with the same key is ignored."""
    await queue_messages(
        conn,
        [
            outbox_row(
                key=key,
                openid=openid,
                kind=kind,
                content=content,
                reason=reason,
                now=now,
                urgent=urgent,
                facts=facts,
            )
        ],
    )


async def queue_messages(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write many outbox rows (each made by `outbox_row`) with multi-row inserts in chunks;
    a row whose key was already written is ignored, as in `queue_message`."""
    statement = insert_ignore(conn, outbox, ["idempotency_key"])
    for start in range(0, len(rows), QUEUE_CHUNK):
        await conn.execute(statement, list(rows[start : start + QUEUE_CHUNK]))
