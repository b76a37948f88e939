"""The loan procedure: apply → committee approves → department inspects on site →
township finance guarantees → disbursement recorded by one staff member and confirmed by
another → repayments → repaid, or arrears → guarantor called → write-off with a committee
officer's approval. Every step is an audited transition (transitions.py); every yuan is
a fund movement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Subject, check
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.money import yuan
from bangfu_bot.dbutil import in_list, inserted_id, rows_in
from bangfu_bot.fund.service import FundError, Movement, record
from bangfu_bot.loans.enums import OPEN, L
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.schedule import Instalment, build, fen_days, interest_on
from bangfu_bot.loans.transitions import (
    LoanRefused,
    load_loan,
    loan_subject,
    transition,
)
from bangfu_bot.members.models import people
from bangfu_bot.members.service import Person
from bangfu_bot.settings import Settings
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.loans")


@dataclass(frozen=True)
class Terms:
    """Loan settings (defaults from DOMAIN.md: 3,000–5,000 yuan, two years)."""

    term_years: int = 2
    annual_rate_bp: int = 435
    allow_second_loan: bool = False
    guarantor_call_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Terms:
        """The county's loan terms as configured."""
        return cls(
            term_years=settings.loan_term_years,
            annual_rate_bp=settings.loan_rate_bp,
            allow_second_loan=settings.loan_allow_second,
            guarantor_call_days=settings.guarantor_call_days,
        )


async def apply(
    conn: AsyncConnection,
    *,
    member: Person,
    amount_fen: int,
    project: str,
    earnings: str,
    schedule_kind: str,
    terms: Terms,
    now: datetime,
) -> int:
    """A member applies (党员申报); one open loan at a time unless configured."""
    check(
        LoanRefused,
        "loan.apply",
        member,
        "member",
        Subject(person_id=member.id, branch_id=member.branch_id, committee_id=member.committee_id),
    )
    if not terms.allow_second_loan:
        existing = (
            await conn.execute(
                select(loans.c.id).where(loans.c.person_id == member.id, loans.c.status.in_(OPEN))
            )
        ).scalar()
        if existing is not None:
            raise LoanRefused(say("outstanding_exists", id=existing))
    result = await conn.execute(
        insert(loans).values(
            person_id=member.id,
            branch_id=member.branch_id,
            status=L.APPLIED,
            amount_fen=amount_fen,
            project=project,
            earnings=earnings,
            schedule_kind=schedule_kind,
            term_years=terms.term_years,
            annual_rate_bp=terms.annual_rate_bp,
            created_at=now,
            updated_at=now,
        )
    )
    loan_id = inserted_id(result)
    await conn.execute(
        insert(loan_events).values(
            loan_id=loan_id,
            actor_id=member.id,
            role="member",
            channel="chat",
            at=now,
            from_status=None,
            to_status=L.APPLIED,
        )
    )
    return loan_id


async def confirm_disbursement(
    conn: AsyncConnection,
    *,
    loan_id: int,
    staff: Person,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> list[Instalment]:
    """A second staff member confirms: the fund pays out and the schedule is fixed."""
    # The move first, the money after: a refused or raced confirmation must not pay out.
    loan = await transition(
        conn,
        loan_id=loan_id,
        target=L.DISBURSED,
        actor=staff,
        role="department",
        channel=channel,
        now=now,
        expected=expected,
        confirmed_by=staff.id,
    )
    try:
        await record(
            conn,
            kind=Movement.LOAN_OUT,
            amount_fen=loan.amount_fen,
            document=loan.disbursement_document or say("document_loan", id=loan_id),
            occurred_on=loan.disbursed_on,
            now=now,
            recorded_by=staff.id,
            loan_id=loan_id,
        )
    except FundError as error:
        raise LoanRefused(error.message) from None
    schedule = build(
        kind=loan.schedule_kind,
        principal_fen=loan.amount_fen,
        start=loan.disbursed_on,
        term_years=loan.term_years,
        rate_bp=loan.annual_rate_bp,
    )
    for item in schedule:
        await conn.execute(
            insert(instalments).values(
                loan_id=loan_id,
                number=item.number,
                due_on=item.due_on,
                principal_fen=item.principal_fen,
                interest_fen=item.interest_fen,
            )
        )
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
PLAN_COLUMNS = (
    instalments.c.loan_id,
    instalments.c.number,
    instalments.c.due_on,
    instalments.c.principal_fen,
    instalments.c.interest_fen,
)
NUMBER, DUE_ON, PRINCIPAL, INTEREST = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Ledger:
    """What `position` reads of one loan, already loaded: the amount, status, disbursement
    day and rate, the plan (rows starting with PLAN_COLUMNS, ordered by number), the sums
    repaid and the principal repaid day by day. The one place the arithmetic lives, so the
    single-loan `position` and the bulk reminder scan cannot drift apart.

    Interest accrues by the day on the principal outstanding (schedule.fen_days); a payment
    settles the interest accrued to its day first, then principal. What falls due by a day
    is the plan's principal due by then and, with it, the interest accrued to the latest
    due date; interest left after a payment made early is carried to the next due date, as
    a bank's daily interest is paid at the next instalment.

    `until`: the plan holds only instalments due by then (None: the whole plan), which is
    enough for any date up to it, since only instalments due by a date count on that date."""

    amount_fen: int
    status: str
    plan: Sequence[Any]
    interest_paid_fen: int
    principal_paid_fen: int
    until: date | None = None
    start: date | None = None  # disbursed on
    rate_bp: int = 0
    principal_paid: Sequence[tuple[date, int]] = ()  # (paid on, principal fen), by day

    def accrued(self, day: date) -> int:
        """Interest accrued from disbursement to `day`, in fen (rounded once)."""
        if self.start is None:
            return 0
        return interest_on(
            fen_days(self.amount_fen, self.start, self.principal_paid, day), self.rate_bp
        )

    def on(self, day: date) -> Position:
        """Interest due (accrued to `day`), principal outstanding, and arrears."""
        if self.until is not None and day > self.until:
            raise ValueError(f"plan loaded up to {self.until}, asked about {day}")
        if self.status == L.WRITTEN_OFF:
            return Position(0, 0, 0, 0, None)
        paid = self.principal_paid_fen
        # One walk of the schedule in order: principal fallen due by `day`, the latest due
        # date reached, and the first instalment whose principal is not all paid.
        principal_due, latest, cumulative, oldest = 0, None, 0, None
        for item in self.plan:
            if item[DUE_ON] <= day:
                principal_due += item[PRINCIPAL]
                latest = item[DUE_ON]
                cumulative += item[PRINCIPAL]
                if oldest is None and cumulative > paid:
                    oldest = item
        behind = max(principal_due - paid, 0)
        if behind and latest is not None:
            behind += max(self.accrued(latest) - self.interest_paid_fen, 0)
        days = (day - oldest[DUE_ON]).days if oldest is not None else 0
        return Position(
            max(self.accrued(day) - self.interest_paid_fen, 0),
            self.amount_fen - paid,
            behind,
            days,
            oldest,
        )


async def book_of(conn: AsyncConnection, loan_id: int) -> Ledger:
    """A loan's whole book, as `Ledger` reads it."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    plan = (
        await conn.execute(
            select(*PLAN_COLUMNS)
            .where(instalments.c.loan_id == loan_id)
            .order_by(instalments.c.number)
        )
    ).all()
    paid = (
        await conn.execute(
            select(repayments.c.paid_on, repayments.c.principal_fen, repayments.c.interest_fen)
            .where(repayments.c.loan_id == loan_id)
            .order_by(repayments.c.paid_on, repayments.c.id)
        )
    ).all()
    return Ledger(
        loan.amount_fen,
        loan.status,
        plan,
        sum(int(row[2]) for row in paid),
        sum(int(row[1]) for row in paid),
        None,
        loan.disbursed_on,
        loan.annual_rate_bp,
        [(row[0], int(row[1])) for row in paid],
    )


async def position(conn: AsyncConnection, loan_id: int, on: date) -> Position:
    """Interest due (accrued to `on`), principal outstanding, and arrears."""
    return (await book_of(conn, loan_id)).on(on)


async def repay(
    conn: AsyncConnection,
    *,
    loan_id: int,
    staff: Person | None,
    amount_fen: int,
    paid_on: date,
    receipt: str,
    now: datetime,
    channel: str = "chat",
) -> str:
    """Record a repayment: the interest accrued to its day first, then principal; never
    more than owed; one receipt once. Refused (nothing written) otherwise."""
    loan = await load_loan(conn, loan_id, lock=True)
    if loan is None or loan.status != L.DISBURSED:
        raise LoanRefused(say("no_repayment_now"))
    check(LoanRefused, "loan.repay", staff, "department" if staff else "system", loan_subject(loan))
    if paid_on < loan.disbursed_on:
        raise LoanRefused(say("dated_before_disbursement", day=loan.disbursed_on.isoformat()))
    if amount_fen <= 0:
        raise LoanRefused(say("amount_positive"))
    duplicate = (
        await conn.execute(
            select(people.c.name)
            .select_from(repayments.outerjoin(people, people.c.id == repayments.c.recorded_by))
            .where(repayments.c.loan_id == loan_id, repayments.c.receipt == receipt)
        )
    ).first()
    if duplicate is not None:
        raise LoanRefused(
            say("receipt_used", receipt=receipt, name=duplicate.name or say("system"))
        )
    book = await book_of(conn, loan_id)
    if book.principal_paid and paid_on < book.principal_paid[-1][0]:
        # Interest is counted day by day from the payments in order: a payment dated before
        # one already booked would change what that one settled.
        raise LoanRefused(say("dated_before_last", day=_day(book.principal_paid[-1][0])))
    now_position = book.on(paid_on)
    if amount_fen > now_position.owed_now_fen:
        raise LoanRefused(
            say(
                "overpayment",
                owed=yuan(now_position.owed_now_fen),
                interest=yuan(now_position.interest_due_fen),
                principal=yuan(now_position.principal_outstanding_fen),
            )
        )
    to_interest = min(amount_fen, now_position.interest_due_fen)
    to_principal = amount_fen - to_interest
    left = now_position.principal_outstanding_fen - to_principal
    if left == 0:
        # Paid off: the move first (refused or raced, nothing is booked), then the money.
        await transition(
            conn,
            loan_id=loan_id,
            target=L.REPAID,
            actor=None,
            role="system",
            channel="system",
            now=now,
            reason=say("repaid_reason", receipt=receipt),
        )
    await conn.execute(
        insert(repayments).values(
            loan_id=loan_id,
            amount_fen=amount_fen,
            interest_fen=to_interest,
            principal_fen=to_principal,
            paid_on=paid_on,
            receipt=receipt,
            recorded_by=staff.id if staff else None,
            recorded_at=now,
        )
    )
    recorder = staff.id if staff else None
    if to_interest:
        await record(
            conn,
            kind=Movement.INTEREST_IN,
            amount_fen=to_interest,
            document=receipt,
            occurred_on=paid_on,
            now=now,
            recorded_by=recorder,
            loan_id=loan_id,
        )
    if to_principal:
        await record(
            conn,
            kind=Movement.PRINCIPAL_IN,
            amount_fen=to_principal,
            document=receipt,
            occurred_on=paid_on,
            now=now,
            recorded_by=recorder,
            loan_id=loan_id,
        )
    if left == 0:
        return say(
            "repaid_all",
            amount=yuan(amount_fen),
            interest=yuan(to_interest),
            principal=yuan(to_principal),
        )
    after = await book_of(conn, loan_id)
    return say(
        "repaid_part",
        amount=yuan(amount_fen),
        interest=yuan(to_interest),
        principal=yuan(to_principal),
        left=yuan(left),
        next=_next_due(after, paid_on),
    )


def _next_due(book: Ledger, paid_on: date) -> str:
    """What is left due at the next due date after a payment, in words."""
    for item in book.plan:
        if item[DUE_ON] > paid_on:
            due = book.on(item[DUE_ON]).overdue_fen
            if due:
                return say("next_due", day=_day(item[DUE_ON]), amount=yuan(due))
            return say("next_due_none", day=_day(item[DUE_ON]))
    return ""


def _day(day: date) -> str:
    return chinese_date(day)


async def write_off(
    conn: AsyncConnection,
    *,
    loan_id: int,
    officer: Person,
    reason: str,
    on: date,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> str:
    """核销: only a committee officer, only with a reason; the fund records the loss."""
    if not reason.strip():
        raise LoanRefused(say("write_off_reason"))
    owed = await position(conn, loan_id, on)
    loan = await transition(
        conn,
        loan_id=loan_id,
        target=L.WRITTEN_OFF,
        actor=officer,
        channel=channel,
        now=now,
        reason=reason,
        expected=expected,
        write_off_reason=reason,
    )
    if owed.principal_outstanding_fen:
        await record(
            conn,
            kind=Movement.WRITE_OFF,
            amount_fen=owed.principal_outstanding_fen,
            document=say("document_write_off", id=loan_id),
            occurred_on=on,
            now=now,
            recorded_by=officer.id,
            loan_id=loan_id,
            note=reason,
        )
    name = (
        await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
    ).scalar_one()
    return say("written_off", name=name, amount=yuan(owed.principal_outstanding_fen))


async def loans_outstanding_fen(conn: AsyncConnection) -> int:
    """Principal still owed, summed over the loans (the fund's figure must equal this): what
    was lent on loans disbursed or repaid, less the principal repaid on them. Two aggregates,
    not a query a loan: the desk shows this line on every 工作台."""
    counted = loans.c.status.in_([L.DISBURSED, L.REPAID])
    lent = await conn.scalar(select(func.coalesce(func.sum(loans.c.amount_fen), 0)).where(counted))
    paid = await conn.scalar(
        select(func.coalesce(func.sum(repayments.c.principal_fen), 0))
        .select_from(repayments.join(loans, loans.c.id == repayments.c.loan_id))
        .where(counted)
    )
    return int(lent or 0) - int(paid or 0)


async def books_of(conn: AsyncConnection, loan_ids: Sequence[int]) -> dict[int, Ledger]:
    """The whole books of many loans, as `book_of` reads one, in three queries a chunk of
    ids (the desk's loan pages and the fund report read a page or a county at once)."""
    ids = sorted(set(loan_ids))
    if not ids:
        return {}
    heads: list[Any] = await rows_in(conn, _heads_of, ids)
    plans: dict[int, list[Any]] = {loan_id: [] for loan_id in ids}
    plan_rows: list[Any] = await rows_in(conn, _whole_plan_of, ids)
    for row in sorted(plan_rows, key=lambda row: (row[0], row[1])):
        plans[row[0]].append(row)
    paid: dict[int, list[Any]] = {loan_id: [] for loan_id in ids}
    paid_rows: list[Any] = await rows_in(conn, _repaid_of, ids)
    for row in sorted(paid_rows, key=lambda row: (row[0], row[1], row[4])):
        paid[row[0]].append(row)
    return {
        head[0]: Ledger(
            head[1],
            head[2],
            plans[head[0]],
            sum(int(row[3]) for row in paid[head[0]]),
            sum(int(row[2]) for row in paid[head[0]]),
            None,
            head[3],
            head[4],
            [(row[1], int(row[2])) for row in paid[head[0]]],
        )
        for head in heads
    }


@lru_cache(maxsize=16)
def _heads_of(size: int) -> Any:
    return select(
        loans.c.id, loans.c.amount_fen, loans.c.status, loans.c.disbursed_on, loans.c.annual_rate_bp
    ).where(in_list(loans.c.id, size))


@lru_cache(maxsize=16)
def _whole_plan_of(size: int) -> Any:
    return select(*PLAN_COLUMNS).where(in_list(instalments.c.loan_id, size))


@lru_cache(maxsize=16)
def _repaid_of(size: int) -> Any:
    return select(
        repayments.c.loan_id,
        repayments.c.paid_on,
        repayments.c.principal_fen,
        repayments.c.interest_fen,
        repayments.c.id,
    ).where(in_list(repayments.c.loan_id, size))


def recorded(status: str) -> str:
    """What the one who moved a loan a step reads (chat and desk): its status now."""
    return say("recorded", status=say("status_" + status))


async def decide(
    conn: AsyncConnection,
    *,
    loan_id: int,
    officer: Person,
    approve: bool,
    reason: str | None,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> Any:
    """党委批准 or not."""
    return await transition(
        conn,
        loan_id=loan_id,
        target=L.APPROVED if approve else L.REJECTED,
        actor=officer,
        channel=channel,
        now=now,
        reason=reason,
        expected=expected,
    )


async def inspect(
    conn: AsyncConnection,
    *,
    loan_id: int,
    staff: Person,
    on: date,
    inspector: str,
    finding: str,
    passed: bool,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> Any:
    """组织部实地考核 recorded."""
    return await transition(
        conn,
        loan_id=loan_id,
        target=L.INSPECTED if passed else L.REJECTED,
        actor=staff,
        role="department",
        channel=channel,
        now=now,
        expected=expected,
        reason=finding,
        inspected_on=on,
        inspector=inspector,
        inspection_finding=finding,
    )


async def guarantee(
    conn: AsyncConnection,
    *,
    loan_id: int,
    staff: Person,
    guarantor: str,
    document: str,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> Any:
    """乡镇政府财政担保 recorded."""
    return await transition(
        conn,
        loan_id=loan_id,
        target=L.GUARANTEED,
        actor=staff,
        role="department",
        channel=channel,
        now=now,
        expected=expected,
        guarantor=guarantor,
        guarantee_document=document,
    )


async def record_disbursement(
    conn: AsyncConnection,
    *,
    loan_id: int,
    staff: Person,
    on: date,
    document: str,
    now: datetime,
    expected: str | None = None,
    channel: str = "chat",
) -> Any:
    """One staff member records the disbursement; another must confirm it."""
    return await transition(
        conn,
        loan_id=loan_id,
        target=L.RECORDED,
        actor=staff,
        role="department",
        channel=channel,
        now=now,
        expected=expected,
        disbursed_on=on,
        disbursement_document=document,
        recorded_by=staff.id,
    )
