"""What the domain tells people: one path for every to-do and every message to a person.

The domain describes what is to be told as intents, and `write` writes them, one or tens
of thousands at once, through the same code:

- `Tell`: a text to a person (to each WeChat user bound to them now; key `{key}:{openid}`)
  or to one WeChat user (key `{key}` as given). Kind `case` unless said otherwise.
- `Todo`: a to-do (待办) for a person, pushed to each WeChat user bound to them (kind `todo`,
  reason `to-do {kind}`, key `todo:{key}:{openid}`, never urgent) unless `push` is off.

Keys. An outbox key names one message: a message whose key was queued before is not
queued again. A to-do's key names one to-do for one person (`todos.key` is unique): the
occurrence of the event that calls for it and who it is for. Writing a key again is a
repeat of that event (a retried transaction, a re-run scan, a replayed message, two hands
at once) and changes nothing, whether the first to-do is still open or done: no second
to-do, and no second push (not even to a WeChat user bound since). So a step that can come
round again (a case sent back and reported anew, a step handed over again) must name its
round in its key, and a to-do given to several people names each of them in its key.

Cost: no query per intent. The keys of the to-dos already written, the WeChat users of
everyone to be told, and (when a text is still to be rendered, see `Tell.text`) the outbox
keys already queued are read with `IN` lists of up to 4,096 values (`dbutil.in_chunks`);
the new to-dos go in with one execute per 500 rows and the messages with `queue_messages`.
A message to one WeChat user, given whole, costs its insert alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.dbutil import chunked, in_chunks, in_list, insert_ignore, rows_in
from bangfu_bot.members.models import bindings
from bangfu_bot.notify.models import outbox
from bangfu_bot.notify.queue import KEY_MAX, outbox_row, queue_messages
from bangfu_bot.notify.templates import Facts, sentence_facts
from bangfu_bot.todos.models import todos

TODO_CHUNK = 500  # to-do rows per insert
TODO_KEY_MAX = 200  # todos.key


@dataclass(frozen=True, slots=True)
class Tell:
    """A message to a person (`person_id`: each WeChat user bound to them now, the key
    suffixed with the user's openid) or to one WeChat user (`openid`, the key as given).

    `text` is the text, or a function that renders it: then it is rendered only for a
    message not queued before (an immediate re-run of a scan renders nothing)."""

    key: str
    text: str | Callable[[], str]
    reason: str  # why it is sent, for operators
    person_id: int | None = None
    openid: str | None = None
    kind: str = "case"
    urgent: bool = False
    facts: Facts | None = None  # what it is about, for its template outside the window


@dataclass(frozen=True, slots=True)
class Todo:
    """A to-do for a person, pushed to their WeChat (see the module's note on keys)."""

    assignee_id: int
    kind: str
    text: str
    key: str
    subject_id: int | None = None  # the member it is about
    case_id: int | None = None
    loan_id: int | None = None
    push: bool = True  # False: the assignee is reading it now, in the chat


Intent = Tell | Todo


async def write(conn: AsyncConnection, intents: Sequence[Intent], *, now: datetime) -> None:
    """Write every to-do whose key is new and queue every message not queued before (a
    to-do's push only with the to-do), in the order given: ids come out as one-by-one
    writes would make them, and of two intents with one key the first wins."""
    if not intents:
        return
    new = await _new_todos(conn, intents)  # per intent: the to-do to write, if it is one
    told: list[int] = []  # whose WeChat users are asked for
    for item, todo in zip(intents, new, strict=True):
        if todo is not None:
            if todo.push:
                told.append(todo.assignee_id)
        elif type(item) is Tell and item.person_id is not None:
            told.append(item.person_id)
    openids = await openids_of_people(conn, told)
    planned: list[tuple[str, str, Intent]] = []  # (outbox key, openid, what)
    lazy = False  # some text is still to be rendered
    for item, todo in zip(intents, new, strict=True):
        if todo is not None:
            if todo.push:
                planned += [
                    (f"todo:{todo.key}:{openid}"[:KEY_MAX], openid, todo)
                    for openid in openids[todo.assignee_id]
                ]
        elif type(item) is Tell:
            lazy = lazy or type(item.text) is not str
            if item.person_id is not None:
                planned += [
                    (f"{item.key}:{openid}"[:KEY_MAX], openid, item)
                    for openid in openids[item.person_id]
                ]
            elif item.openid is not None:
                planned.append((item.key[:KEY_MAX], item.openid, item))
            else:
                raise ValueError(f"a Tell needs a person_id or an openid: {item.key}")
    # A text given whole is simply inserted (the insert ignores a queued key); one still to
    # be rendered is rendered only if its key is not queued yet.
    queued = await _queued(conn, [key for key, _, _ in planned]) if lazy else set()
    messages = []
    for key, openid, item in planned:
        if key not in queued:  # a repeat within the write: the first wins, as with ignore
            queued.add(key)
            messages.append(_message(key, openid, item, now))
    rows = [_todo_row(todo, now) for todo in new if todo is not None]
    statement = insert_ignore(conn, todos, ["key"])
    for chunk in chunked(rows, TODO_CHUNK):
        # One execute with the list of rows: the driver runs one compiled statement for
        # each (a multi-VALUES `.values([...])` is compiled anew every time: measured nine
        # times slower for 20,000 rows). A key another transaction wrote meanwhile is
        # ignored; its push has the same outbox key as ours.
        await conn.execute(statement, list(chunk))
    await queue_messages(conn, messages)  # ignores a key another process wrote meanwhile


async def add_todo(
    conn: AsyncConnection,
    *,
    assignee_id: int,
    kind: str,
    text: str,
    now: datetime,
    key: str,
    subject_id: int | None = None,
    case_id: int | None = None,
    loan_id: int | None = None,
    push: bool = True,
) -> int:
    """`write` of one `Todo`; returns the to-do's id (the earlier one's, for a key written
    before)."""
    await write(
        conn, [Todo(assignee_id, kind, text, key, subject_id, case_id, loan_id, push)], now=now
    )
    return int((await conn.execute(select(todos.c.id).where(todos.c.key == key))).scalar_one())


async def tell(
    conn: AsyncConnection,
    person_id: int,
    text: str,
    *,
    key: str,
    now: datetime,
    reason: str,
    kind: str = "case",
    urgent: bool = False,
    facts: Facts | None = None,
) -> None:
    """`write` of one `Tell` to a person: the text to each WeChat user bound to them."""
    await write(
        conn,
        [Tell(key, text, reason, person_id=person_id, kind=kind, urgent=urgent, facts=facts)],
        now=now,
    )


async def tell_user(
    conn: AsyncConnection,
    openid: str,
    text: str,
    *,
    key: str,
    now: datetime,
    reason: str,
    kind: str,
    urgent: bool = False,
    facts: Facts | None = None,
) -> None:
    """`write` of one `Tell` to one WeChat user (the key as given)."""
    await write(
        conn,
        [Tell(key, text, reason, openid=openid, kind=kind, urgent=urgent, facts=facts)],
        now=now,
    )


async def openids_of_people(
    conn: AsyncConnection, person_ids: Sequence[int]
) -> dict[int, list[str]]:
    """The WeChat users bound to each of these people now (`members.service.openids_of`
    for many at once), each person's in binding order."""
    found: dict[int, list[str]] = {person_id: [] for person_id in person_ids}
    if found:
        for row in await rows_in(conn, _bound_to, list(found)):
            found[row.person_id].append(row.openid)
    return found


@lru_cache(maxsize=16)
def _bound_to(size: int) -> Executable:
    # Ordered by id within a chunk; a person's bindings are all in one chunk.
    return (
        select(bindings.c.person_id, bindings.c.openid)
        .where(in_list(bindings.c.person_id, size), bindings.c.unbound_at.is_(None))
        .order_by(bindings.c.id)
    )


async def _new_todos(conn: AsyncConnection, intents: Sequence[Intent]) -> list[Todo | None]:
    """For each intent, the to-do to write if it is one: a `Todo` whose key was not written
    before, nor by an earlier intent of the same write (None for the others and a `Tell`)."""
    keys = [item.key for item in intents if type(item) is Todo]
    if not keys:
        return [None] * len(intents)
    for key in keys:
        if len(key) > TODO_KEY_MAX:
            raise ValueError(f"a to-do key longer than {TODO_KEY_MAX} characters: {key[:60]}")
    seen = {row[0] for row in await rows_in(conn, _todo_keys_of, sorted(set(keys)))}
    new: list[Todo | None] = []
    for item in intents:
        if type(item) is Todo and item.key not in seen:
            seen.add(item.key)
            new.append(item)
        else:
            new.append(None)
    return new


@lru_cache(maxsize=16)
def _todo_keys_of(size: int) -> Executable:
    return select(todos.c.key).where(in_list(todos.c.key, size))


def _todo_row(item: Todo, now: datetime) -> dict[str, Any]:
    return {
        "assignee_id": item.assignee_id,
        "kind": item.kind,
        "text": item.text,
        "subject_id": item.subject_id,
        "case_id": item.case_id,
        "loan_id": item.loan_id,
        "key": item.key,
        "created_at": now,
    }


def _message(key: str, openid: str, item: Intent, now: datetime) -> dict[str, Any]:
    """The outbox row of one message of an intent to one WeChat user."""
    if isinstance(item, Todo):
        return outbox_row(
            key=key,
            openid=openid,
            kind="todo",
            content=item.text,
            reason=f"to-do {item.kind}",
            now=now,
            facts=todo_facts(item.text),
        )
    text = item.text if isinstance(item.text, str) else item.text()
    return outbox_row(
        key=key,
        openid=openid,
        kind=item.kind,
        content=text,
        reason=item.reason,
        now=now,
        urgent=item.urgent,
        facts=item.facts,
    )


def todo_facts(text: str) -> Facts:
    """A to-do's push as facts: its first sentence is what to do, the next one says more."""
    return sentence_facts("todo", text)


@lru_cache(maxsize=16)
def _queued_of(size: int) -> Executable:
    return select(outbox.c.idempotency_key).where(in_list(outbox.c.idempotency_key, size))


@lru_cache(maxsize=16)
def _count_queued(size: int) -> Executable:
    return select(func.count()).select_from(outbox).where(in_list(outbox.c.idempotency_key, size))


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
