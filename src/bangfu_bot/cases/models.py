"""Cases (applications for help) and their append-only event log."""

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from bangfu_bot.db import UtcDateTime, metadata

Id = BigInteger().with_variant(Integer, "sqlite")

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True,
           comment="the member the case is about"),
    Column("branch_id", Id, ForeignKey("organisations.id"), nullable=True, index=True),
    Column("kind", String(16), nullable=False, comment="hardship (困难帮扶)"),
    Column("status", String(24), nullable=False, index=True, comment="see cases.enums"),
    Column("category", String(40), nullable=False, comment="困难类别"),
    Column("help_wanted", String(100), nullable=False, comment="想要的帮扶"),
    Column("household_size", Integer, nullable=False),
    Column("household_income_fen", BigInteger, nullable=False, comment="家庭年收入, fen"),
    Column("looks_above_line", Boolean, nullable=False,
           comment="income above the eligibility line (the branch decides)"),
    Column("answers", JSON, nullable=False, comment="everything the application collected"),
    Column("filed_by", Id, ForeignKey("people.id"), nullable=False,
           comment="the member, or the secretary filing on their behalf (代办)"),
    Column("consent_recorded", Boolean, nullable=False,
           comment="for 代办: the member's consent was recorded"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Applications for help and where each stands",
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("actor_id", Id, ForeignKey("people.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("channel", String(16), nullable=False, comment="chat | cli | import | web"),
    Column("at", UtcDateTime, nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    comment="Append-only audit of every case transition",
)
