"""Creating and listing to-dos (待办); each new one is also pushed to its assignee."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.members.models import people
from bangfu_bot.members.service import openids_of
from bangfu_bot.notify.outbox import queue_message
from bangfu_bot.texts import texts
from bangfu_bot.todos.models import todos


async def add_todo(conn: AsyncConnection, *, assignee_id: int, kind: str, text: str,
                   now: datetime, subject_id: int | None = None,
                   case_id: int | None = None, loan_id: int | None = None, key: str) -> int:
    """Create a to-do and push its text to the assignee's WeChat (once per `key`)."""
    result = await conn.execute(insert(todos).values(
        assignee_id=assignee_id, kind=kind, text=text, subject_id=subject_id, case_id=case_id,
        loan_id=loan_id, created_at=now))
    todo_id = int(result.inserted_primary_key[0])
    for openid in await openids_of(conn, assignee_id):
        await queue_message(conn, key=f"todo:{key}:{openid}", openid=openid, kind="todo",
                            content=text, reason=f"to-do {kind}", now=now, urgent=False)
    return todo_id


async def open_todos(conn: AsyncConnection, assignee_id: int) -> list[Any]:
    """The assignee's open to-dos, oldest first."""
    rows = await conn.execute(select(todos).where(
        todos.c.assignee_id == assignee_id, todos.c.done_at.is_(None)).order_by(todos.c.id))
    return list(rows)


async def todo_by_id(conn: AsyncConnection, todo_id: int) -> Any:
    """One to-do."""
    return (await conn.execute(select(todos).where(todos.c.id == todo_id))).first()


async def finish_todo(conn: AsyncConnection, todo_id: int, now: datetime) -> None:
    """Mark a to-do done."""
    await conn.execute(update(todos).where(todos.c.id == todo_id, todos.c.done_at.is_(None))
                       .values(done_at=now))


async def call_member_text(conn: AsyncConnection, person_id: int | None) -> str:
    """What a secretary needs to reach a member: name and phone (shown, never logged)."""
    row = (await conn.execute(select(people.c.name, people.c.phone)
                              .where(people.c.id == person_id))).first()
    if row is None:
        return texts("bangfu_bot")["todo_done_already"]
    return texts("bangfu_bot")["call_member"].format(name=row.name, phone=row.phone or "（没有登记）")
