"""One ledger entry per member per year; exits are recorded, never deleted."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("year", Integer, nullable=False),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=True,
           comment="the filed case that opened this year's entry"),
    Column("category", String(40), nullable=False, comment="困难类别"),
    Column("causes", Text, nullable=False, comment="致困原因"),
    Column("household", JSON, nullable=False, comment="家庭成员"),
    Column("household_size", Integer, nullable=False),
    Column("annual_income_fen", BigInteger, nullable=False, comment="家庭年收入, fen"),
    Column("situation", Text, nullable=False, comment="生产生活情况"),
    Column("paired_cadre", String(40), nullable=True, comment="结对帮扶干部"),
    Column("assistance", JSON, nullable=False, comment="帮扶情况: a list of what was given"),
    Column("status", String(16), nullable=False, comment="active | exited"),
    Column("exit_reason", String(100), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("exited_at", UtcDateTime, nullable=True),
    Column("review_opened_at", UtcDateTime, nullable=True,
           comment="when the yearly review to-do went to the secretary"),
    Column("reviewed_at", UtcDateTime, nullable=True),
    UniqueConstraint("person_id", "year", name="uq_ledger_entries_person_year"),
    comment="困难党员台帐: one entry per member per year",
)
