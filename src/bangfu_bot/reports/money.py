"""借款与基金 on the desk: loans with their status, schedule, repayments and arrears; loans by
arrears bucket; the fund's position and movements; the supervisors' report as XLSX.

Arrears are worked out by `loans.service.Ledger`, the one place their arithmetic lives,
over the books of a page of loans read in bulk; the buckets of a whole county are counted
in SQL with the same rule (see `arrears_buckets`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.common.fields import mask_id, mask_phone
from bangfu_bot.fund.models import fund_movements as movements_table
from bangfu_bot.fund.service import SOURCE_NAMES, figures_now
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.service import DUE_ON, PRINCIPAL, Ledger, books_of, loans_outstanding_fen
from bangfu_bot.members.models import organisations, people
from bangfu_bot.reports.fund import KIND_NAMES, read_fund_report, write_fund_report
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker, texts

__all__ = [
    "BUCKETS",
    "OVERDUE",
    "ArrearsBucket",
    "ArrearsByBranch",
    "FundMovement",
    "FundPosition",
    "FundReportFile",
    "InstalmentLine",
    "LoanEvent",
    "LoanPage",
    "LoanRecord",
    "LoanRow",
    "MovementPage",
    "RepaymentLine",
    "arrears_buckets",
    "arrears_by_branch",
    "fund_movements",
    "fund_position",
    "fund_report_xlsx",
    "loan_list",
    "loan_record",
]

say = speaker("bangfu_bot.reports")


def status_name(status: str) -> str:
    """A loan status in the words the chat uses (借款 status texts)."""
    return texts("bangfu_bot.loans").get(f"status_{status}", status)


# --- Loans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanRow:
    """One loan as the list shows it. Money in fen; `next_due_fen` is what the borrower
    must have paid by `next_due_on` (arrears included), 0 once all is covered."""

    loan_id: int
    status: str
    status_name: str
    borrower_id: int
    borrower: str
    id_number: str
    phone: str
    township: str
    branch: str
    project: str
    amount_fen: int
    disbursed_on: date | None
    principal_outstanding_fen: int
    interest_due_fen: int
    overdue_fen: int
    days_overdue: int
    next_due_on: date | None
    next_due_fen: int


@dataclass(frozen=True)
class LoanPage:
    """A page of the loan list and how many loans the filters match in all."""

    total: int
    rows: tuple[LoanRow, ...]


@dataclass(frozen=True)
class InstalmentLine:
    """One instalment of the schedule and how much of its principal is repaid."""

    number: int
    due_on: date
    principal_fen: int
    interest_fen: int
    principal_paid_fen: int

    @property
    def settled(self) -> bool:
        """All its principal is repaid."""
        return self.principal_paid_fen >= self.principal_fen


@dataclass(frozen=True)
class RepaymentLine:
    """One repayment received (还款)."""

    paid_on: date
    amount_fen: int
    principal_fen: int
    interest_fen: int
    receipt: str
    recorded_by: str


@dataclass(frozen=True)
class LoanEvent:
    """One transition of the loan, with who made it, in which role and through which
    channel (微信, web …)."""

    at: datetime
    actor: str
    role: str
    channel: str
    from_status: str | None
    to_status: str
    reason: str


@dataclass(frozen=True)
class LoanRecord:
    """A loan's whole record: its line, its terms, schedule, repayments and transitions."""

    loan: LoanRow
    earnings: str
    schedule_kind: str
    term_years: int
    annual_rate_bp: int
    inspected_on: date | None
    inspector: str
    inspection_finding: str
    guarantor: str
    guarantee_document: str
    disbursement_document: str
    write_off_reason: str
    schedule: tuple[InstalmentLine, ...]
    repayments: tuple[RepaymentLine, ...]
    events: tuple[LoanEvent, ...]


def _loan_query() -> Any:
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    where = func.coalesce(loans.c.branch_id, people.c.branch_id)
    return (
        select(
            loans,
            people.c.name.label("borrower"),
            people.c.id_number,
            people.c.phone,
            branch.c.name.label("branch_name"),
            committee.c.name.label("township_name"),
        ).select_from(
            loans.join(people, people.c.id == loans.c.person_id)
            .outerjoin(branch, branch.c.id == where)
            .outerjoin(committee, committee.c.id == branch.c.parent_id)
        ),
        where,
    )


async def loan_list(
    session: AsyncSession,
    *,
    today: date,
    status: str | None = None,
    township_id: int | None = None,
    branch_id: int | None = None,
    q: str | None = None,
    arrears: str | None = None,
    unmasked: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> LoanPage:
    """Loans, newest first, with where each stands on `today`. Filters: status, township,
    branch, part of the borrower's name (`q`, taken literally), and arrears: `OVERDUE` for
    those behind on an instalment due before today, or a bucket's key (`BUCKETS`) for the
    disbursed loans the buckets count there. Five queries whatever the page."""
    conn = await session.connection()
    query, where = _loan_query()
    conditions = [in_scope(where, township_id=township_id, branch_id=branch_id)]
    if status:
        conditions.append(loans.c.status == status)
    if q:
        conditions.append(people.c.name.contains(q, autoescape=True))
    if arrears:
        conditions.extend(_in_arrears(arrears, today))
    total = await conn.scalar(
        select(func.count())
        .select_from(loans.join(people, people.c.id == loans.c.person_id))
        .where(*conditions)
    )
    rows = (
        await conn.execute(
            query.where(*conditions)
            .order_by(loans.c.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    books = await books_of(conn, [row.id for row in rows])
    return LoanPage(
        int(total or 0), tuple(_loan_row(row, books[row.id], today, unmasked) for row in rows)
    )


OVERDUE = "overdue"  # any disbursed loan behind on an instalment due before today


def _in_arrears(arrears: str, today: date) -> list[Any]:
    """The conditions for a loan in `arrears` on `today`: OVERDUE or a bucket's key.

    A loan is `n` days behind when its oldest unpaid instalment fell due `n` days ago; the
    principal due grows with the date, so "at least `low` days behind" is "behind on what
    fell due by today - low", and "at most `high`" is "not behind on what fell due by
    today - high - 1" — `arrears_by_branch`'s rule, as conditions on one loan."""
    low, high = {key: (lo, hi) for key, _, lo, hi in BUCKETS}.get(arrears, (1, None))
    conditions = [loans.c.status == L.DISBURSED]
    if low > 0:
        conditions.append(_principal_due(today - timedelta(days=low)) > _principal_paid())
    if high is not None:
        conditions.append(_principal_due(today - timedelta(days=high + 1)) <= _principal_paid())
    return conditions


def _principal_due(by: date) -> Any:
    """The principal of a loan's instalments due by `by` (correlated with `loans`)."""
    return (
        select(func.coalesce(func.sum(instalments.c.principal_fen), 0))
        .where(instalments.c.loan_id == loans.c.id, instalments.c.due_on <= by)
        .scalar_subquery()
    )


def _principal_paid() -> Any:
    """The principal repaid on a loan (correlated with `loans`)."""
    return (
        select(func.coalesce(func.sum(repayments.c.principal_fen), 0))
        .where(repayments.c.loan_id == loans.c.id)
        .scalar_subquery()
    )


def _loan_row(row: Any, book: Ledger, today: date, unmasked: bool) -> LoanRow:
    owed = book.on(today)
    next_due_on, next_due_fen = None, 0
    if row.status == L.DISBURSED:
        for item in book.plan:
            if item[DUE_ON] >= today:
                next_due_on = item[DUE_ON]
                next_due_fen = book.on(item[DUE_ON]).overdue_fen
                break
    return LoanRow(
        loan_id=row.id,
        status=row.status,
        status_name=status_name(row.status),
        borrower_id=row.person_id,
        borrower=row.borrower,
        id_number=row.id_number if unmasked else mask_id(row.id_number),
        phone=(row.phone or "") if unmasked else mask_phone(row.phone or ""),
        township=row.township_name or "",
        branch=row.branch_name or "",
        project=row.project,
        amount_fen=row.amount_fen,
        disbursed_on=row.disbursed_on,
        principal_outstanding_fen=owed.principal_outstanding_fen
        if row.status in (L.DISBURSED, L.REPAID)
        else 0,
        interest_due_fen=owed.interest_due_fen,
        overdue_fen=owed.overdue_fen,
        days_overdue=owed.days_overdue,
        next_due_on=next_due_on,
        next_due_fen=next_due_fen,
    )


async def loan_record(
    session: AsyncSession,
    loan_id: int,
    *,
    today: date,
    township_id: int | None = None,
    branch_id: int | None = None,
    unmasked: bool = False,
) -> LoanRecord | None:
    """A loan's whole record, or None when there is no such loan within the scope (a
    township officer who changes the URL to another township's loan sees nothing)."""
    conn = await session.connection()
    query, where = _loan_query()
    row = (
        await conn.execute(
            query.where(
                loans.c.id == loan_id,
                in_scope(where, township_id=township_id, branch_id=branch_id),
            )
        )
    ).first()
    if row is None:
        return None
    book = (await books_of(conn, [loan_id]))[loan_id]
    recorder = people.alias("recorder")
    paid = (
        await conn.execute(
            select(repayments, recorder.c.name.label("recorder"))
            .select_from(repayments.outerjoin(recorder, recorder.c.id == repayments.c.recorded_by))
            .where(repayments.c.loan_id == loan_id)
            .order_by(repayments.c.paid_on, repayments.c.id)
        )
    ).all()
    actor = people.alias("actor")
    events = (
        await conn.execute(
            select(loan_events, actor.c.name.label("actor_name"))
            .select_from(loan_events.outerjoin(actor, actor.c.id == loan_events.c.actor_id))
            .where(loan_events.c.loan_id == loan_id)
            .order_by(loan_events.c.at, loan_events.c.id)
        )
    ).all()
    return LoanRecord(
        loan=_loan_row(row, book, today, unmasked),
        earnings=row.earnings,
        schedule_kind=row.schedule_kind,
        term_years=row.term_years,
        annual_rate_bp=row.annual_rate_bp,
        inspected_on=row.inspected_on,
        inspector=row.inspector or "",
        inspection_finding=row.inspection_finding or "",
        guarantor=row.guarantor or "",
        guarantee_document=row.guarantee_document or "",
        disbursement_document=row.disbursement_document or "",
        write_off_reason=row.write_off_reason or "",
        schedule=_schedule(book),
        repayments=tuple(
            RepaymentLine(
                p.paid_on,
                p.amount_fen,
                p.principal_fen,
                p.interest_fen,
                p.receipt,
                p.recorder or "",
            )
            for p in paid
        ),
        events=tuple(
            LoanEvent(
                e.at,
                e.actor_name or say("system_actor"),
                e.role,
                e.channel,
                e.from_status,
                e.to_status,
                e.reason or "",
            )
            for e in events
        ),
    )


def _schedule(book: Ledger) -> tuple[InstalmentLine, ...]:
    """The plan, the principal repaid applied to the instalments in order."""
    left = book.principal_paid_fen
    lines = []
    for item in book.plan:
        covered = min(left, int(item[PRINCIPAL]))
        left -= covered
        lines.append(InstalmentLine(item[1], item[DUE_ON], item[PRINCIPAL], item[4], covered))
    return tuple(lines)


# --- Arrears -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrearsBucket:
    """Disbursed loans whose oldest unpaid instalment is `min_days`–`max_days` days overdue
    (None: no upper bound), how many, and their principal outstanding in fen."""

    key: str
    label: str
    min_days: int
    max_days: int | None
    loans: int
    principal_outstanding_fen: int


BUCKETS = (
    ("current", "age_current", 0, 0),
    ("1_30", "age_1_30", 1, 30),
    ("31_90", "age_31_90", 31, 90),
    ("over_90", "age_over_90", 91, None),
)


async def arrears_buckets(
    session: AsyncSession,
    *,
    today: date,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> tuple[ArrearsBucket, ...]:
    """Disbursed loans by arrears bucket (未逾期, 1–30, 31–90, 90+ days) within a township, a
    branch or (both None) the county."""
    found = await arrears_by_branch(session, today=today)
    return found.buckets(township_id=township_id, branch_id=branch_id)


@dataclass(frozen=True)
class ArrearsByBranch:
    """The county's disbursed loans counted by branch and arrears bucket, in one reading
    that every scope's buckets are summed from (the desk keeps one for all its viewers)."""

    counts: dict[tuple[int | None, str], tuple[int, int]]  # (branch, bucket): loans, fen
    township_of: dict[int, int | None]  # branch id: its township's

    def buckets(
        self, *, township_id: int | None = None, branch_id: int | None = None
    ) -> tuple[ArrearsBucket, ...]:
        """The buckets within a branch, a township's branches, or (both None) the county,
        as `in_scope` draws them: a loan placed in no branch counts for the county only."""
        totals: dict[str, tuple[int, int]] = {}
        for (branch, key), (number, fen) in self.counts.items():
            if branch_id is not None and branch != branch_id:
                continue
            if township_id is not None and (
                branch is None or self.township_of.get(branch) != township_id
            ):
                continue
            had = totals.get(key, (0, 0))
            totals[key] = (had[0] + number, had[1] + fen)
        return tuple(
            ArrearsBucket(key, say(label), low, high, *totals.get(key, (0, 0)))
            for key, label, low, high in BUCKETS
        )


async def arrears_by_branch(session: AsyncSession, *, today: date) -> ArrearsByBranch:
    """Disbursed loans by branch and arrears bucket, in one query.

    The rule is `Ledger.on`'s: a loan is as many days behind as its oldest instalment due by
    today whose principal, counted with the earlier instalments', exceeds the principal
    repaid. The fund report ages each loan with `Ledger.on` itself; a test holds the two to
    the same figures."""
    conn = await session.connection()
    paid = (
        select(repayments.c.loan_id, func.sum(repayments.c.principal_fen).label("principal_paid"))
        .group_by(repayments.c.loan_id)
        .cte("paid")
    )
    running = (
        select(
            instalments.c.loan_id,
            instalments.c.due_on,
            func.sum(instalments.c.principal_fen)
            .over(partition_by=instalments.c.loan_id, order_by=instalments.c.number)
            .label("cumulative"),
            func.coalesce(paid.c.principal_paid, 0).label("principal_paid"),
        )
        .select_from(
            instalments.join(loans, loans.c.id == instalments.c.loan_id).outerjoin(
                paid, paid.c.loan_id == loans.c.id
            )
        )
        # Instalments are numbered in due order: those due later cannot change the running
        # sums of those due by today.
        .where(loans.c.status == L.DISBURSED, instalments.c.due_on <= today)
        .subquery("running")
    )
    # The principal repaid is joined where the loans are (not to the running sums), so
    # SQLite looks each loan's up in the materialized `paid` rather than scanning it for
    # every instalment.
    oldest = (
        select(running.c.loan_id, func.min(running.c.due_on).label("oldest_due"))
        .where(running.c.cumulative > running.c.principal_paid)
        .group_by(running.c.loan_id)
        .subquery("oldest")
    )
    due = oldest.c.oldest_due
    bucket = case(
        (due.is_(None) | (due >= today), literal("current")),
        (due >= today - timedelta(days=30), literal("1_30")),
        (due >= today - timedelta(days=90), literal("31_90")),
        else_=literal("over_90"),
    ).label("bucket")
    branch = func.coalesce(loans.c.branch_id, people.c.branch_id).label("branch")
    query = (
        select(
            branch,
            bucket,
            func.count().label("loans"),
            func.sum(loans.c.amount_fen - func.coalesce(paid.c.principal_paid, 0)).label(
                "principal"
            ),
        )
        .select_from(
            loans.join(people, people.c.id == loans.c.person_id)
            .outerjoin(paid, paid.c.loan_id == loans.c.id)
            .outerjoin(oldest, oldest.c.loan_id == loans.c.id)
        )
        .where(loans.c.status == L.DISBURSED)
        .group_by(branch, bucket)
    )
    counts = {
        (row.branch, row.bucket): (int(row.loans), int(row.principal or 0))
        for row in await conn.execute(query)
    }
    township_of = {
        int(row.id): row.parent_id
        for row in await conn.execute(
            select(organisations.c.id, organisations.c.parent_id).where(
                organisations.c.kind == "branch"
            )
        )
    }
    return ArrearsByBranch(counts, township_of)


# --- The fund ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FundPosition:
    """The fund's figures from its movements, the principal the loans say is owed, and the
    reconciliation line (the fund's principal out minus the loans': must be 0)."""

    contributions_fen: int
    relief_fen: int
    loans_out_fen: int
    principal_in_fen: int
    interest_in_fen: int
    written_off_fen: int
    cash_fen: int
    outstanding_fen: int
    loans_outstanding_fen: int
    reconciliation_fen: int

    @property
    def balanced(self) -> bool:
        """The fund and the loans agree to the fen."""
        return self.reconciliation_fen == 0


async def fund_position(session: AsyncSession, *, until: date | None = None) -> FundPosition:
    """The balance and the reconciliation line, as `reports.fund` computes them for the
    基金 summary and the report (`until`: the figures up to that day; the reconciliation is
    always of now, as the report's is). Three aggregate queries."""
    conn = await session.connection()
    figures = await figures_now(conn, until=until)
    owed = await loans_outstanding_fen(conn)
    now = figures if until is None else await figures_now(conn)
    return FundPosition(
        contributions_fen=figures.contributions_fen,
        relief_fen=figures.relief_fen,
        loans_out_fen=figures.loans_out_fen,
        principal_in_fen=figures.principal_in_fen,
        interest_in_fen=figures.interest_in_fen,
        written_off_fen=figures.written_off_fen,
        cash_fen=figures.cash_fen,
        outstanding_fen=figures.outstanding_fen,
        loans_outstanding_fen=owed,
        # reports.fund.reconciliation_fen: the fund's principal out − the loans'.
        reconciliation_fen=now.outstanding_fen - owed,
    )


@dataclass(frozen=True)
class FundMovement:
    """One movement of the fund, with its source document. `amount_fen` is positive, the
    kind gives the sign (`cash_effect_fen`: what it did to the cash, 0 for a write-off)."""

    movement_id: int
    occurred_on: date
    kind: str
    kind_name: str
    source: str
    source_name: str
    amount_fen: int
    cash_effect_fen: int
    document: str
    loan_id: int | None
    note: str
    recorded_by: str


@dataclass(frozen=True)
class MovementPage:
    """A page of movements, how many match the filters and their amounts' sum in fen."""

    total: int
    amount_fen: int
    rows: tuple[FundMovement, ...]


_CASH_SIGN = {
    "contribution": 1,
    "relief": -1,
    "loan_out": -1,
    "principal_in": 1,
    "interest_in": 1,
    "write_off": 0,
}


async def fund_movements(
    session: AsyncSession,
    *,
    source: str | None = None,
    kind: str | None = None,
    since: date | None = None,
    until: date | None = None,
    loan_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> MovementPage:
    """The fund's movements, newest first, filtered by source, kind, dates (inclusive) and
    loan; two queries."""
    conn = await session.connection()
    table = movements_table
    conditions = []
    if source:
        conditions.append(table.c.source == source)
    if kind:
        conditions.append(table.c.kind == kind)
    if since is not None:
        conditions.append(table.c.occurred_on >= since)
    if until is not None:
        conditions.append(table.c.occurred_on <= until)
    if loan_id is not None:
        conditions.append(table.c.loan_id == loan_id)
    total, amount = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(table.c.amount_fen), 0)).where(*conditions)
        )
    ).one()
    recorder = people.alias("recorder")
    rows = (
        await conn.execute(
            select(table, recorder.c.name.label("recorder"))
            .select_from(table.outerjoin(recorder, recorder.c.id == table.c.recorded_by))
            .where(*conditions)
            .order_by(table.c.occurred_on.desc(), table.c.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    return MovementPage(
        int(total),
        int(amount),
        tuple(
            FundMovement(
                movement_id=row.id,
                occurred_on=row.occurred_on,
                kind=row.kind,
                kind_name=KIND_NAMES.get(row.kind, row.kind),
                source=row.source or "",
                source_name=SOURCE_NAMES.get(row.source or "", ""),
                amount_fen=row.amount_fen,
                cash_effect_fen=_CASH_SIGN.get(row.kind, 0) * row.amount_fen,
                document=row.document,
                loan_id=row.loan_id,
                note=row.note or "",
                recorded_by=row.recorder or "",
            )
            for row in rows
        ),
    )


@dataclass(frozen=True)
class FundReportFile:
    """What `fund_report_xlsx` wrote: the year's movements and the reconciliation line."""

    movements: int
    reconciliation_fen: int


async def fund_report_xlsx(
    session: AsyncSession, *, year: int, today: date, out: BinaryIO
) -> FundReportFile:
    """Write the supervisors' yearly fund report to `out`: the same workbook as
    `bangfu-bot fund report` (loans aged on `today`)."""
    conn = await session.connection()
    data = await read_fund_report(conn, year=year, today=today)
    await asyncio.to_thread(write_fund_report, data, out)
    return FundReportFile(len(data.moves), data.reconciliation_fen)
