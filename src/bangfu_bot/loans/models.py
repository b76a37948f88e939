"""Loans, their schedules, repayments and audit trail. Money is integer fen."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

loans = Table(
    "loans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("branch_id", Id, ForeignKey("organisations.id"), nullable=True),
    Column("status", String(24), nullable=False, index=True, comment="see loans.enums"),
    Column("amount_fen", BigInteger, nullable=False),
    Column("project", String(40), nullable=False, comment="项目: 生猪养殖, 烤烟, ..."),
    Column("earnings", Text, nullable=False, comment="what the project will earn"),
    Column(
        "schedule_kind", String(16), nullable=False, comment="bullet | yearly | equal_principal"
    ),
    Column("term_years", Integer, nullable=False),
    Column("annual_rate_bp", Integer, nullable=False, comment="interest, basis points a year"),
    Column("inspected_on", Date, nullable=True, comment="组织部实地考核"),
    Column("inspector", String(40), nullable=True),
    Column("inspection_finding", Text, nullable=True),
    Column("guarantor", String(60), nullable=True, comment="乡镇财政担保"),
    Column("guarantee_document", String(60), nullable=True),
    Column("disbursed_on", Date, nullable=True),
    Column("disbursement_document", String(60), nullable=True),
    Column(
        "recorded_by",
        Id,
        ForeignKey("people.id"),
        nullable=True,
        comment="the staff member who recorded the disbursement",
    ),
    Column(
        "confirmed_by",
        Id,
        ForeignKey("people.id"),
        nullable=True,
        comment="a different staff member who confirmed it",
    ),
    Column("write_off_reason", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # What the reminder scan keeps (migration 0009 holds the triggers that keep it honest).
    Column(
        "covered_through",
        Date,
        nullable=True,
        comment="due date of the first instalment not covered by all repaid; 9999-12-31 "
        "when all are; NULL until the reminder scan works it out",
    ),
    Column(
        "inputs_version",
        Integer,
        nullable=False,
        server_default="0",
        comment="bumped by triggers when anything this loan's reminders depend on changes",
    ),
    Column(
        "reminded_on",
        Date,
        nullable=True,
        comment="the day the reminder scan last queued everything due for this loan",
    ),
    Column(
        "reminded_version", Integer, nullable=True, comment="inputs_version as that scan read it"
    ),
    Column(
        "reminded_count",
        Integer,
        nullable=True,
        comment="reminders due that day, guarantor calls left out (they are made once)",
    ),
    comment="Loans from the revolving fund",
)
Index("ix_loans_coverage", loans.c.status, loans.c.covered_through)

instalments = Table(
    "instalments",
    metadata,
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("due_on", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    comment="The repayment schedule; unpaid future instalments are regenerated after an "
    "early repayment",
)
# Covers the daily reminder scan's pass over what is due by when, without the table's rows.
Index(
    "ix_instalments_scan",
    instalments.c.loan_id,
    instalments.c.due_on,
    instalments.c.principal_fen,
    instalments.c.interest_fen,
)

repayments = Table(
    "repayments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False, comment="part applied to interest"),
    Column("principal_fen", BigInteger, nullable=False, comment="part applied to principal"),
    Column("paid_on", Date, nullable=False),
    Column("receipt", String(60), nullable=False),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("loan_id", "receipt", name="uq_repayments_loan_receipt"),
    comment="Repayments received (还款)",
)

loan_events = Table(
    "loan_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False, index=True),
    Column("actor_id", Id, ForeignKey("people.id"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    comment="Append-only audit of every loan transition",
)

reminder_inputs = Table(
    "reminder_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column(
        "version",
        Integer,
        nullable=False,
        comment="bumped by triggers when what every loan's reminders depend on changes",
    ),
    Column("scanned_on", Date, nullable=True, comment="the day of the last complete reminder scan"),
    Column(
        "scanned_version",
        Integer,
        nullable=True,
        comment="version as that scan read it at its start",
    ),
    comment="One row: what the reminder scan needs to know to skip loans done today",
)
