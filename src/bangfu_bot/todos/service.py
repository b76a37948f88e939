"""Reading and finishing to-dos (待办). They are written, and pushed to their assignee, by
`notify.intents` (`Todo`, `write`, `add_todo`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.members.models import people
from bangfu_bot.texts import texts
from bangfu_bot.todos.models import todos


async def open_todos(conn: AsyncConnection, assignee_id: int) -> list[Any]:
    """The assignee's open to-dos, oldest first: by when each arose, not by when its row was
    written (a roster change or the demo writes rows for steps that waited already)."""
    rows = await conn.execute(
        select(todos)
        .where(todos.c.assignee_id == assignee_id, todos.c.done_at.is_(None))
        .order_by(todos.c.created_at, todos.c.id)
    )
    return list(rows)


async def todo_by_id(conn: AsyncConnection, todo_id: int) -> Any:
    """One to-do."""
    return (await conn.execute(select(todos).where(todos.c.id == todo_id))).first()


async def finish_todo(conn: AsyncConnection, todo_id: int, now: datetime) -> None:
    """Mark a to-do done."""
    await conn.execute(
        update(todos).where(todos.c.id == todo_id, todos.c.done_at.is_(None)).values(done_at=now)
    )


async def call_member_text(conn: AsyncConnection, person_id: int | None) -> str:
    """What a secretary needs to reach a member: name and phone (shown, never logged)."""
    row = (
        await conn.execute(select(people.c.name, people.c.phone).where(people.c.id == person_id))
    ).first()
    if row is None:
        return texts("bangfu_bot")["todo_done_already"]
    return texts("bangfu_bot")["call_member"].format(
        name=row.name, phone=row.phone or "（没有登记）"
    )
