"""Recording fund movements and deriving the fund's figures from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import COUNTY_MATTER, Actor, Refused, check
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.fund.enums import Movement
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.fund")


SOURCES = ("county_finance", "committee", "party_dues", "donation", "welfare_fund")


class FundError(Refused):
    """A movement the fund cannot take; `message` is Chinese for the person recording it."""


async def contribute(
    conn: AsyncConnection,
    *,
    actor: Actor | None,
    amount_fen: int,
    source: str,
    document: str,
    occurred_on: date,
    now: datetime,
) -> int:
    """Money into the fund (筹资): the department, or the command line as the system."""
    check(FundError, "fund.contribute", actor, "department" if actor else "system", COUNTY_MATTER)
    return await record(
        conn,
        kind=Movement.CONTRIBUTION,
        amount_fen=amount_fen,
        source=source,
        document=document,
        occurred_on=occurred_on,
        now=now,
        recorded_by=actor.id if actor else None,
    )


async def record(
    conn: AsyncConnection,
    *,
    kind: Movement,
    amount_fen: int,
    document: str,
    occurred_on: date,
    now: datetime,
    recorded_by: int | None = None,
    source: str | None = None,
    loan_id: int | None = None,
    visit_id: int | None = None,
    note: str | None = None,
) -> int:
    """Write one movement; cash going out must be covered by cash on hand."""
    if amount_fen <= 0:
        raise FundError(say("refused_amount"))
    if kind == Movement.CONTRIBUTION and source not in SOURCES:
        raise FundError(say("refused_source"))
    if not document.strip():
        raise FundError(say("refused_document"))
    if kind in (Movement.RELIEF, Movement.LOAN_OUT):
        figures = await figures_now(conn)
        if amount_fen > figures.cash_fen:
            raise FundError(say("refused_cash", cash=f"{figures.cash_fen / 100:.2f}"))
    result = await conn.execute(
        insert(fund_movements).values(
            kind=kind,
            amount_fen=amount_fen,
            source=source,
            document=document.strip(),
            occurred_on=occurred_on,
            loan_id=loan_id,
            visit_id=visit_id,
            recorded_by=recorded_by,
            recorded_at=now,
            note=note,
        )
    )
    return inserted_id(result)


@dataclass(frozen=True)
class Figures:
    """The fund's figures, derived from its movements."""

    contributions_fen: int
    relief_fen: int
    loans_out_fen: int
    principal_in_fen: int
    interest_in_fen: int
    written_off_fen: int

    @property
    def cash_fen(self) -> int:
        """Cash on hand: sources − relief − loans out + repayments + interest."""
        return (
            self.contributions_fen
            - self.relief_fen
            - self.loans_out_fen
            + self.principal_in_fen
            + self.interest_in_fen
        )

    @property
    def outstanding_fen(self) -> int:
        """Principal still lent out (written-off principal no longer counts)."""
        return self.loans_out_fen - self.principal_in_fen - self.written_off_fen


async def figures_now(conn: AsyncConnection, *, until: date | None = None) -> Figures:
    """Sum the movements by kind (up to a date, inclusive, when given)."""
    query = select(fund_movements.c.kind, func.sum(fund_movements.c.amount_fen)).group_by(
        fund_movements.c.kind
    )
    if until is not None:
        query = query.where(fund_movements.c.occurred_on <= until)
    sums = {kind: int(total or 0) for kind, total in await conn.execute(query)}
    return Figures(
        contributions_fen=sums.get("contribution", 0),
        relief_fen=sums.get("relief", 0),
        loans_out_fen=sums.get("loan_out", 0),
        principal_in_fen=sums.get("principal_in", 0),
        interest_in_fen=sums.get("interest_in", 0),
        written_off_fen=sums.get("write_off", 0),
    )


SOURCE_NAMES = {source: say(f"source_{source}") for source in SOURCES}
