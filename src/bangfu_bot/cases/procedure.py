"""The procedure after an application (申报程序): evaluation, notice, report, approval,
filing into the ledger. Each step is a `transition` plus the prompts to whoever acts next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot import db
from bangfu_bot.authority import acting_role, check
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import (
    case_events,
    cases,
    evaluations,
    ledger_entries,
    objections,
    public_notices,
)
from bangfu_bot.cases.transitions import (
    TransitionRefused,
    case_subject,
    load_case,
    say,
    status_name,
    transition,
)
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.fields import clause
from bangfu_bot.common.holidays import FILE_NAME, Holidays, load_holidays
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.members.service import Person, people_able
from bangfu_bot.notify.intents import add_todo, tell
from bangfu_bot.notify.templates import Facts
from bangfu_bot.settings import Settings
from bangfu_bot.todos.models import todos


@dataclass(frozen=True)
class Rules:
    """Settings of the procedure (defaults from DOMAIN.md)."""

    notice_days: int = 7
    notice_working_days: bool = False
    # Public holidays and make-up days for counting working days (conversations/holidays.toml);
    # none: Monday to Friday.
    holidays: Holidays = field(default_factory=Holidays)
    evaluation_basis: str = "entitled"  # votes for must exceed half of entitled | present
    # stays in Python: the default of BANGFU_COMPLAINTS_CONTACT (settings.py), as there
    complaints_contact: str = "乡镇党委组织委员"
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        """The county's procedure as configured; raises HolidaysInvalid when the holidays
        file is malformed."""
        return cls(
            notice_days=settings.notice_days,
            notice_working_days=settings.notice_working_days,
            holidays=load_holidays(Path(settings.conversations_dir) / FILE_NAME),
            evaluation_basis=settings.evaluation_basis,
            complaints_contact=settings.complaints_contact,
            tz=settings.tz,
        )


@dataclass(frozen=True)
class Preview:
    """What is read back before an evaluation is recorded; problems block recording."""

    lines: list[str]
    problems: list[str]


def local_day(instant: datetime, rules: Rules) -> date:
    """The calendar date of an instant in the county."""
    return instant.astimezone(rules.tz).date()


async def round_of(conn: AsyncConnection, case_id: int) -> str:
    """'' in a case's first round of the procedure, ':round<n>' in its n-th (after n - 1
    returns by the committee): in the keys of the steps that come round again without a
    date in their key (report, approval), so each round's to-do is a to-do of its own."""
    returns = (
        await conn.execute(
            select(func.count())
            .select_from(case_events)
            .where(case_events.c.case_id == case_id, case_events.c.to_status == S.RETURNED)
        )
    ).scalar_one()
    return f":round{returns + 1}" if returns else ""


async def member_name(conn: AsyncConnection, case: Any) -> str:
    """The name of the member a case is about."""
    return str(
        (
            await conn.execute(select(people.c.name).where(people.c.id == case.person_id))
        ).scalar_one()
    )


async def branch_name(conn: AsyncConnection, branch_id: int | None) -> str:
    """A branch's name ('' when unknown)."""
    if branch_id is None:
        return ""
    name = (
        await conn.execute(select(organisations.c.name).where(organisations.c.id == branch_id))
    ).scalar()
    return str(name or "")


async def hands(conn: AsyncConnection, act: str, case: Any) -> list[int]:
    """Who gets the to-do for the next act on a case: everyone the authority policy lets
    make it (the branch's secretaries; in a branch whose only secretary is the member, the
    township's officers standing in; for the township's acts, its officers)."""
    return await people_able(conn, act, await case_subject(conn, case))


# --- democratic evaluation (支部民主评议) ------------------------------------------------------


async def start_evaluation(
    conn: AsyncConnection, *, case_id: int, secretary: Person, now: datetime
) -> None:
    """Open the evaluation (submitted → under_evaluation); already open is fine. The step's
    to-do stays with whoever may record it until it is recorded, so a meeting left half
    written down is never without an owner."""
    case = await load_case(conn, case_id)
    if case is not None and case.status == S.UNDER_EVALUATION:
        return
    case = await transition(
        conn, case_id=case_id, target=S.UNDER_EVALUATION, actor=secretary, channel="chat", now=now
    )
    await evaluation_todos(conn, case, now=now)


async def evaluation_todos(conn: AsyncConnection, case: Any, *, now: datetime) -> None:
    """A case under evaluation waits in the to-dos of those who may record the meeting."""
    name = await member_name(conn, case)
    for person_id in await hands(conn, "case.record_evaluation", case):
        await add_todo(
            conn,
            assignee_id=person_id,
            kind="evaluate",
            text=say("evaluating_todo", name=name),
            now=now,
            subject_id=case.person_id,
            case_id=case.id,
            key=f"case:{case.id}:evaluating:{now.isoformat()}:{person_id}",
        )


def evaluation_preview(answers: dict[str, Any], rules: Rules) -> Preview:
    """Check the meeting record for consistency and compute the result by the rule."""
    entitled, present = int(answers["entitled"]), int(answers["present"])
    votes = [int(answers[k]) for k in ("votes_for", "votes_against", "abstain")]
    problems = []
    if present > entitled:
        problems.append(say("problem_present", present=present, entitled=entitled))
    if sum(votes) > present:
        problems.append(say("problem_votes_sum", total=sum(votes), present=present))
    if present * 2 <= entitled:
        problems.append(say("problem_quorum", present=present, entitled=entitled))
    if str(answers["counter"]) == str(answers["scrutineer"]):
        problems.append(say("problem_same_person"))
    if problems:
        return Preview([], [*problems, say("problem_fix")])
    return Preview([_result_line(answers, rules)], [])


def _passed(answers: dict[str, Any], rules: Rules) -> bool:
    base = int(answers["entitled" if rules.evaluation_basis == "entitled" else "present"])
    return int(answers["votes_for"]) * 2 > base


def _result_line(answers: dict[str, Any], rules: Rules) -> str:
    base_key = "entitled" if rules.evaluation_basis == "entitled" else "present"
    base = int(answers[base_key])
    return say(
        "evaluation_summary",
        result=say("result_passed" if _passed(answers, rules) else "result_failed"),
        votes_for=answers["votes_for"],
        basis=say(f"evaluation_basis_{base_key}"),
        base=base,
        needed=base // 2 + 1,
    )


async def record_evaluation(
    conn: AsyncConnection,
    *,
    case_id: int,
    secretary: Person,
    answers: dict[str, Any],
    rules: Rules,
    now: datetime,
) -> str:
    """Record the meeting, apply the result, start the notice or tell the member kindly."""
    meeting = date.fromisoformat(answers["meeting_date"])
    case = await load_case(conn, case_id)
    applied = local_day(case.created_at, rules) if case is not None else meeting
    if meeting < applied:
        raise TransitionRefused(
            say(
                "meeting_before_application",
                meeting=chinese_date(meeting),
                applied=chinese_date(applied),
            ),
            "meeting before the application",
            fixable=True,
        )
    preview = evaluation_preview(answers, rules)
    if preview.problems:
        raise TransitionRefused(" ".join(preview.problems), "inconsistent evaluation")
    passed = _passed(answers, rules)
    target = S.EVALUATED_PASSED if passed else S.EVALUATED_FAILED
    case = await transition(
        conn,
        case_id=case_id,
        target=target,
        actor=secretary,
        channel="chat",
        now=now,
        reason=_result_line(answers, rules),
        expected=S.UNDER_EVALUATION,
    )
    photos = answers.get("photo") or []
    await conn.execute(
        insert(evaluations).values(
            case_id=case_id,
            meeting_date=meeting,
            entitled=answers["entitled"],
            present=answers["present"],
            supervisors=answers["supervisors"],
            counter=answers["counter"],
            scrutineer=answers["scrutineer"],
            votes_for=answers["votes_for"],
            votes_against=answers["votes_against"],
            abstain=answers["abstain"],
            minutes=answers["minutes"],
            photo_media_id=photos[0] if photos else None,
            passed=passed,
            rule=f"votes_for > half of {rules.evaluation_basis}",
            recorded_by=secretary.id,
            recorded_at=now,
        )
    )
    name = await member_name(conn, case)
    if not passed:
        await tell(
            conn,
            case.person_id,
            say("member_failed", result=_result_line(answers, rules)),
            key=f"case:{case_id}:failed",
            now=now,
            reason="evaluation failed",
            facts=decision_facts("fact_failed"),
        )
        return say("evaluation_recorded_failed", name=name)
    notice = await start_notice(conn, case_id=case_id, rules=rules, now=now)
    return "\n\n".join(
        [
            say(
                "evaluation_recorded_passed",
                name=name,
                start=chinese_date(notice["starts_on"]),
                end=chinese_date(notice["ends_on"]),
                place=notice["place"],
            ),
            notice["text"],
        ]
    )


# --- public notice (公示) and objections (异议) -------------------------------------------------


def notice_end(start: date, rules: Rules) -> date:
    """Last day of the notice: N calendar days, or N working days (Monday to Friday less
    the public holidays, plus the make-up days (调休) of the holidays file; a year the file
    does not hold is counted Monday to Friday, with a warning in the log)."""
    if not rules.notice_working_days:
        return start + timedelta(days=rules.notice_days - 1)
    return rules.holidays.nth_working_day(start, rules.notice_days)


async def start_notice(
    conn: AsyncConnection, *, case_id: int, rules: Rules, now: datetime
) -> dict[str, Any]:
    """Move to on_notice (by the system), write the printable notice, tell the member."""
    case = await transition(
        conn,
        case_id=case_id,
        target=S.ON_NOTICE,
        actor=None,
        role="system",
        channel="system",
        now=now,
    )
    start = local_day(now, rules)
    end = notice_end(start, rules)
    branch = await branch_name(conn, case.branch_id)
    name = await member_name(conn, case)
    text = say(
        "notice_text",
        branch=branch,
        name=name,
        size=case.household_size,
        help=case.help_wanted,
        start=chinese_date(start),
        end=chinese_date(end),
        contact=rules.complaints_contact,
        today=chinese_date(start),
    )
    notice = {
        "case_id": case_id,
        "starts_on": start,
        "ends_on": end,
        "place": say("notice_place", branch=branch),
        "text": text,
        "created_at": now,
    }
    await conn.execute(insert(public_notices).values(**notice))
    await tell(
        conn,
        case.person_id,
        say("member_passed", end=chinese_date(end)),
        key=f"case:{case_id}:passed",
        now=now,
        reason="evaluation passed",
        facts=decision_facts("fact_passed", detail=say("fact_notice_until", day=chinese_date(end))),
    )
    return notice


async def raise_objection(
    conn: AsyncConnection, *, person: Person, name: str, text: str, now: datetime
) -> str:
    """Anyone bound to the branch objects to a notice; the secretary gets a to-do."""
    candidates = (
        await conn.execute(
            select(cases.c.id, cases.c.status)
            .select_from(cases.join(people, people.c.id == cases.c.person_id))
            .where(people.c.name == name, cases.c.branch_id == person.branch_id)
            .order_by(cases.c.id.desc())
        )
    ).all()
    if not candidates:
        return say("objection_no_case", name=name)
    on_notice = [row for row in candidates if row.status == S.ON_NOTICE]
    if not on_notice:
        return say("objection_closed", name=name)
    case_id = on_notice[0].id
    case = await load_case(conn, case_id)
    check(TransitionRefused, "objection.raise", person, "member", await case_subject(conn, case))
    result = await conn.execute(
        insert(objections).values(case_id=case_id, raised_by=person.id, text=text, raised_at=now)
    )
    objection_id = inserted_id(result)
    for secretary_id in await hands(conn, "objection.resolve", case):
        await add_todo(
            conn,
            assignee_id=secretary_id,
            kind="objection",
            text=say("objection_todo", name=name, text=text),
            now=now,
            subject_id=None,
            case_id=case_id,
            key=f"objection:{objection_id}:{secretary_id}",
        )
    return say("objection_recorded")


async def notice_running(conn: AsyncConnection, *, branch_id: int) -> bool:
    """Whether a case of the branch is on public notice (异议 is for one of those)."""
    found = await conn.execute(
        select(cases.c.id)
        .where(cases.c.branch_id == branch_id, cases.c.status == S.ON_NOTICE)
        .limit(1)
    )
    return found.first() is not None


async def open_objection_for(conn: AsyncConnection, case_id: int) -> Any:
    """The oldest open objection of a case."""
    return (
        await conn.execute(
            select(objections)
            .where(objections.c.case_id == case_id, objections.c.resolved_at.is_(None))
            .order_by(objections.c.id)
        )
    ).first()


async def resolve_objection(
    conn: AsyncConnection, *, objection_id: int, secretary: Person, resolution: str, now: datetime
) -> str:
    """The secretary records how an objection was resolved; the objector is told."""
    row = (await conn.execute(select(objections).where(objections.c.id == objection_id))).first()
    if row is None:
        raise TransitionRefused(say("refused_no_case"), f"no objection {objection_id}")
    case = await load_case(conn, row.case_id)
    subject = await case_subject(conn, case)
    check(
        TransitionRefused,
        "objection.resolve",
        secretary,
        acting_role("objection.resolve", secretary, subject),
        subject,
    )
    resolved = await conn.execute(
        update(objections)
        .where(objections.c.id == objection_id, objections.c.resolved_at.is_(None))
        .values(resolution=resolution, resolved_by=secretary.id, resolved_at=now)
    )
    if resolved.rowcount != 1:
        raise TransitionRefused(
            await _resolved_by(conn, objection_id), f"objection {objection_id} resolved already"
        )
    # Every copy of the objection to-do closes once none is left open on the case: the other
    # secretaries need not look again.
    if await open_objection_for(conn, case.id) is None:
        await conn.execute(
            update(todos)
            .where(
                todos.c.case_id == case.id, todos.c.kind == "objection", todos.c.done_at.is_(None)
            )
            .values(done_at=now)
        )
    name = await member_name(conn, case)
    await tell(
        conn,
        row.raised_by,
        say("objection_answer", name=name, resolution=resolution),
        key=f"objection:{objection_id}:answer",
        now=now,
        reason="objection resolved",
    )
    return say("objection_resolved")


async def _resolved_by(conn: AsyncConnection, objection_id: int) -> str:
    """Who resolved an objection first, for the one who came second."""
    name = (
        await conn.execute(
            select(people.c.name)
            .select_from(objections.join(people, people.c.id == objections.c.resolved_by))
            .where(objections.c.id == objection_id)
        )
    ).scalar()
    return say("objection_resolved_by", name=name or say("someone_else"))


async def close_due_notices(conn: AsyncConnection, *, now: datetime, rules: Rules) -> int:
    """Scheduled: close notices past their last day without open objections; remind when
    one holds a case. Computed from stored dates, so a restart only catches up."""
    today = local_day(now, rules)
    due = (
        (
            await conn.execute(
                select(public_notices.c.case_id)
                .select_from(
                    public_notices.join(
                        cases,
                        and_(cases.c.id == public_notices.c.case_id, cases.c.status == S.ON_NOTICE),
                    )
                )
                .where(public_notices.c.ends_on < today, public_notices.c.closed_at.is_(None))
            )
        )
        .scalars()
        .all()
    )
    closed = 0
    for case_id in due:
        open_count = (
            await conn.execute(
                select(func.count())
                .select_from(objections)
                .where(objections.c.case_id == case_id, objections.c.resolved_at.is_(None))
            )
        ).scalar_one()
        case = await load_case(conn, case_id)
        name = await member_name(conn, case)
        if open_count:
            for secretary_id in await hands(conn, "objection.resolve", case):
                await tell(
                    conn,
                    secretary_id,
                    say("notice_held_reminder", name=name, count=open_count),
                    key=f"case:{case_id}:held:{today.isoformat()}",
                    now=now,
                    reason="notice held by an objection",
                )
            continue
        await transition(
            conn,
            case_id=case_id,
            target=S.NOTICE_CLOSED,
            actor=None,
            role="system",
            channel="system",
            now=now,
        )
        await conn.execute(
            update(public_notices).where(public_notices.c.case_id == case_id).values(closed_at=now)
        )
        again = await round_of(conn, case_id)
        for secretary_id in await hands(conn, "case.report", case):
            await add_todo(
                conn,
                assignee_id=secretary_id,
                kind="report",
                text=say("notice_closed_todo", name=name),
                now=now,
                subject_id=case.person_id,
                case_id=case_id,
                key=f"case:{case_id}:report{again}:{secretary_id}",
            )
        closed += 1
    return closed


# --- report, approval, filing -------------------------------------------------------------------


async def people_with_role(
    conn: AsyncConnection, role: str, *, committee_id: int | None = None
) -> list[int]:
    """People holding a role; committee officers only of one township when given."""
    query = (
        select(people.c.id)
        .select_from(
            people.join(
                person_roles,
                and_(person_roles.c.person_id == people.c.id, person_roles.c.role == role),
            )
        )
        .where(people.c.active.is_(True))
    )
    if committee_id is not None:
        branches = select(organisations.c.id).where(organisations.c.parent_id == committee_id)
        query = query.where(people.c.branch_id.in_(branches))
    return list((await conn.execute(query.order_by(people.c.id))).scalars())


async def report(
    conn: AsyncConnection, *, case_id: int, secretary: Person, note: str | None, now: datetime
) -> str:
    """支部上报党委: the township's committee officers get a to-do."""
    case = await transition(
        conn,
        case_id=case_id,
        target=S.REPORTED,
        actor=secretary,
        channel="chat",
        now=now,
        reason=note,
        expected=S.NOTICE_CLOSED,
    )
    name = await member_name(conn, case)
    branch = await branch_name(conn, case.branch_id)
    again = await round_of(conn, case_id)
    for officer in await hands(conn, "case.decide", case):
        await add_todo(
            conn,
            assignee_id=officer,
            kind="approve",
            text=say("report_todo", branch=branch, name=name),
            now=now,
            subject_id=case.person_id,
            case_id=case_id,
            key=f"case:{case_id}:approve{again}:{officer}",
        )
    return say("reported")


async def decide(
    conn: AsyncConnection,
    *,
    case_id: int,
    officer: Person,
    approve: bool,
    return_to: S | None,
    reason: str | None,
    now: datetime,
    channel: str = "chat",
) -> str:
    """党委审批: approve (the department gets a to-do) or return to a named step; `channel`
    is where it was decided (chat, web) for the audit."""
    if approve:
        case = await transition(
            conn,
            case_id=case_id,
            target=S.APPROVED,
            actor=officer,
            channel=channel,
            now=now,
            reason=reason,
            expected=S.REPORTED,
        )
        name = await member_name(conn, case)
        committee = await branch_name(conn, case.committee_id)
        for staff in await hands(conn, "case.file", case):
            await add_todo(
                conn,
                assignee_id=staff,
                kind="file",
                text=say("approved_todo", committee=committee, name=name),
                now=now,
                subject_id=case.person_id,
                case_id=case_id,
                key=f"case:{case_id}:file:{staff}",
            )
        await tell(
            conn,
            case.person_id,
            say("member_approved"),
            key=f"case:{case_id}:approved",
            now=now,
            reason="approved",
            facts=decision_facts("fact_approved"),
        )
        return say("approved")
    case = await transition(
        conn,
        case_id=case_id,
        target=S.RETURNED,
        actor=officer,
        channel=channel,
        now=now,
        reason=reason,
        return_to=return_to,
        expected=S.REPORTED,
    )
    name = await member_name(conn, case)
    step = say(f"return_step_{return_to}")
    for secretary_id in await hands(conn, "case.resume_returned", case):
        await add_todo(
            conn,
            assignee_id=secretary_id,
            kind="returned",
            text=say("returned_todo", name=name, step=step, reason=clause(reason or "")),
            now=now,
            subject_id=case.person_id,
            case_id=case_id,
            key=f"case:{case_id}:returned:{now.isoformat()}:{secretary_id}",
        )
    await tell(
        conn,
        case.person_id,
        say("returned_member", step=step),
        key=f"case:{case_id}:returned:{now.isoformat()}",
        now=now,
        reason="returned",
        facts=decision_facts("fact_returned", detail=step),
    )
    return say("returned")


async def resume_returned(
    conn: AsyncConnection, *, case_id: int, secretary: Person, now: datetime
) -> tuple[str, S]:
    """The secretary takes a returned case back to the step the committee named."""
    case = await load_case(conn, case_id)
    target = S(case.return_to or S.UNDER_EVALUATION)
    case = await transition(
        conn,
        case_id=case_id,
        target=target,
        actor=secretary,
        channel="chat",
        now=now,
        reason=say("reason_resumed_returned"),
    )
    if target == S.UNDER_EVALUATION:
        await evaluation_todos(conn, case, now=now)
    name = await member_name(conn, case)
    return say("resumed_returned", name=name, status=status_name(target)), target


async def file_case(
    conn: AsyncConnection,
    *,
    case_id: int,
    staff: Person,
    paired_cadre: str | None,
    channel: str,
    now: datetime,
    rules: Rules,
) -> str:
    """报县委组织部备案: filed, then the year's ledger entry opens (in_ledger)."""
    case = await transition(
        conn,
        case_id=case_id,
        target=S.FILED,
        actor=staff,
        role="department",
        channel=channel,
        now=now,
        expected=S.APPROVED,
    )
    year = local_day(now, rules).year
    answers = dict(case.answers or {})
    await conn.execute(
        insert(ledger_entries).values(
            person_id=case.person_id,
            year=year,
            case_id=case_id,
            category=case.category,
            causes=str(answers.get("category_other") or case.category),
            household=answers.get("household") or [],
            household_size=case.household_size,
            annual_income_fen=case.household_income_fen,
            situation=str(answers.get("situation") or ""),
            paired_cadre=paired_cadre,
            assistance=[],
            status="active",
            created_at=now,
        )
    )
    await transition(
        conn,
        case_id=case_id,
        target=S.IN_LEDGER,
        actor=None,
        role="system",
        channel="system",
        now=now,
        reason=say("reason_in_ledger", year=year),
    )
    await tell(
        conn,
        case.person_id,
        say("member_filed"),
        key=f"case:{case_id}:filed",
        now=now,
        reason="filed",
        facts=decision_facts("fact_filed"),
    )
    return say("filed", name=await member_name(conn, case), year=year)


async def reopen_for_evaluation(conn: AsyncConnection, *, case_id: int, now: datetime) -> None:
    """A case sent back for more material waits for a new evaluation: a to-do again."""
    case = await load_case(conn, case_id)
    name = await member_name(conn, case)
    for secretary_id in await hands(conn, "case.open_evaluation", case):
        await add_todo(
            conn,
            assignee_id=secretary_id,
            kind="evaluate",
            text=say("reevaluate_todo", name=name),
            now=now,
            subject_id=case.person_id,
            case_id=case_id,
            key=f"case:{case_id}:reevaluate:{now.isoformat()}:{secretary_id}",
        )


async def approved_cases(conn: AsyncConnection) -> list[Any]:
    """Cases waiting for the department to file them, oldest first."""
    return list(
        (
            await conn.execute(
                select(cases.c.id, people.c.name)
                .select_from(cases.join(people, people.c.id == cases.c.person_id))
                .where(cases.c.status == S.APPROVED)
                .order_by(cases.c.id)
            )
        ).all()
    )


async def file_all(
    conn: AsyncConnection, *, staff: Person, channel: str, now: datetime, rules: Rules
) -> str:
    """批量备案: file every approved case; one already handled elsewhere is skipped."""
    filed = 0
    for row in await approved_cases(conn):
        # Each case in its own savepoint: one refused (moved meanwhile, or the staff
        # member's own) leaves nothing of itself behind and does not stop the others.
        savepoint = await db.savepoint(conn)
        try:
            await file_case(
                conn,
                case_id=row.id,
                staff=staff,
                paired_cadre=None,
                channel=channel,
                now=now,
                rules=rules,
            )
        except TransitionRefused:
            await savepoint.rollback()
            continue
        await savepoint.commit()
        filed += 1
    return say("filed_all", count=filed)


async def minutes_text(conn: AsyncConnection, *, case_id: int, rules: Rules) -> str | None:
    """The printable record of a case's latest evaluation meeting."""
    row = (
        await conn.execute(
            select(evaluations)
            .where(evaluations.c.case_id == case_id)
            .order_by(evaluations.c.id.desc())
        )
    ).first()
    if row is None:
        return None
    case = await load_case(conn, case_id)
    recorder = (
        await conn.execute(select(people.c.name).where(people.c.id == row.recorded_by))
    ).scalar_one()
    return say(
        "minutes_text",
        branch=await branch_name(conn, case.branch_id),
        name=await member_name(conn, case),
        case_id=case_id,
        day=chinese_date(row.meeting_date),
        entitled=row.entitled,
        present=row.present,
        supervisors=row.supervisors,
        counter=row.counter,
        scrutineer=row.scrutineer,
        votes_for=row.votes_for,
        votes_against=row.votes_against,
        abstain=row.abstain,
        result=say("result_passed" if row.passed else "result_failed"),
        minutes=row.minutes,
        recorder=recorder,
        recorded=chinese_date(local_day(row.recorded_at, rules)),
    )


def decision_facts(phrase: str, detail: str = "") -> Facts:
    """A step decided on a member's application, as facts for the decision template (what,
    the result in ≤ 5 汉字, a detail; else the message's text)."""
    return Facts("decision", what=say("fact_application"), phrase=say(phrase), detail=detail)
