"""The loan procedure: apply → committee approves → department inspects on site →
township finance guarantees → disbursement recorded by one staff member and confirmed by
another → repayments → repaid, or arrears → guarantor called → write-off with a committee
officer's approval. Every step is an audited transition; every yuan is a fund movement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.conversation.engine import yuan
from bangfu_bot.fund.service import FundError, Movement, record
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.schedule import Instalment, build
from bangfu_bot.members.models import people
from bangfu_bot.members.service import Person
from bangfu_bot.texts import speaker
from bangfu_bot.todos.models import todos


class LoanStatus(StrEnum):
    """Where a loan stands."""

    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    INSPECTED = "inspected"
    GUARANTEED = "guaranteed"
    RECORDED = "recorded"
    DISBURSED = "disbursed"
    REPAID = "repaid"
    WRITTEN_OFF = "written_off"


L = LoanStatus
# The one transition table of a loan: (from, to) → who may make the move.
TRANSITIONS: dict[tuple[L, L], frozenset[str]] = {
    (L.APPLIED, L.APPROVED): frozenset({"committee"}),
    (L.APPLIED, L.REJECTED): frozenset({"committee"}),
    (L.APPROVED, L.INSPECTED): frozenset({"department"}),
    (L.APPROVED, L.REJECTED): frozenset({"department"}),
    (L.INSPECTED, L.GUARANTEED): frozenset({"department"}),
    (L.GUARANTEED, L.RECORDED): frozenset({"department"}),
    (L.RECORDED, L.DISBURSED): frozenset({"department"}),
    (L.DISBURSED, L.REPAID): frozenset({"system"}),
    (L.DISBURSED, L.WRITTEN_OFF): frozenset({"committee"}),
}
OPEN = (L.APPLIED, L.APPROVED, L.INSPECTED, L.GUARANTEED, L.RECORDED, L.DISBURSED)


class LoanRefused(Exception):
    """A step that may not happen; `message` is Chinese for the person trying it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


say = speaker("bangfu_bot.loans")


@dataclass(frozen=True)
class Terms:
    """Loan settings (defaults from DOMAIN.md: 3,000–5,000 yuan, two years)."""

    term_years: int = 2
    annual_rate_bp: int = 435
    allow_second_loan: bool = False
    guarantor_call_days: int = 30


async def transition(conn: AsyncConnection, *, loan_id: int, target: L, actor: Person | None,
                     role: str, channel: str, now: datetime, reason: str | None = None,
                     **changes: Any) -> Any:
    """Apply one move of the table, audited; refuse anything else (nothing written)."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).first()
    if loan is None:
        raise LoanRefused("没有找到这笔借款。")
    roles = TRANSITIONS.get((L(loan.status), target))
    if roles is None:
        raise LoanRefused(f"这笔借款现在是「{say('status_' + loan.status)}」，不能这样办。")
    if role not in roles or (actor is not None and not actor.has(role)):
        raise LoanRefused("这一步不归您办。")
    if actor is not None and actor.id == loan.person_id:
        raise LoanRefused("自己的借款不能自己办，请由其他同志办理。")
    moved = await conn.execute(update(loans).where(loans.c.id == loan_id,
                                                   loans.c.status == loan.status)
                               .values(status=target, updated_at=now, **changes))
    if moved.rowcount != 1:
        raise LoanRefused("这笔借款刚被别人办过了。")
    # The step is done: its to-dos (for every staff member who got one) close with it.
    await conn.execute(update(todos).where(todos.c.loan_id == loan_id, todos.c.done_at.is_(None))
                       .values(done_at=now))
    await conn.execute(insert(loan_events).values(
        loan_id=loan_id, actor_id=actor.id if actor else None, role=role, channel=channel,
        at=now, from_status=loan.status, to_status=target, reason=reason))
    return (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()


async def apply(conn: AsyncConnection, *, member: Person, amount_fen: int, project: str,
                earnings: str, schedule_kind: str, terms: Terms, now: datetime) -> int:
    """A member applies (党员申报); one open loan at a time unless configured."""
    if not terms.allow_second_loan:
        existing = (await conn.execute(select(loans.c.id).where(
            loans.c.person_id == member.id, loans.c.status.in_(OPEN)))).scalar()
        if existing is not None:
            raise LoanRefused(say("outstanding_exists", id=existing))
    result = await conn.execute(insert(loans).values(
        person_id=member.id, branch_id=member.branch_id, status=L.APPLIED, amount_fen=amount_fen,
        project=project, earnings=earnings, schedule_kind=schedule_kind,
        term_years=terms.term_years, annual_rate_bp=terms.annual_rate_bp, created_at=now,
        updated_at=now))
    loan_id = int(result.inserted_primary_key[0])
    await conn.execute(insert(loan_events).values(
        loan_id=loan_id, actor_id=member.id, role="member", channel="chat", at=now,
        from_status=None, to_status=L.APPLIED))
    return loan_id


async def confirm_disbursement(conn: AsyncConnection, *, loan_id: int, staff: Person,
                               now: datetime) -> list[Instalment]:
    """A second staff member confirms: the fund pays out and the schedule is fixed."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    if loan.recorded_by == staff.id:
        raise LoanRefused(say("same_person"))
    try:
        await record(conn, kind=Movement.LOAN_OUT, amount_fen=loan.amount_fen,
                     document=loan.disbursement_document or f"借款{loan_id}",
                     occurred_on=loan.disbursed_on, now=now, recorded_by=staff.id,
                     loan_id=loan_id)
    except FundError as error:
        raise LoanRefused(error.message) from None
    await transition(conn, loan_id=loan_id, target=L.DISBURSED, actor=staff, role="department",
                     channel="chat", now=now, confirmed_by=staff.id)
    schedule = build(kind=loan.schedule_kind, principal_fen=loan.amount_fen,
                     start=loan.disbursed_on, term_years=loan.term_years,
                     rate_bp=loan.annual_rate_bp)
    for item in schedule:
        await conn.execute(insert(instalments).values(
            loan_id=loan_id, number=item.number, due_on=item.due_on,
            principal_fen=item.principal_fen, interest_fen=item.interest_fen))
    return schedule


@dataclass(frozen=True)
class Position:
    """What a borrower owes on a date."""

    interest_due_fen: int
    principal_outstanding_fen: int
    overdue_fen: int
    days_overdue: int
    oldest_unpaid: Any

    @property
    def owed_now_fen(self) -> int:
        """The most a repayment on that date may be."""
        return self.interest_due_fen + self.principal_outstanding_fen


# The instalment columns `Ledger` reads, first in every row of a plan (more may follow), and
# where each is. Rows are read by position, not by attribute: the daily scan walks a hundred
# thousand of them, and a row's attributes are many times slower than its positions.
PLAN_COLUMNS = (instalments.c.loan_id, instalments.c.number, instalments.c.due_on,
                instalments.c.principal_fen, instalments.c.interest_fen)
NUMBER, DUE_ON, PRINCIPAL, INTEREST = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Ledger:
    """What `position` reads of one loan, already loaded: the amount and status, the plan
    (rows starting with PLAN_COLUMNS, ordered by number) and the sums repaid. The one place
    the arithmetic lives, so the single-loan `position` and the bulk reminder scan cannot
    drift apart.

    `until`: the plan holds only instalments due by then (None: the whole plan), which is
    enough for any date up to it, since only instalments due by a date count on that date."""

    amount_fen: int
    status: str
    plan: Sequence[Any]
    interest_paid_fen: int
    principal_paid_fen: int
    until: date | None = None

    def on(self, day: date) -> Position:
        """Interest due (instalments due by `day`), principal outstanding, and arrears."""
        if self.until is not None and day > self.until:
            raise ValueError(f"plan loaded up to {self.until}, asked about {day}")
        covered = self.interest_paid_fen + self.principal_paid_fen
        # One walk of the schedule in order: what fell due by `day`, and the first
        # instalment not covered by all that was paid.
        interest_due, cumulative, oldest = 0, 0, None
        for item in self.plan:
            if item[DUE_ON] <= day:
                interest_due += item[INTEREST]
                cumulative += item[PRINCIPAL] + item[INTEREST]
                if oldest is None and cumulative > covered:
                    oldest = item
        outstanding = self.amount_fen - self.principal_paid_fen
        overdue = max(cumulative - covered, 0)
        if self.status == L.WRITTEN_OFF:
            outstanding, overdue, oldest = 0, 0, None
        days = (day - oldest[DUE_ON]).days if oldest is not None else 0
        return Position(max(interest_due - self.interest_paid_fen, 0), outstanding, overdue,
                        days, oldest)


async def position(conn: AsyncConnection, loan_id: int, on: date) -> Position:
    """Interest due (instalments due by `on`), principal outstanding, and arrears."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    plan = (await conn.execute(select(*PLAN_COLUMNS).where(instalments.c.loan_id == loan_id)
                               .order_by(instalments.c.number))).all()
    paid = (await conn.execute(select(func.coalesce(func.sum(repayments.c.interest_fen), 0),
                                      func.coalesce(func.sum(repayments.c.principal_fen), 0))
                               .where(repayments.c.loan_id == loan_id))).one()
    return Ledger(loan.amount_fen, loan.status, plan, int(paid[0]), int(paid[1])).on(on)


async def repay(conn: AsyncConnection, *, loan_id: int, staff: Person | None, amount_fen: int,
                paid_on: date, receipt: str, now: datetime, channel: str = "chat") -> str:
    """Record a repayment: interest due first, then principal; never more than owed."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).first()
    if loan is None or loan.status != L.DISBURSED:
        raise LoanRefused("这笔借款现在不收还款。")
    if paid_on < loan.disbursed_on:
        raise LoanRefused(say("dated_before_disbursement", day=loan.disbursed_on.isoformat()))
    if amount_fen <= 0:
        raise LoanRefused("还款金额要大于 0。")
    now_position = await position(conn, loan_id, paid_on)
    if amount_fen > now_position.owed_now_fen:
        raise LoanRefused(say("overpayment", owed=yuan(now_position.owed_now_fen),
                              interest=yuan(now_position.interest_due_fen),
                              principal=yuan(now_position.principal_outstanding_fen)))
    to_interest = min(amount_fen, now_position.interest_due_fen)
    to_principal = amount_fen - to_interest
    duplicate = (await conn.execute(select(repayments.c.id).where(
        repayments.c.loan_id == loan_id, repayments.c.receipt == receipt))).first()
    if duplicate is not None:
        raise LoanRefused("这张收据已经登记过了。")
    await conn.execute(insert(repayments).values(
        loan_id=loan_id, amount_fen=amount_fen, interest_fen=to_interest,
        principal_fen=to_principal, paid_on=paid_on, receipt=receipt,
        recorded_by=staff.id if staff else None, recorded_at=now))
    recorder = staff.id if staff else None
    if to_interest:
        await record(conn, kind=Movement.INTEREST_IN, amount_fen=to_interest, document=receipt,
                     occurred_on=paid_on, now=now, recorded_by=recorder, loan_id=loan_id)
    if to_principal:
        await record(conn, kind=Movement.PRINCIPAL_IN, amount_fen=to_principal, document=receipt,
                     occurred_on=paid_on, now=now, recorded_by=recorder, loan_id=loan_id)
    left = now_position.principal_outstanding_fen - to_principal
    if left == 0:
        await transition(conn, loan_id=loan_id, target=L.REPAID, actor=None, role="system",
                         channel="system", now=now, reason=f"还清，收据 {receipt}")
        return say("repaid_all", amount=yuan(amount_fen))
    return say("repaid_part", amount=yuan(amount_fen), interest=yuan(to_interest),
               principal=yuan(to_principal), left=yuan(left))


async def write_off(conn: AsyncConnection, *, loan_id: int, officer: Person, reason: str,
                    on: date, now: datetime) -> str:
    """核销: only a committee officer, only with a reason; the fund records the loss."""
    if not reason.strip():
        raise LoanRefused("核销要写明理由。")
    owed = await position(conn, loan_id, on)
    loan = await transition(conn, loan_id=loan_id, target=L.WRITTEN_OFF, actor=officer,
                            role="committee", channel="chat", now=now, reason=reason,
                            write_off_reason=reason)
    if owed.principal_outstanding_fen:
        await record(conn, kind=Movement.WRITE_OFF, amount_fen=owed.principal_outstanding_fen,
                     document=f"核销借款{loan_id}", occurred_on=on, now=now,
                     recorded_by=officer.id, loan_id=loan_id, note=reason)
    name = (await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
            ).scalar_one()
    return say("written_off", name=name, amount=yuan(owed.principal_outstanding_fen))


async def loans_outstanding_fen(conn: AsyncConnection) -> int:
    """Principal still owed, summed loan by loan (the fund's figure must equal this)."""
    total = 0
    rows = (await conn.execute(select(loans.c.id, loans.c.amount_fen, loans.c.status)
                               .where(loans.c.status.in_([L.DISBURSED, L.REPAID])))).all()
    for row in rows:
        paid = (await conn.execute(select(func.coalesce(func.sum(repayments.c.principal_fen), 0))
                                   .where(repayments.c.loan_id == row.id))).scalar_one()
        total += row.amount_fen - int(paid)
    return total


async def decide(conn: AsyncConnection, *, loan_id: int, officer: Person, approve: bool,
                 reason: str | None, now: datetime) -> Any:
    """党委批准 or not."""
    return await transition(conn, loan_id=loan_id, target=L.APPROVED if approve else L.REJECTED,
                            actor=officer, role="committee", channel="chat", now=now,
                            reason=reason)


async def inspect(conn: AsyncConnection, *, loan_id: int, staff: Person, on: date,
                  inspector: str, finding: str, passed: bool, now: datetime) -> Any:
    """组织部实地考核 recorded."""
    return await transition(conn, loan_id=loan_id, target=L.INSPECTED if passed else L.REJECTED,
                            actor=staff, role="department", channel="chat", now=now,
                            reason=finding, inspected_on=on, inspector=inspector,
                            inspection_finding=finding)


async def guarantee(conn: AsyncConnection, *, loan_id: int, staff: Person, guarantor: str,
                    document: str, now: datetime) -> Any:
    """乡镇政府财政担保 recorded."""
    return await transition(conn, loan_id=loan_id, target=L.GUARANTEED, actor=staff,
                            role="department", channel="chat", now=now, guarantor=guarantor,
                            guarantee_document=document)


async def record_disbursement(conn: AsyncConnection, *, loan_id: int, staff: Person, on: date,
                              document: str, now: datetime) -> Any:
    """One staff member records the disbursement; another must confirm it."""
    return await transition(conn, loan_id=loan_id, target=L.RECORDED, actor=staff,
                            role="department", channel="chat", now=now, disbursed_on=on,
                            disbursement_document=document, recorded_by=staff.id)
