"""The to-do list of each official."""

from sqlalchemy import Column, ForeignKey, String, Table, Text

from bangfu_bot.db import Id, UtcDateTime, metadata

todos = Table(
    "todos",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("assignee_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False, comment="call_member | evaluate | ..."),
    Column(
        "subject_id", Id, ForeignKey("people.id"), nullable=True, comment="the member it is about"
    ),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=True),
    Column("text", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime, nullable=True),
    Column(
        "key",
        String(200),
        nullable=False,
        unique=True,
        index=True,
        comment="names the one to-do: the event that calls for it and whom it is for; "
        "a second write of it is ignored (legacy:<id> before 0013)",
    ),
    comment="To-dos (待办), oldest first",
)
