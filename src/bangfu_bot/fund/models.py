"""Fund movements. Balance and available-to-lend are derived from them, never stored."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    String,
    Table,
    Text,
)

from bangfu_bot.db import Id, UtcDateTime, metadata

fund_movements = Table(
    "fund_movements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "kind",
        String(16),
        nullable=False,
        index=True,
        comment="contribution | relief | loan_out | principal_in | interest_in | write_off",
    ),
    Column("amount_fen", BigInteger, nullable=False, comment="always positive; kind gives sign"),
    Column(
        "source",
        String(24),
        nullable=True,
        comment="for contributions: county_finance | committee | party_dues | donation | "
        "welfare_fund",
    ),
    Column("document", String(100), nullable=False, comment="source document (receipt, file no.)"),
    Column("occurred_on", Date, nullable=False, comment="the date on the document"),
    Column("loan_id", Id, nullable=True, index=True),
    Column("visit_id", Id, nullable=True, index=True),
    Column("recorded_by", Id, ForeignKey("people.id"), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("note", Text, nullable=True),
    CheckConstraint("amount_fen > 0", name="positive_amount"),
    comment="Every movement of the fund, with its source document",
)
