"""Organisations (county → 党委 → 支部), people, their roles, and WeChat bindings."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    String,
    Table,
    UniqueConstraint,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

organisations = Table(
    "organisations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, comment="county | committee (党委) | branch (支部)"),
    Column("name", String(100), nullable=False),
    Column("parent_id", Id, ForeignKey("organisations.id"), nullable=True, index=True),
    UniqueConstraint("parent_id", "name", name="uq_organisations_parent_name"),
    comment="The organisation tree: county department, township committees, branches",
)

people = Table(
    "people",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, index=True, comment="姓名"),
    Column("gender", String(4), nullable=True, comment="性别: 男 | 女"),
    Column("birth_date", Date, nullable=True, comment="出生日期"),
    Column("joined_on", Date, nullable=True, comment="入党日期"),
    Column("id_number", String(18), nullable=False, unique=True, comment="身份证号 (never logged)"),
    Column("phone", String(20), nullable=True, comment="手机号 (never logged)"),
    Column("branch_id", Id, ForeignKey("organisations.id"), nullable=True, index=True),
    Column("urban_rural", String(4), nullable=True, comment="城乡: 城镇 | 农村"),
    Column("active", Boolean, nullable=False, default=True, comment="false once left the roster"),
    Column(
        "passed_away_on",
        Date,
        nullable=True,
        comment="去世: set once recorded (outcomes.passings); nothing is sent to them after",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Everyone on the roster: members and the officials who serve them",
)

person_roles = Table(
    "person_roles",
    metadata,
    Column("person_id", Id, ForeignKey("people.id"), primary_key=True),
    Column(
        "role",
        String(16),
        primary_key=True,
        comment="member | secretary | committee | department | supervisor",
    ),
    comment="Roles a person holds (a secretary is usually also a member)",
)

bindings = Table(
    "bindings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("openid", String(64), nullable=False, index=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("channel", String(16), nullable=False, comment="chat | qrcode"),
    Column("bound_at", UtcDateTime, nullable=False),
    Column("unbound_at", UtcDateTime, nullable=True, comment="set by 解绑; rows are never deleted"),
    comment="Which WeChat user is which person; the active row has no unbound_at",
)

binding_attempts = Table(
    "binding_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("openid", String(64), nullable=False, index=True),
    Column(
        "name",
        String(40),
        nullable=True,
        index=True,
        comment="the name tried; empty when the try was refused by that name's lock",
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    comment="Every binding try; five failures in an hour lock binding for that openid, "
    "and five against one name lock that name",
)

binding_tickets = Table(
    "binding_tickets",
    metadata,
    Column("scene", String(64), primary_key=True, comment="the QR code's scene string"),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    comment="Parametric QR codes issued per person; scanning one binds",
)
