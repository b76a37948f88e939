"""Scheduled work of loans: repayment reminders and the guarantor call.

Each message has an idempotency key (loan, instalment, day offset), so running the job
twice sends nothing twice. After downtime the job catches up with the latest reminder whose
day has come (not every missed one: three reminders at once would alarm more than help).

The scan is set-based, for a county with a million instalments. Each disbursed loan carries
a marker, the due date of its first instalment not covered by what was repaid (migration
0009: triggers clear it whenever instalments or repayments change); the scan first works
out the markers that are missing, then reads only the loans whose marker falls within the
next 30 days, with their instalments up to then, the member and what was repaid. A loan
repaid ahead is not read again until its next instalment comes near. The arithmetic is
`Ledger`'s (the same as `position`'s); what is to be told is written by `notify.intents`
in one bulk `write` (recipients and the keys already queued read in chunks, only the new
rows written), loan by loan in the order the one-at-a-time scan wrote them.

A guarantor is called once per overdue instalment: the department's to-dos for it have the
keys `loan:<loan>:<instalment>:guarantor:<staff>`, and the scan asks for those keys (not
for words in the to-dos' text)."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache, partial
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Date,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Subject
from bangfu_bot.cases.procedure import people_with_role
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.money import yuan
from bangfu_bot.dbutil import in_list, insert_ignore, rows_in
from bangfu_bot.loans.models import instalments, loans, reminder_inputs, repayments
from bangfu_bot.loans.service import (
    DUE_ON,
    NUMBER,
    PLAN_COLUMNS,
    L,
    Ledger,
    say,
)
from bangfu_bot.members.models import organisations, people
from bangfu_bot.members.service import people_able, secretaries_by_branch
from bangfu_bot.notify.intents import Tell, Todo, write
from bangfu_bot.notify.templates import Facts
from bangfu_bot.scheduler import Job, JobContext
from bangfu_bot.todos.models import todos

BEFORE = (30, 7, 1)
AFTER = (1, 7, 30)
SECRETARY_FROM = 7


async def remind(conn: AsyncConnection, *, now: datetime, today: date, call_days: int) -> int:
    """Send today's reminders and guarantor calls; return how many were due today (those
    queued by an earlier run count too: their keys make the second write a no-op, and a
    loan already done today with nothing changed counts what it counted then)."""
    with _cyclic_gc_paused():
        return await _remind(conn, now=now, today=today, call_days=call_days)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The scan holds a few hundred thousand rows and tuples that reference counting frees;
    the cyclic collector would walk them again and again without finding a cycle (a fifth
    of the scan's time, measured). Paused for the scan only."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _remind(conn: AsyncConnection, *, now: datetime, today: date, call_days: int) -> int:
    horizon = today + timedelta(days=max(BEFORE))
    # The row the migration made; made again if it went (a truncated table): then nothing
    # counts as done and this scan looks at every candidate.
    await conn.execute(insert_ignore(conn, reminder_inputs, ["id"]).values(id=1, version=0))
    inputs = (
        await conn.execute(
            select(
                reminder_inputs.c.version,
                reminder_inputs.c.scanned_on,
                reminder_inputs.c.scanned_version,
            ).where(reminder_inputs.c.id == 1)
        )
    ).one()
    # Loans done today may be left alone only if nothing every loan depends on changed since.
    skip_done = inputs.scanned_on == today and inputs.scanned_version == inputs.version
    await _work_out_coverage(conn)
    borrowers = await _borrowers(conn, today, horizon, skip_done=skip_done)
    late = {
        loan.id: arrears
        for loan in borrowers
        if loan.behind
        if (arrears := _arrears(loan, today)) is not None
    }
    who = await Recipients.load(conn, list(late.values()), call_days)
    items: list[Tell | Todo] = []
    reminded = []
    due = 0
    for loan in borrowers:
        told, count, calls = _due_for(loan, late.get(loan.id), who, today, call_days)
        items += told
        due += count
        # Guarantor calls are made once: a re-run the same day does not count them again.
        reminded.append({"loan": loan.id, "version": loan.version, "count": count - calls})
    await write(conn, items, now=now)
    await _record_done(conn, reminded, today, inputs.version)
    if skip_done:
        due += await _counted_before(conn, today, horizon)
    return due


def _due_for(
    loan: Borrower, late: Arrears | None, who: Recipients, today: date, call_days: int
) -> tuple[list[Tell | Todo], int, int]:
    """A loan's reminders and calls today, how many count as sent, and how many of those
    are guarantor calls."""
    told: list[Tell | Todo] = list(_before(loan, today)) if loan.soon else []
    count, calls = len(told), 0
    if late is not None:
        also, overdue = who.overdue(late, call_days)
        told += also
        calls = overdue - (late.offset is not None)
        count += overdue
    return told, count, calls


async def _record_done(
    conn: AsyncConnection, reminded: list[dict[str, Any]], today: date, version: int
) -> None:
    """Mark each loan looked at as done today, with the inputs it was done from, and the
    scan as complete (unless what every loan depends on changed while it ran)."""
    if reminded:
        await conn.execute(_DONE, [{**row, "day": today} for row in reminded])
    await conn.execute(
        update(reminder_inputs)
        .where(reminder_inputs.c.id == 1, reminder_inputs.c.version == version)
        .values(scanned_on=today, scanned_version=version)
    )


_DONE = (
    update(loans)
    .where(loans.c.id == bindparam("loan"))
    .values(
        reminded_on=bindparam("day"),
        reminded_version=bindparam("version"),
        reminded_count=bindparam("count"),
    )
)


def _done_today(today: date) -> Any:
    """Loans done today whose inputs have not changed since."""
    return and_(loans.c.reminded_on == today, loans.c.reminded_version == loans.c.inputs_version)


async def _counted_before(conn: AsyncConnection, today: date, horizon: date) -> int:
    """What the loans left alone counted when they were done today."""
    return int(
        (
            await conn.execute(
                select(func.coalesce(func.sum(loans.c.reminded_count), 0)).where(
                    loans.c.status == L.DISBURSED,
                    loans.c.covered_through <= horizon,
                    _done_today(today),
                )
            )
        ).scalar_one()
    )


class Borrower(NamedTuple):
    """A loan that can owe a reminder today, as `_candidates` selects it (same order), and
    its book with the plan up to the horizon."""

    id: int
    person_id: int
    branch_id: int | None
    guarantor: str | None
    name: str
    active: bool
    committee_id: int | None  # the parent of the member's branch
    version: int  # the loan's inputs_version as read
    soon: bool  # an instalment falls due from today to the horizon
    behind: bool  # more fell due by today than was ever repaid
    book: Ledger


async def _borrowers(
    conn: AsyncConnection, today: date, horizon: date, *, skip_done: bool
) -> list[Borrower]:
    """The candidates, each with its book: one row per loan, then their plans."""
    result = await conn.execute(_candidates(horizon, today if skip_done else None))
    if tuple(result.keys()) != CANDIDATE_COLUMNS:
        raise RuntimeError(f"_candidates selects {tuple(result.keys())}")
    loans_found = result.all()
    ids = [row[0] for row in loans_found]
    plans = await _plans(conn, ids, horizon)
    paid = await _principal_paid(conn, ids)
    borrowers = []
    for row in loans_found:
        # The sums come back as Decimal from PostgreSQL.
        book = Ledger(
            row[8],
            L.DISBURSED,
            plans.get(row[0], []),
            int(row[9]),
            int(row[10]),
            horizon,
            row[11],
            row[12],
            paid.get(row[0], ()),
        )
        # The plan is in number order, so in due-date order: its last is the latest due.
        soon = bool(book.plan) and book.plan[-1][DUE_ON] >= today
        behind = book.on(today).overdue_fen > 0  # more fell due than was ever repaid
        borrowers.append(Borrower._make([*row[:8], soon, behind, book]))
    return borrowers


# What `_candidates` selects: Borrower's fields up to the version, then the book's figures.
CANDIDATE_COLUMNS = (
    *Borrower._fields[:7],
    "inputs_version",
    "amount_fen",
    "interest_paid",
    "principal_paid",
    "disbursed_on",
    "annual_rate_bp",
)
ALL_COVERED = date(9999, 12, 31)  # the marker of a loan whose every instalment is covered


def _candidates(horizon: date, done_today: date | None) -> Select[Any]:
    """The disbursed loans that can owe a reminder today, one row per loan, by id: those
    whose first instalment not covered by what was repaid falls due by `horizon` (from
    today to it: a reminder before the day; before today: arrears), and those whose marker
    a change cleared after this scan worked the markers out. Through the marker's index;
    what was repaid is summed for these loans only. With `done_today`, the loans done that
    day with unchanged inputs are left out."""
    branch = organisations.alias("member_branch")
    query = (
        select(
            loans.c.id,
            loans.c.person_id,
            loans.c.branch_id,
            loans.c.guarantor,
            people.c.name,
            people.c.active,
            branch.c.parent_id.label("committee_id"),
            loans.c.inputs_version,
            loans.c.amount_fen,
            _repaid(repayments.c.interest_fen).label("interest_paid"),
            _repaid(repayments.c.principal_fen).label("principal_paid"),
            loans.c.disbursed_on,
            loans.c.annual_rate_bp,
        )
        .select_from(
            loans.join(people, people.c.id == loans.c.person_id).outerjoin(
                branch, branch.c.id == people.c.branch_id
            )
        )
        .where(
            loans.c.status == L.DISBURSED,
            or_(loans.c.covered_through <= horizon, loans.c.covered_through.is_(None)),
            # No reminder about a member who passed away (outcomes records it).
            people.c.passed_away_on.is_(None),
        )
        .order_by(loans.c.id)
    )
    if done_today is not None:
        query = query.where(
            or_(
                loans.c.reminded_on.is_(None),
                loans.c.reminded_version.is_(None),
                ~_done_today(done_today),
            )
        )
    return query


def _repaid(amount: Any) -> Any:
    """What was repaid of the loan of the row."""
    return (
        select(func.coalesce(func.sum(amount), literal_column("0", Integer)))
        .where(repayments.c.loan_id == loans.c.id)
        .scalar_subquery()
    )


async def _work_out_coverage(conn: AsyncConnection) -> None:
    """Set the marker of every disbursed loan that has none (new, repaid into, or changed
    since: the triggers cleared it), in one statement: the due date of the first instalment
    whose running principal passes all the principal repaid (interest falls due with
    principal, so a loan is behind exactly when its principal is), which is `Ledger`'s
    oldest unpaid over
    the whole plan (a hypothesis test holds the two together). One statement reads one
    state of the data, and a loan whose `inputs_version` moved on while it ran (a
    transaction committing meanwhile, on PostgreSQL) keeps no marker."""
    await conn.execute(_WORK_OUT)


def _work_out_statement() -> Any:
    plan, earlier, paid = (
        instalments.alias("plan"),
        instalments.alias("earlier"),
        repayments.alias("paid"),
    )
    # By due date, not number: the same order (a plan's dates rise with its numbers, and a
    # tie would give the same date), read from the covering scan index.
    running = (
        select(func.sum(earlier.c.principal_fen))
        .where(earlier.c.loan_id == plan.c.loan_id, earlier.c.due_on <= plan.c.due_on)
        .scalar_subquery()
    )
    repaid = (
        select(func.coalesce(func.sum(paid.c.principal_fen), literal_column("0", Integer)))
        .where(paid.c.loan_id == loans.c.id)
        .correlate(loans)
        .scalar_subquery()
    )
    first_uncovered = (
        select(func.min(plan.c.due_on))
        .where(plan.c.loan_id == loans.c.id, running > repaid)
        .correlate(loans)
        .scalar_subquery()
    )
    seen = loans.alias("seen")
    as_read = select(seen.c.inputs_version).where(seen.c.id == loans.c.id).scalar_subquery()
    return (
        update(loans)
        .where(
            loans.c.status == L.DISBURSED,
            loans.c.covered_through.is_(None),
            loans.c.inputs_version == as_read,
        )
        .values(covered_through=func.coalesce(first_uncovered, literal(ALL_COVERED, type_=Date)))
    )


async def _plans(
    conn: AsyncConnection, loan_ids: Sequence[int], horizon: date
) -> dict[int, list[Any]]:
    """The instalments due by `horizon` of these loans, by loan, each plan by number."""
    rows = await rows_in(conn, _plan_of, loan_ids, horizon=horizon)
    rows.sort(key=itemgetter(0, 1))  # already in this order, which Python's sort checks fast
    return {loan_id: list(plan) for loan_id, plan in groupby(rows, key=itemgetter(0))}


_WORK_OUT = _work_out_statement()


async def _principal_paid(
    conn: AsyncConnection, loan_ids: Sequence[int]
) -> dict[int, list[tuple[date, int]]]:
    """The principal repaid day by day of these loans (interest accrues on what is left)."""
    rows = await rows_in(conn, _paid_of, loan_ids)
    rows.sort(key=itemgetter(0, 1, 3))
    return {
        loan_id: [(row[1], int(row[2])) for row in cast(Iterable[Sequence[Any]], paid)]
        for loan_id, paid in groupby(rows, key=itemgetter(0))
    }


@lru_cache(maxsize=16)
def _paid_of(size: int) -> Select[Any]:
    return select(
        repayments.c.loan_id, repayments.c.paid_on, repayments.c.principal_fen, repayments.c.id
    ).where(in_list(repayments.c.loan_id, size))


@lru_cache(maxsize=16)
def _plan_of(size: int) -> Select[Any]:
    return select(*PLAN_COLUMNS).where(
        in_list(instalments.c.loan_id, size), instalments.c.due_on <= bindparam("horizon")
    )


def _day(due_on: date) -> str:
    return chinese_date(due_on)


# The reminder before a due date that `days_left` days before it calls for: the latest of
# 30, 7, 1 days before and on the day whose day has come (catching up after downtime).
BEFORE_OFFSET = [
    min(offset for offset in (*BEFORE, 0) if offset >= days_left)
    for days_left in range(max(BEFORE) + 1)
]


def _before(loan: Borrower, today: date) -> list[Tell]:
    """Reminders before each due date within the next 30 days, unless what is due by then
    is paid already."""
    book = loan.book
    told = []
    for item in book.plan:
        number, due_on = item[NUMBER], item[DUE_ON]
        days_left = (due_on - today).days
        if not 0 <= days_left <= max(BEFORE):
            continue
        by_then = book.on(due_on)
        if by_then.overdue_fen == 0:
            continue  # already paid ahead: no reminder
        phrase = "phrase_due" if days_left == 0 else "phrase_before"
        told.append(
            Tell(
                f"loan:{loan.id}:{number}:-{BEFORE_OFFSET[days_left]}",
                partial(_before_text, loan.name, number, due_on, by_then.overdue_fen, days_left),
                "repayment reminder",
                loan.person_id,
                facts=reminder_facts(number, by_then.overdue_fen, due_on, say(phrase)),
            )
        )
    return told


def reminder_facts(number: int, fen: int, due_on: date, phrase: str) -> Facts:
    """A repayment reminder's facts for its template: 第1期, 2174元, the due date."""
    return Facts(
        "reminder",
        what=say("fact_instalment", n=number),
        amount_fen=fen,
        due=due_on,
        phrase=phrase,
    )


def _before_text(name: str, number: int, due_on: date, fen: int, days_left: int) -> str:
    if days_left == 0:
        return say("reminder_due", name=name, n=number, amount=yuan(fen))
    return say("reminder_before", name=name, n=number, day=_day(due_on), amount=yuan(fen))


class Arrears(NamedTuple):
    """A loan behind on its payments today: its oldest unpaid instalment and by how much."""

    loan: Borrower
    number: int  # of the oldest unpaid instalment
    due_on: date
    days: int
    overdue_fen: int
    offset: int | None  # the latest of 1, 7, 30 days overdue reached, if any

    @property
    def amount(self) -> str:
        return yuan(self.overdue_fen)


def _arrears(loan: Borrower, today: date) -> Arrears | None:
    owed = loan.book.on(today)
    if owed.oldest_unpaid is None:
        return None
    reached = [offset for offset in AFTER if offset <= owed.days_overdue]
    oldest = owed.oldest_unpaid
    return Arrears(
        loan,
        oldest[NUMBER],
        oldest[DUE_ON],
        owed.days_overdue,
        owed.overdue_fen,
        max(reached) if reached else None,
    )


def _overdue_text(late: Arrears) -> str:
    return say(
        "reminder_overdue",
        name=late.loan.name,
        n=late.number,
        day=_day(late.due_on),
        amount=late.amount,
        days=late.days,
    )


def _copy_text(late: Arrears) -> str:
    return say(
        "secretary_copy", name=late.loan.name, n=late.number, days=late.days, amount=late.amount
    )


class Recipients:
    """Who hears of arrears besides the member, loaded once for the whole scan: branch
    secretaries, department staff, committee officers by township, and the guarantor
    calls already made (once per overdue instalment: `call_key`s)."""

    def __init__(
        self,
        secretaries: dict[int, list[int]],
        department: list[int],
        officers: dict[int | None, list[int]],
        called: set[str],
    ) -> None:
        self.secretaries = secretaries
        self.department = department
        self.officers = officers
        self.called = called

    @classmethod
    async def load(
        cls, conn: AsyncConnection, late: Sequence[Arrears], call_days: int
    ) -> Recipients:
        copied = {
            a.loan.branch_id for a in late if a.offset is not None and a.offset >= SECRETARY_FROM
        }
        secretaries = await secretaries_by_branch(
            conn, sorted(branch for branch in copied if branch is not None)
        )
        calls = [a for a in late if a.days >= call_days]
        if not calls:
            return cls(secretaries, [], {}, set())
        # A call's to-do key is its call_key and whom it is for.
        called = {
            key.rpartition(":")[0]
            for (key,) in await rows_in(conn, _calls_of, sorted({a.loan.id for a in calls}))
        }
        officers = {
            committee: await _write_off_hands(conn, committee)
            for committee in {_committee(a.loan) for a in calls}
        }
        return cls(secretaries, await people_with_role(conn, "department"), officers, called)

    def overdue(self, late: Arrears, call_days: int) -> tuple[list[Tell | Todo], int]:
        """The member's overdue reminder, the secretaries' copy and the guarantor call, in
        that order, and how many of those count as sent."""
        loan = late.loan
        told: list[Tell | Todo] = []
        count = 0
        if late.offset is not None:
            key = f"loan:{loan.id}:{late.number}:+{late.offset}"
            facts = reminder_facts(late.number, late.overdue_fen, late.due_on, say("phrase_late"))
            told.append(
                Tell(
                    key,
                    partial(_overdue_text, late),
                    "overdue reminder",
                    loan.person_id,
                    facts=facts,
                )
            )
            count += 1
            if late.offset >= SECRETARY_FROM:
                copy = partial(_copy_text, late)
                secretaries = (
                    self.secretaries.get(loan.branch_id, []) if loan.branch_id is not None else []
                )
                told += [
                    Tell(f"{key}:copy", copy, "overdue copy to the secretary", secretary)
                    for secretary in secretaries
                ]
        if late.days >= call_days and not self._called(loan.id, late.number):
            told += self._call_guarantor(late)
            count += 1
        return told, count

    def _called(self, loan_id: int, number: int) -> bool:
        return call_key(loan_id, number) in self.called

    def _call_guarantor(self, late: Arrears) -> list[Tell | Todo]:
        loan, n = late.loan, late.number
        text = say(
            "guarantor_todo",
            name=loan.name,
            days=late.days,
            amount=late.amount,
            guarantor=loan.guarantor or "",
            n=n,
        )
        notice = say("guarantor_notice", name=loan.name, days=late.days, amount=late.amount)
        calls: list[Tell | Todo] = [
            Todo(
                staff,
                "guarantor_call",
                text,
                f"{call_key(loan.id, n)}:{staff}",
                subject_id=loan.person_id,
                loan_id=loan.id,
            )
            for staff in self.department
        ]
        calls += [
            Todo(
                officer,
                "loan_write_off",
                notice,
                f"loan:{loan.id}:{n}:writeoff:{officer}",
                subject_id=loan.person_id,
                loan_id=loan.id,
            )
            for officer in self.officers[_committee(loan)]
        ]
        return calls


def call_key(loan_id: int, number: int) -> str:
    """What the keys of the guarantor call about a loan's overdue instalment begin with
    (then `:<staff>`, one to-do for each of the department)."""
    return f"loan:{loan_id}:{number}:guarantor"


@lru_cache(maxsize=16)
def _calls_of(size: int) -> Select[Any]:
    return select(todos.c.key).where(
        in_list(todos.c.loan_id, size), todos.c.kind == "guarantor_call"
    )


def _committee(loan: Borrower) -> int | None:
    """The borrower's township as the roster has it, as the authority policy reads the loan
    (None for a borrower in no township: then the write-off is the department's)."""
    return loan.committee_id


async def _write_off_hands(conn: AsyncConnection, committee: int | None) -> list[int]:
    """Who may write off a loan of this township, by the authority policy (its officers;
    the department for a borrower outside every township)."""
    return await people_able(conn, "loan.write_off", Subject(committee_id=committee))


async def reminders(context: JobContext, *, call_days: int) -> None:
    """Daily: reminders before and after due dates, and the guarantor call once a loan is
    `call_days` overdue."""
    now = context.now()
    async with context.engine.begin() as conn:
        await remind(conn, now=now, today=now.astimezone(context.tz).date(), call_days=call_days)


def jobs(call_days: int) -> list[Job]:
    """The loans' jobs; the guarantor is called once a loan is `call_days` overdue."""
    return [
        Job(id="loans.reminders", every_minutes=60, run=partial(reminders, call_days=call_days))
    ]
