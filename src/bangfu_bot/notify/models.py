"""The outbox: domain code writes a row; the dispatcher sends it and records each attempt."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "idempotency_key",
        String(200),
        nullable=False,
        unique=True,
        comment="one row per intent; a second write of the same intent is ignored",
    ),
    Column("openid", String(64), nullable=False, index=True, comment="recipient"),
    Column("kind", String(32), nullable=False, comment="late_reply, reminder, notice, ..."),
    Column("content", Text, nullable=False, comment="the text to send"),
    Column("reason", String(200), nullable=False, comment="why this is sent, for operators"),
    Column(
        "facts",
        JSON,
        nullable=True,
        comment="what the notice is about, for its kind's template: notice, what, amount "
        "(fen), due, phrase, detail, name",
    ),
    Column("urgent", Boolean, nullable=False, default=False),
    Column(
        "status",
        String(16),
        nullable=False,
        index=True,
        comment="pending | sending | sent | delivered | escalated | undeliverable | unknown "
        "| failed",
    ),
    Column(
        "channel",
        String(16),
        nullable=True,
        comment="custom | template | escalated: the call under way, then how it went; "
        "escalated on an unknown row: a secretary was asked to make sure",
    ),
    Column(
        "calling_at",
        UtcDateTime,
        nullable=True,
        comment="committed just before this channel's call starts; NULL on a claimed "
        "row: its call never started",
    ),
    Column(
        "wechat_msgid",
        BigInteger,
        nullable=True,
        index=True,
        comment="a template's msgid, matched by TEMPLATESENDJOBFINISH",
    ),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_errcode", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    comment="Messages to send, written in the transaction that caused them",
)
# The dispatcher's claim walks pending rows urgent first, then oldest: in index order, so a
# broadcast's 100,000 pending rows are not sorted on every claim.
Index("ix_outbox_due", outbox.c.status, outbox.c.urgent.desc(), outbox.c.id)

outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, ForeignKey("outbox.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("channel", String(16), nullable=False, comment="custom | template | mass"),
    Column("errcode", Integer, nullable=False, comment="0 = accepted by WeChat"),
    Column("errmsg", String(200), nullable=False),
    comment="Every attempt to send an outbox row and what WeChat answered",
)

wechat_users = Table(
    "wechat_users",
    metadata,
    Column("openid", String(64), primary_key=True),
    Column("subscribed", Boolean, nullable=False, comment="follows the account now"),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("subscribed_at", UtcDateTime, nullable=True),
    Column("unsubscribed_at", UtcDateTime, nullable=True),
    Column(
        "last_message_at",
        UtcDateTime,
        nullable=True,
        comment="last message the user wrote: opens the 48 h customer-service window",
    ),
    Column(
        "last_event_at",
        UtcDateTime,
        nullable=True,
        comment="last click, follow or scan: opens a 1-minute window",
    ),
    comment="Everyone who has written to or followed the account",
)
