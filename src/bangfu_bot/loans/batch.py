"""`tell()` and `add_todo()` for many messages at once, for the daily loan scans.

The single-row functions cost a few queries per message; a scan that owes tens of thousands
of reminders cannot afford that. These write exactly the rows those functions write (same
keys, kinds, reasons, to-do texts) with a handful of queries per few thousand messages: the
recipients' openids and the keys already in the outbox are read with `IN` lists of up to
4,096 values (`dbutil.in_chunks`), and the new rows go in with `queue_messages` (outbox) and
one execute per 500 rows (to-dos).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Executable, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.dbutil import chunked, in_chunks, in_list, rows_in
from bangfu_bot.members.models import bindings, people, person_roles
from bangfu_bot.notify.models import outbox
from bangfu_bot.notify.outbox import outbox_row, queue_messages
from bangfu_bot.todos.models import todos

CHUNK = 500  # to-do rows per insert
class Tell(NamedTuple):
    """What `cases.procedure.tell` does: a text to each WeChat user bound to a person.

    The text is rendered only for a message not queued before: an immediate re-run of a
    scan renders nothing."""

    person_id: int
    key: str
    reason: str
    render: Callable[[], str]  # the text


class Todo(NamedTuple):
    """What `todos.service.add_todo` does: a to-do row, pushed to its assignee."""

    assignee_id: int
    kind: str
    text: str
    subject_id: int | None
    loan_id: int | None
    key: str


async def openids_by_person(conn: AsyncConnection, person_ids: Sequence[int]
                            ) -> dict[int, list[str]]:
    """`openids_of` for many people: the WeChat users bound to each now."""
    found: dict[int, list[str]] = {person_id: [] for person_id in person_ids}
    for person_id, openid in await rows_in(conn, _bound_to, list(found)):
        found[person_id].append(openid)
    return found


@lru_cache(maxsize=16)
def _bound_to(size: int) -> Executable:
    # Ordered by id within a chunk; a person's bindings are all in one chunk.
    return (select(bindings.c.person_id, bindings.c.openid)
            .where(in_list(bindings.c.person_id, size), bindings.c.unbound_at.is_(None))
            .order_by(bindings.c.id))


async def secretaries_by_branch(conn: AsyncConnection, branch_ids: Sequence[int]
                                ) -> dict[int, list[int]]:
    """`secretaries_of` for many branches: each branch's active secretaries, by id."""
    found: dict[int, list[int]] = {branch_id: [] for branch_id in branch_ids}
    for person_id, branch_id in await rows_in(conn, _secretaries_of, list(found)):
        found[branch_id].append(person_id)
    return found


@lru_cache(maxsize=16)
def _secretaries_of(size: int) -> Executable:
    return (select(people.c.id, people.c.branch_id)
            .select_from(people.join(person_roles, person_roles.c.person_id == people.c.id))
            .where(person_roles.c.role == "secretary", people.c.active.is_(True),
                   in_list(people.c.branch_id, size))
            .order_by(people.c.id))


async def send(conn: AsyncConnection, items: Sequence[Tell | Todo], *, now: datetime) -> int:
    """Write every to-do and every message not queued before, in the order given (so ids
    come out as the one-by-one calls would make them); return how many rows were added."""
    openids = await openids_by_person(conn, [
        item.assignee_id if isinstance(item, Todo) else item.person_id for item in items])
    todo_rows: list[dict[str, Any]] = []
    planned: list[tuple[str, str, Tell | Todo]] = []  # (key, openid, what)
    for item in items:
        if isinstance(item, Todo):
            todo_rows.append(_todo_row(item, now))
            planned += [(f"todo:{item.key}:{openid}"[:200], openid, item)
                        for openid in openids[item.assignee_id]]
        else:
            planned += [(f"{item.key}:{openid}"[:200], openid, item)
                        for openid in openids[item.person_id]]
    queued = await _queued(conn, [key for key, _, _ in planned])
    messages = []
    for key, openid, item in planned:
        if key not in queued:  # a repeat within the batch: the first wins, as with ignore
            queued.add(key)
            messages.append(_message(key, openid, item, now))
    for chunk in chunked(todo_rows, CHUNK):
        # One execute with the list of rows: the driver runs one compiled statement for
        # each (a multi-VALUES `.values([...])` is compiled anew every time: measured nine
        # times slower for 20,000 rows).
        await conn.execute(insert(todos), list(chunk))
    await queue_messages(conn, messages)  # ignores a key another process wrote meanwhile
    return len(todo_rows) + len(messages)


def _todo_row(item: Todo, now: datetime) -> dict[str, Any]:
    return {"assignee_id": item.assignee_id, "kind": item.kind, "text": item.text,
            "subject_id": item.subject_id, "case_id": None, "loan_id": item.loan_id,
            "created_at": now}


def _message(key: str, openid: str, item: Tell | Todo, now: datetime) -> dict[str, Any]:
    """The row `tell` or `add_todo` would queue for this recipient."""
    if isinstance(item, Todo):
        return outbox_row(key=key, openid=openid, kind="todo", content=item.text,
                          reason=f"to-do {item.kind}", now=now)
    return outbox_row(key=key, openid=openid, kind="case", content=item.render(),
                      reason=item.reason, now=now)


@lru_cache(maxsize=16)
def _queued_of(size: int) -> Executable:
    return select(outbox.c.idempotency_key).where(in_list(outbox.c.idempotency_key, size))


@lru_cache(maxsize=16)
def _count_queued(size: int) -> Executable:
    return (select(func.count()).select_from(outbox)
            .where(in_list(outbox.c.idempotency_key, size)))


async def _queued(conn: AsyncConnection, keys: Sequence[str]) -> set[str]:
    """Which of these outbox keys exist already. Counted first: on a first run none do, on
    a re-run all do, and neither needs the keys read back. Sorted, so that each chunk's
    lookups walk one stretch of the key index."""
    found: set[str] = set()
    distinct = sorted(set(keys))
    for size, chunk, bound in in_chunks(conn, distinct):
        count = (await conn.execute(_count_queued(size), bound)).scalar_one()
        if count == len(chunk):
            found.update(chunk)
        elif count:
            found.update((await conn.execute(_queued_of(size), bound)).scalars())
    return found
