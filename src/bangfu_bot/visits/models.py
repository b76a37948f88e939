"""Visit campaigns, the households on their lists, and the notices each official got once."""

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

from bangfu_bot.db import UtcDateTime, metadata

Id = BigInteger().with_variant(Integer, "sqlite")

visit_campaigns = Table(
    "visit_campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(120), nullable=False, unique=True,
           comment="one campaign per festival date (or event, household and day)"),
    Column("occasion", String(16), nullable=False,
           comment="spring_festival | july_first | double_ninth | custom | event"),
    Column("name", String(60), nullable=False, comment="e.g. 2027年春节走访慰问"),
    Column("occasion_on", Date, nullable=False, comment="the festival (or the event's) date"),
    Column("deadline", Date, nullable=False, comment="visits to be made by this day"),
    Column("ledger_year", Integer, nullable=False, comment="the ledger year the list is from"),
    Column("cash_fen", BigInteger, nullable=False, comment="standard cash per household, fen"),
    Column("goods", String(100), nullable=True, comment="standard goods per household"),
    Column("reminder_days", JSON, nullable=False,
           comment="days before the deadline to remind assignees, e.g. [14, 7, 3]"),
    Column("late_reports", Boolean, nullable=False,
           comment="whether visits may still be reported after the deadline"),
    Column("event_kind", String(16), nullable=True, comment="for events: 生病住院 | 受灾 | ..."),
    Column("situation", Text, nullable=True, comment="for events: what happened"),
    Column("opened_by", Id, ForeignKey("people.id"), nullable=True,
           comment="department staff or secretary; NULL from the command line"),
    Column("opened_at", UtcDateTime, nullable=False),
    comment="Consolation-visit campaigns (走访慰问), festival rounds and event visits",
)

visits = Table(
    "visits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("visit_campaigns.id"), nullable=False, index=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True,
           comment="the member whose household is visited"),
    Column("branch_id", Id, ForeignKey("organisations.id"), nullable=True, index=True,
           comment="the member's branch when listed (progress is counted by it)"),
    Column("source", String(16), nullable=False, comment="ledger | pre_1949 | event"),
    Column("assignee_id", Id, ForeignKey("people.id"), nullable=True, index=True,
           comment="who is to visit; NULL when nobody could be assigned"),
    Column("assigned_as", String(16), nullable=False,
           comment="paired_cadre | secretary | opener | nobody"),
    Column("visited_on", Date, nullable=True, comment="走访日期; NULL until reported"),
    Column("cash_fen", BigInteger, nullable=True, comment="慰问金 given, fen"),
    Column("goods", String(100), nullable=True, comment="慰问品 given"),
    Column("note", Text, nullable=True),
    Column("photos", JSON, nullable=True, comment="WeChat media ids"),
    Column("reported_by", Id, ForeignKey("people.id"), nullable=True),
    Column("reported_at", UtcDateTime, nullable=True),
    Column("fund_movement_id", Id, ForeignKey("fund_movements.id"), nullable=True,
           comment="the relief movement that paid the cash"),
    UniqueConstraint("campaign_id", "person_id", name="uq_visits_campaign_household"),
    comment="One household on a campaign's list, and its visit once reported",
)

visit_sends = Table(
    "visit_sends",
    metadata,
    Column("campaign_id", Id, ForeignKey("visit_campaigns.id"), primary_key=True),
    Column("person_id", Id, ForeignKey("people.id"), primary_key=True,
           comment="the official told"),
    Column("what", String(24), primary_key=True,
           comment="list | remind:<days> | watch (the township's not-visited list)"),
    Column("todo_id", Id, ForeignKey("todos.id"), nullable=True),
    Column("sent_at", UtcDateTime, nullable=False),
    comment="What each official was sent about a campaign, so each is sent once",
)
