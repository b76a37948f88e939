"""Cases (applications for help) and their append-only event log."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

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
    Column("return_to", String(24), nullable=True,
           comment="when returned: the status the committee sends it back to"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Applications for help and where each stands",
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("actor_id", Id, ForeignKey("people.id"), nullable=True,
           comment="NULL when the system moved it (e.g. a notice period ended)"),
    Column("role", String(16), nullable=False, comment="member | secretary | ... | system"),
    Column("channel", String(16), nullable=False, comment="chat | cli | import | web"),
    Column("at", UtcDateTime, nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    comment="Append-only audit of every case transition",
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("meeting_date", Date, nullable=False, comment="评议会日期"),
    Column("entitled", Integer, nullable=False, comment="应到党员"),
    Column("present", Integer, nullable=False, comment="实到党员"),
    Column("supervisors", Text, nullable=False, comment="监督人员"),
    Column("counter", String(40), nullable=False, comment="计票人"),
    Column("scrutineer", String(40), nullable=False, comment="监票人"),
    Column("votes_for", Integer, nullable=False),
    Column("votes_against", Integer, nullable=False),
    Column("abstain", Integer, nullable=False),
    Column("minutes", Text, nullable=False, comment="简要记录"),
    Column("photo_media_id", String(200), nullable=True),
    Column("passed", Boolean, nullable=False),
    Column("rule", String(40), nullable=False, comment="the pass rule applied"),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    comment="Democratic evaluations (支部民主评议) of cases",
)

public_notices = Table(
    "public_notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, unique=True),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False, comment="last day of the notice, inclusive"),
    Column("place", String(100), nullable=False),
    Column("text", Text, nullable=False, comment="the printable notice"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    comment="Public notices (公示) of cases that passed evaluation",
)

objections = Table(
    "objections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("raised_by", Id, ForeignKey("people.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("resolution", Text, nullable=True),
    Column("resolved_by", Id, ForeignKey("people.id"), nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    comment="Objections (异议) raised during a public notice; an open one holds the case",
)
