"""Broadcasts, who each reached by which channel, and training sign-ups (报名)."""

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("author_id", Id, ForeignKey("people.id"), nullable=True),
    Column("text", Text, nullable=False),
    Column(
        "audience",
        String(120),
        nullable=False,
        comment="everyone | township:名 | branch:名 | role:secretary | category:类别",
    ),
    Column("training", Boolean, nullable=False, comment="members may answer 报名"),
    Column("status", String(16), nullable=False, comment="pending | sending | sent"),
    Column("recipients", Integer, nullable=False),
    Column(
        "mass_msg_ids", Text, nullable=False, comment="msg_id of each mass job, comma-separated"
    ),
    Column("mass_sent", Integer, nullable=False, comment="from MASSSENDJOBFINISH"),
    Column("mass_errors", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column(
        "tag_id",
        Integer,
        nullable=True,
        comment="the WeChat tag its mass send went by; recipients by it have channel 'tag'",
    ),
    Column(
        "planned_at",
        UtcDateTime,
        nullable=True,
        comment="when tag or openid lists were chosen; a send taken up after a crash keeps it",
    ),
    Column(
        "not_before",
        UtcDateTime,
        nullable=True,
        comment="a notice refused for the day's mass quota (45028) waits until then",
    ),
    Column(
        "channel",
        String(8),
        nullable=False,
        server_default="chat",
        comment="where it was sent from: chat | web | cli (as in the cases' audit)",
    ),
    comment="Notices (通知) the department sent",
)

broadcast_recipients = Table(
    "broadcast_recipients",
    metadata,
    Column("broadcast_id", Id, ForeignKey("broadcasts.id"), primary_key=True),
    Column("openid", String(64), primary_key=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False),
    Column(
        "channel",
        String(16),
        nullable=False,
        comment="mass (by openid list) | tag (by our WeChat tag) | outbox (customer-service,"
        " template...); mass and tag count toward 4 a month",
    ),
    Column("month", String(7), nullable=False, index=True, comment="YYYY-MM, local"),
    comment="Who each broadcast went to, and how",
)

signups = Table(
    "signups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("broadcast_id", Id, ForeignKey("broadcasts.id"), nullable=False),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("broadcast_id", "person_id", name="uq_signups_broadcast_person"),
    comment="报名: members who signed up for a training session",
)
