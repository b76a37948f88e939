"""What came of the help: the year's plan, each household's outcome at the yearly review,
each loan project's result, the passing of a member, and attendance at trainings.

Money is integer fen. Rows are never deleted: a plan set again is a new row (the latest of a
year is the plan), an outcome is written once per ledger entry or loan and occasion.
"""

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
    UniqueConstraint,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

year_plans = Table(
    "year_plans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False, index=True),
    Column(
        "raise_fen",
        JSON,
        nullable=False,
        comment="fund-raising target by source (fund.service.SOURCES) → fen",
    ),
    Column("fund_size_fen", BigInteger, nullable=False, comment="基金规模目标, fen"),
    Column("loan_members", Integer, nullable=False, comment="扶贫党员: members to lend to"),
    Column("visit_budget_fen", BigInteger, nullable=False, comment="走访慰问预算, fen"),
    Column("trainings", Integer, nullable=False, comment="技术培训场次"),
    Column("set_by", Id, ForeignKey("people.id"), nullable=True, comment="NULL: command line"),
    Column("channel", String(16), nullable=False, comment="cli | chat"),
    Column("set_at", UtcDateTime, nullable=False),
    comment="年度计划: the department's targets for a year; the latest row of a year stands",
)

household_outcomes = Table(
    "household_outcomes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ledger_entry_id", Id, ForeignKey("ledger_entries.id"), nullable=False, unique=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("year", Integer, nullable=False, index=True, comment="the ledger year reviewed"),
    Column("household_size", Integer, nullable=False),
    Column("income_before_fen", BigInteger, nullable=False, comment="the entry's income"),
    Column("income_after_fen", BigInteger, nullable=False, comment="income since last year"),
    Column(
        "income_by_source",
        JSON,
        nullable=False,
        comment="farming | wages | allowances | pension | other → fen; empty when unchanged",
    ),
    Column("continued", Boolean, nullable=False, comment="继续帮扶 next year"),
    Column("out_of_hardship", Boolean, nullable=False, comment="脱贫"),
    Column(
        "reason",
        String(24),
        nullable=True,
        comment="project_income | work_found | pension | medical_ended | moved | passed_away"
        " | other",
    ),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    comment="What the help achieved for a household, asked at the yearly review",
)

loan_outcomes = Table(
    "loan_outcomes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False, index=True),
    Column("occasion", String(16), nullable=False, comment="repaid | term_end | written_off"),
    Column("horizon", String(8), nullable=False, comment="short (短平快) | long (长期)"),
    Column("expected_fen", BigInteger, nullable=False, comment="what the application expected"),
    Column("earned_fen", BigInteger, nullable=False, comment="what the project earned"),
    Column("note", Text, nullable=True),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("loan_id", "occasion", name="uq_loan_outcomes_loan_occasion"),
    comment="A loan project's follow-up: earned against expected",
)

passings = Table(
    "passings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, unique=True),
    Column("passed_on", Date, nullable=False),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    comment="去世: a member who passed away; nothing is sent to them after",
)

training_attendance = Table(
    "training_attendance",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("broadcast_id", Id, ForeignKey("broadcasts.id"), nullable=False, index=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("signed_in_at", UtcDateTime, nullable=False),
    UniqueConstraint("broadcast_id", "person_id", name="uq_training_attendance"),
    comment="签到: who came to a training session",
)
