"""What came of the help (帮扶成效): the year's plan, household outcomes at the yearly
review, a member's passing, loan project follow-ups and training attendance.

Every act here asks the authority policy first and writes only after it agrees; the
caller's transaction (a push's savepoint, or the command line's `begin`) makes it atomic.
"""

from __future__ import annotations

import asyncio
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.authority import COUNTY_MATTER, Actor, Refused, Subject, acting_role, check
from bangfu_bot.broadcasts.models import broadcast_recipients, broadcasts, signups
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.transitions import load_case, transition
from bangfu_bot.common.fields import FieldError, parse_money_fen
from bangfu_bot.common.money import yuan
from bangfu_bot.fund.service import SOURCE_NAMES, SOURCES
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.members.service import (
    Officials,
    Person,
    person_by_id,
    secretaries_by_branch,
    secretaries_of,
)
from bangfu_bot.notify.intents import Todo, write
from bangfu_bot.outcomes.models import (
    household_outcomes,
    loan_outcomes,
    passings,
    training_attendance,
    year_plans,
)
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.outcomes")

# Income by source, as the application and the review ask it (answers `income_<source>`).
INCOME_SOURCES = ("farming", "wages", "allowances", "pension", "other")
# Why a household left hardship (脱贫) or the ledger; the review's Chinese choices map here.
REASONS = (
    "project_income",
    "work_found",
    "pension",
    "medical_ended",
    "moved",
    "passed_away",
    "other",
)
# The reasons that mean the hardship is over, not that the household is gone.
OUT_OF_HARDSHIP = frozenset({"project_income", "work_found", "pension", "medical_ended"})
OCCASIONS = ("repaid", "term_end", "written_off")
SIGN_IN_DAYS = 30  # a training notice can be signed in to for this long


class OutcomeRefused(Refused):
    """An outcome act that may not happen; `message` is Chinese for who tried."""


class PlanInvalid(ValueError):
    """A plan file that cannot be read; `message` is one Chinese line naming what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- The year's plan (年度计划) ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The department's targets for a year; money in fen."""

    year: int
    raise_fen: dict[str, int] = field(default_factory=dict)
    fund_size_fen: int = 0
    loan_members: int = 0
    visit_budget_fen: int = 0
    trainings: int = 0

    @property
    def raise_total_fen(self) -> int:
        """The fund-raising target over all sources."""
        return sum(self.raise_fen.values())


def _money(value: Any, key: str) -> int:
    try:
        return parse_money_fen(str(value))
    except FieldError:
        raise PlanInvalid(say("plan_bad_money", item=key, value=value)) from None


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlanInvalid(say("plan_bad_count", item=key, value=value))
    return value


PLAN_KEYS = {"year", "raise", "fund_size", "loan_members", "visit_budget", "trainings"}


def parse_plan(text: str, *, year: int) -> Plan:
    """A plan from its TOML file (see README: money in yuan, e.g. "10万" or 100000)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PlanInvalid(say("plan_bad_toml", error=str(error).splitlines()[0])) from None
    unknown = sorted(set(data) - PLAN_KEYS)
    if unknown:
        raise PlanInvalid(say("plan_unknown_key", item=unknown[0]))
    if "year" in data and data["year"] != year:
        raise PlanInvalid(say("plan_other_year", file_year=data["year"], year=year))
    raw_raise = data.get("raise", {})
    if not isinstance(raw_raise, dict):
        raise PlanInvalid(say("plan_bad_raise"))
    for source in raw_raise:
        if source not in SOURCES:
            raise PlanInvalid(say("plan_unknown_source", source=source))
    return Plan(
        year=year,
        raise_fen={source: _money(raw_raise[source], source) for source in raw_raise},
        fund_size_fen=_money(data.get("fund_size", 0), "fund_size"),
        loan_members=_count(data.get("loan_members", 0), "loan_members"),
        visit_budget_fen=_money(data.get("visit_budget", 0), "visit_budget"),
        trainings=_count(data.get("trainings", 0), "trainings"),
    )


async def set_plan(
    conn: AsyncConnection, *, plan: Plan, actor: Actor | None, channel: str, now: datetime
) -> None:
    """定年度计划: the department (or the command line) sets a year's plan; the latest
    stands, earlier ones stay."""
    check(OutcomeRefused, "plan.set", actor, "department" if actor else "system", COUNTY_MATTER)
    await conn.execute(
        insert(year_plans).values(
            year=plan.year,
            raise_fen=dict(plan.raise_fen),
            fund_size_fen=plan.fund_size_fen,
            loan_members=plan.loan_members,
            visit_budget_fen=plan.visit_budget_fen,
            trainings=plan.trainings,
            set_by=actor.id if actor else None,
            channel=channel,
            set_at=now,
        )
    )


async def plan_for(conn: AsyncConnection, year: int) -> Plan | None:
    """The plan that stands for a year, if one was set."""
    row = (
        await conn.execute(
            select(year_plans).where(year_plans.c.year == year).order_by(year_plans.c.id.desc())
        )
    ).first()
    if row is None:
        return None
    return Plan(
        year=year,
        raise_fen={str(k): int(v) for k, v in (row.raise_fen or {}).items()},
        fund_size_fen=int(row.fund_size_fen),
        loan_members=int(row.loan_members),
        visit_budget_fen=int(row.visit_budget_fen),
        trainings=int(row.trainings),
    )


def plan_text(plan: Plan | None, year: int) -> str:
    """The plan in a few short lines, or that there is none."""
    if plan is None:
        return say("plan_none", year=year)
    sources = say("list_separator").join(
        say("plan_source", source=SOURCE_NAMES[source], amount=yuan(fen))
        for source, fen in plan.raise_fen.items()
        if fen
    )
    return "\n".join(
        [
            say("plan_header", year=year),
            say("plan_raise", total=yuan(plan.raise_total_fen), sources=sources or say("none")),
            say("plan_fund_size", amount=yuan(plan.fund_size_fen)),
            say("plan_loan_members", count=plan.loan_members),
            say("plan_visit_budget", amount=yuan(plan.visit_budget_fen)),
            say("plan_trainings", count=plan.trainings),
        ]
    )


# --- Household outcomes, at the yearly review ---------------------------------------------


def income_by_source(answers: dict[str, Any]) -> dict[str, int]:
    """The income answers given, by source, in fen (empty when the income was not asked)."""
    return {
        source: int(answers[f"income_{source}"])
        for source in INCOME_SOURCES
        if answers.get(f"income_{source}") is not None
    }


def reason_of(answers: dict[str, Any]) -> str | None:
    """The review's Chinese answers as a reason code (None: the household continues)."""
    if answers.get("outcome") != say("choice_exit"):
        return None
    exit_reason = str(answers.get("exit_reason") or "")
    codes = {
        say("exit_income"): None,
        say("exit_passed_away"): "passed_away",
        say("exit_moved"): "moved",
    }
    if exit_reason in codes and codes[exit_reason] is not None:
        return codes[exit_reason]
    if exit_reason == say("exit_income"):
        picked = str(answers.get("out_reason") or "")
        for code in ("project_income", "work_found", "pension", "medical_ended"):
            if picked == say(f"reason_{code}"):
                return code
    return "other"


async def record_household_outcome(
    conn: AsyncConnection,
    *,
    entry: Any,
    actor: Person | None,
    answers: dict[str, Any],
    now: datetime,
) -> None:
    """记录帮扶成效: what the year's review found for the household of `entry`."""
    subject = await _person_subject(conn, entry.person_id)
    check(OutcomeRefused, "outcome.record", actor, _role("outcome.record", actor, subject), subject)
    sources = income_by_source(answers)
    after = sum(sources.values()) if sources else int(entry.annual_income_fen)
    reason = reason_of(answers)
    await conn.execute(
        insert(household_outcomes).values(
            ledger_entry_id=entry.id,
            person_id=entry.person_id,
            year=entry.year,
            household_size=entry.household_size,
            income_before_fen=int(entry.annual_income_fen),
            income_after_fen=after,
            income_by_source=sources,
            continued=reason is None,
            out_of_hardship=reason in OUT_OF_HARDSHIP,
            reason=reason,
            recorded_by=actor.id if actor else None,
            recorded_at=now,
        )
    )


def _role(act: str, actor: Person | None, subject: Subject) -> str:
    return acting_role(act, actor, subject)


async def _person_subject(conn: AsyncConnection, person_id: int) -> Subject:
    person = await person_by_id(conn, person_id)
    branch = person.branch_id if person else None
    return Subject(
        person_id=person_id,
        branch_id=branch,
        committee_id=person.committee_id if person else None,
        secretaries=frozenset(await secretaries_of(conn, branch)),
    )


# --- A member's passing (去世) ---------------------------------------------------------------


async def record_passing(
    conn: AsyncConnection,
    *,
    person_id: int,
    passed_on: date,
    actor: Person | None,
    now: datetime,
    channel: str = "chat",
) -> str:
    """登记党员去世: recorded once, with the day; their ledger entry is closed with the
    reason, their WeChat bindings end and nothing is sent to them after (loan reminders and
    visit lists leave them out through `people.passed_away_on`)."""
    subject = await _person_subject(conn, person_id)
    act = "outcome.record_passing"
    check(OutcomeRefused, act, actor, _role(act, actor, subject), subject)
    name = (await conn.execute(select(people.c.name).where(people.c.id == person_id))).scalar()
    if name is None:
        raise OutcomeRefused(say("passing_unknown"), f"no person {person_id}")
    done = (
        await conn.execute(select(passings.c.id).where(passings.c.person_id == person_id))
    ).first()
    if done is not None:
        raise OutcomeRefused(say("passing_done_already", name=name), "passing recorded before")
    await conn.execute(
        insert(passings).values(
            person_id=person_id,
            passed_on=passed_on,
            recorded_by=actor.id if actor else None,
            recorded_at=now,
        )
    )
    await conn.execute(
        update(people).where(people.c.id == person_id).values(passed_away_on=passed_on)
    )
    await conn.execute(
        update(bindings)
        .where(bindings.c.person_id == person_id, bindings.c.unbound_at.is_(None))
        .values(unbound_at=now)
    )
    reason = say("exit_passed_away")
    for entry in (
        await conn.execute(
            select(ledger_entries).where(
                ledger_entries.c.person_id == person_id, ledger_entries.c.status == "active"
            )
        )
    ).all():
        if entry.case_id is not None:
            case = await load_case(conn, entry.case_id)
            if case is not None and case.status == CaseStatus.IN_LEDGER:
                await transition(
                    conn,
                    case_id=entry.case_id,
                    target=CaseStatus.EXITED,
                    actor=actor,
                    role=None if actor else "system",
                    channel=channel,
                    now=now,
                    reason=reason,
                )
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.id == entry.id)
            .values(status="exited", exit_reason=reason, exited_at=now)
        )
        if entry.reviewed_at is None:
            await conn.execute(
                insert(household_outcomes).values(
                    ledger_entry_id=entry.id,
                    person_id=person_id,
                    year=entry.year,
                    household_size=entry.household_size,
                    income_before_fen=int(entry.annual_income_fen),
                    income_after_fen=int(entry.annual_income_fen),
                    income_by_source={},
                    continued=False,
                    out_of_hardship=False,
                    reason="passed_away",
                    recorded_by=actor.id if actor else None,
                    recorded_at=now,
                )
            )
            await conn.execute(
                update(ledger_entries)
                .where(ledger_entries.c.id == entry.id)
                .values(reviewed_at=now)
            )
    return say("passing_recorded", name=name)


# --- Loan projects followed up (借款项目回访) --------------------------------------------------


FOLLOW_UP_ACT = "outcome.follow_up_loan"
FOLLOW_UP_BATCH = 500  # loans per transaction of the scheduled run

_OCCASION = case(
    (loans.c.status == L.REPAID, "repaid"),
    (loans.c.status == L.WRITTEN_OFF, "written_off"),
    else_="term_end",
)
_last_due = (
    select(func.max(instalments.c.due_on))
    .where(instalments.c.loan_id == loans.c.id)
    .scalar_subquery()
)


def _due_follow_ups(today: date, after: int, limit: int) -> Any:
    """Loans whose follow-up for their occasion is due and not recorded, by id after
    `after`: repaid, written off, or disbursed and past their term's last due date."""
    recorded = (
        select(loan_outcomes.c.id)
        .where(loan_outcomes.c.loan_id == loans.c.id, loan_outcomes.c.occasion == _OCCASION)
        .exists()
    )
    return (
        select(
            loans.c.id,
            _OCCASION.label("occasion"),
            loans.c.person_id,
            loans.c.recorded_by,
            loans.c.project,
            people.c.name,
            people.c.branch_id,
            organisations.c.parent_id.label("committee_id"),
        )
        .select_from(
            loans.join(people, people.c.id == loans.c.person_id).outerjoin(
                organisations, organisations.c.id == people.c.branch_id
            )
        )
        .where(
            or_(
                loans.c.status.in_([L.REPAID, L.WRITTEN_OFF]),
                and_(loans.c.status == L.DISBURSED, _last_due < today),
            ),
            ~recorded,
            loans.c.id > after,
        )
        .order_by(loans.c.id)
        .limit(limit)
    )


async def _follow_up_batch(
    conn: AsyncConnection,
    officials: Officials,
    *,
    today: date,
    now: datetime,
    after: int,
    limit: int,
) -> tuple[int, int | None]:
    """One batch of follow-up to-dos: (the to-dos asked for, the last loan id read, None
    when no loan was left)."""
    rows = (await conn.execute(_due_follow_ups(today, after, limit))).all()
    if not rows:
        return 0, None
    secretaries = await secretaries_by_branch(
        conn, sorted({row.branch_id for row in rows if row.branch_id is not None})
    )
    intents: list[Todo] = []
    for row in rows:
        subject = Subject(
            person_id=row.person_id,
            branch_id=row.branch_id,
            committee_id=row.committee_id,
            maker_id=row.recorded_by,
            secretaries=frozenset(secretaries.get(row.branch_id, [])),
        )
        able = officials.able_for(subject)
        # The branch secretary knows the household; the department only when none can.
        hands = [p for p in able if p in subject.secretaries] or able
        for assignee in hands:
            intents.append(
                Todo(
                    assignee,
                    "loan_outcome",
                    say("follow_up_todo", name=row.name, project=row.project),
                    f"loan_outcome:{row.id}:{row.occasion}:{assignee}",
                    subject_id=row.person_id,
                    loan_id=row.id,
                )
            )
    await write(conn, intents, now=now)
    return len(intents), int(rows[-1].id)


async def open_follow_ups(
    conn: AsyncConnection, *, today: date, now: datetime, batch: int = FOLLOW_UP_BATCH
) -> int:
    """A follow-up to-do for each loan repaid, written off, or past its term's last due
    date whose outcome for that occasion is not recorded (once per occasion, per person who
    may follow it up), all in the caller's transaction; returns the to-dos asked for (those
    written before are not written again). The scheduled run is `open_follow_ups_batched`."""
    officials = await Officials.load(conn, FOLLOW_UP_ACT)
    total, after = 0, 0
    while True:
        count, last = await _follow_up_batch(
            conn, officials, today=today, now=now, after=after, limit=batch
        )
        if last is None:
            return total
        total, after = total + count, last


async def open_follow_ups_batched(
    engine: AsyncEngine, *, today: date, now: datetime, batch: int = FOLLOW_UP_BATCH
) -> int:
    """`open_follow_ups` as the hourly job runs it: who may follow loans up is read once,
    then loans are taken `batch` at a time, each batch in its own short transaction, the
    event loop given its turn between them. A run stopped half-way leaves whole batches;
    the next run writes the rest (the keys make a repeat change nothing)."""
    async with engine.connect() as conn:
        officials = await Officials.load(conn, FOLLOW_UP_ACT)
    total, after = 0, 0
    while True:
        async with engine.begin() as conn:
            count, last = await _follow_up_batch(
                conn, officials, today=today, now=now, after=after, limit=batch
            )
        if last is None:
            return total
        total, after = total + count, last
        await asyncio.sleep(0)


async def _loan_subject(conn: AsyncConnection, loan_id: int) -> Subject:
    loan = await load_loan(conn, loan_id)
    base = loan_subject(loan)
    return Subject(
        person_id=base.person_id,
        branch_id=base.branch_id,
        committee_id=base.committee_id,
        secretaries=frozenset(await secretaries_of(conn, base.branch_id)),
    )


def occasion_of(status: str) -> str:
    """The follow-up a loan in this status is due: at repayment, write-off or term end."""
    return {L.REPAID: "repaid", L.WRITTEN_OFF: "written_off"}.get(L(status), "term_end")


async def follow_up_context(conn: AsyncConnection, loan_id: int) -> dict[str, Any] | None:
    """What the follow-up flow shows of the loan: whose, the project, what was expected."""
    loan = await load_loan(conn, loan_id)
    if loan is None:
        return None
    occasion = occasion_of(loan.status)
    done = (
        await conn.execute(
            select(loan_outcomes.c.id).where(
                loan_outcomes.c.loan_id == loan_id, loan_outcomes.c.occasion == occasion
            )
        )
    ).first()
    if done is not None:
        return None
    name = (await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))).scalar()
    return {
        "loan_id": loan_id,
        "occasion": occasion,
        "name": name,
        "project": loan.project,
        "earnings": loan.earnings,
        "amount": yuan(int(loan.amount_fen)),
        "when": say(f"occasion_{occasion}"),
    }


async def record_loan_outcome(
    conn: AsyncConnection,
    *,
    loan_id: int,
    occasion: str,
    horizon: str,
    expected_fen: int,
    earned_fen: int,
    actor: Person | None,
    now: datetime,
    note: str | None = None,
) -> str:
    """借款项目回访: what the project earned against what the application expected."""
    if occasion not in OCCASIONS or horizon not in ("short", "long"):
        raise ValueError(f"occasion {occasion!r}, horizon {horizon!r}")
    subject = await _loan_subject(conn, loan_id)
    act = "outcome.follow_up_loan"
    check(OutcomeRefused, act, actor, _role(act, actor, subject), subject)
    done = (
        await conn.execute(
            select(loan_outcomes.c.id).where(
                loan_outcomes.c.loan_id == loan_id, loan_outcomes.c.occasion == occasion
            )
        )
    ).first()
    if done is not None:
        raise OutcomeRefused(say("follow_up_done_already"), "loan outcome recorded before")
    await conn.execute(
        insert(loan_outcomes).values(
            loan_id=loan_id,
            occasion=occasion,
            horizon=horizon,
            expected_fen=expected_fen,
            earned_fen=earned_fen,
            note=note,
            recorded_by=actor.id if actor else None,
            recorded_at=now,
        )
    )
    return say(
        "follow_up_recorded",
        earned=yuan(earned_fen),
        expected=yuan(expected_fen),
        verdict=say("verdict_met" if earned_fen >= expected_fen else "verdict_short"),
    )


# --- Trainings (技术培训): 签到 -----------------------------------------------------------------


async def sign_in(conn: AsyncConnection, *, person: Person, now: datetime) -> str:
    """签到: the member says they came to the training they signed up for (or, failing
    that, the latest one they were told of), within `SIGN_IN_DAYS` of its notice."""
    subject = await _person_subject(conn, person.id)
    check(OutcomeRefused, "training.sign_in", person, "member", subject)
    since = now - timedelta(days=SIGN_IN_DAYS)
    signed_up = (
        select(broadcasts.c.id, broadcasts.c.text)
        .select_from(broadcasts.join(signups, signups.c.broadcast_id == broadcasts.c.id))
        .where(
            broadcasts.c.training.is_(True),
            signups.c.person_id == person.id,
            broadcasts.c.created_at > since,
        )
        .order_by(broadcasts.c.id.desc())
    )
    told = (
        select(broadcasts.c.id, broadcasts.c.text)
        .select_from(
            broadcasts.join(
                broadcast_recipients, broadcast_recipients.c.broadcast_id == broadcasts.c.id
            )
        )
        .where(
            broadcasts.c.training.is_(True),
            broadcast_recipients.c.person_id == person.id,
            broadcasts.c.created_at > since,
        )
        .order_by(broadcasts.c.id.desc())
    )
    training = (await conn.execute(signed_up)).first() or (await conn.execute(told)).first()
    if training is None:
        return say("nothing_to_sign_in")
    exists = (
        await conn.execute(
            select(training_attendance.c.id).where(
                training_attendance.c.broadcast_id == training.id,
                training_attendance.c.person_id == person.id,
            )
        )
    ).first()
    if exists is not None:
        return say("signed_in_already")
    await conn.execute(
        insert(training_attendance).values(
            broadcast_id=training.id, person_id=person.id, signed_in_at=now
        )
    )
    return say("signed_in", text=training.text.splitlines()[0][:40])
