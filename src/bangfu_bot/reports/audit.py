"""审计 on the desk: every transition of a case or a loan (chat, CLI, import and desk acts
alike: the desk's acts are transitions with channel `web`), and the department's county-wide
acts that move no case or loan — a notice sent, a roster imported on the desk, the year's
plan set — filterable, and the supervision group's XLSX in the CLI's audit workbook
(`ledger.export.write_audit`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, BinaryIO

from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.broadcasts.models import broadcasts
from bangfu_bot.broadcasts.service import describe
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.ledger.export import audit_label, write_audit
from bangfu_bot.loans.enums import LoanStatus
from bangfu_bot.loans.models import loan_events, loans
from bangfu_bot.members.models import people
from bangfu_bot.outcomes.models import year_plans
from bangfu_bot.reports.models import roster_uploads
from bangfu_bot.reports.money import status_name
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = ["AuditEntry", "AuditFile", "AuditFilter", "AuditPage", "audit_list", "audit_xlsx"]

say = speaker("bangfu_bot.reports")
SUBJECTS = ("case", "loan", "notice", "roster", "plan")
CHANNELS = ("chat", "web", "cli", "import", "system", "qrcode")
# The department's acts that move no case or loan: the subject and what was done.
DEPARTMENT_ACTS = {"notice": "sent", "roster": "imported", "plan": "set"}
# The acts a page may filter by: the status a case or a loan moved to, or a department act.
ACTS = frozenset(
    [f"case:{status}" for status in CaseStatus]
    + [f"loan:{status}" for status in LoanStatus]
    + [f"{subject}:{done}" for subject, done in DEPARTMENT_ACTS.items()]
)
ACTOR_LIMIT = 40  # longer than any name on the roster


@dataclass(frozen=True)
class AuditFilter:
    """What the audit is narrowed to (None: any). The actor is a person id, or part of a name
    taken literally (`%` and `_` are letters here); the act is the status moved to; the
    channel is chat, cli, import, web or system; [since, until) a time range; one case or
    loan; cases or loans only (`subject`); and the scope by the member's branch."""

    actor: int | str | None = None
    act: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    case_id: int | None = None
    loan_id: int | None = None
    subject: str | None = None
    township_id: int | None = None
    branch_id: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, tz: tzinfo) -> AuditFilter:
        """The filter a page's query string asks for. Dates are the county's calendar days
        (`until` included); the act is `case:STATUS` or `loan:STATUS` and says the subject;
        a value that is not one of the choices, or not a number where one is due, is
        ignored. The scope is not read from the query: the caller sets it from the viewer
        (a township chosen on the page is narrowed within it)."""
        act = query.get("act") or ""
        subject = query.get("kind") if query.get("kind") in SUBJECTS else None
        moved_to = None
        if act in ACTS:
            subject, moved_to = act.split(":", 1)
        since = _day(query.get("since"))
        until = _day(query.get("until"))
        actor = (query.get("actor") or "").strip()[:ACTOR_LIMIT] or None
        channel = query.get("channel")
        return cls(
            actor=actor,
            act=moved_to,
            channel=channel if channel in CHANNELS else None,
            since=None if since is None else datetime.combine(since, time(), tz),
            until=None
            if until is None
            else datetime.combine(until + timedelta(days=1), time(), tz),
            case_id=_number(query.get("case")),
            loan_id=_number(query.get("loan")),
            subject=subject,
            township_id=_number(query.get("township")),
        )

    def to_query(self, *, tz: tzinfo, **changes: str) -> dict[str, str]:
        """This filter as the query string `from_query` reads (with changes), for links."""
        values = {
            "since": "" if self.since is None else self.since.astimezone(tz).date().isoformat(),
            "until": ""
            if self.until is None
            else (self.until.astimezone(tz).date() - timedelta(days=1)).isoformat(),
            "actor": self.actor if isinstance(self.actor, str) else "",
            "act": f"{self.subject}:{self.act}" if self.act and self.subject else "",
            "kind": self.subject or "",
            "channel": self.channel or "",
            "case": "" if self.case_id is None else str(self.case_id),
            "loan": "" if self.loan_id is None else str(self.loan_id),
            "township": "" if self.township_id is None else str(self.township_id),
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value}


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _number(value: str | None) -> int | None:
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text) or None


@dataclass(frozen=True)
class AuditEntry:
    """One transition: of a case or a loan (`subject`, `subject_id`), whose (`member`), by
    whom (`actor`, None for the system), in which role, through which channel, from which
    status to which, with the reason given. Codes with their Chinese names beside them."""

    subject: str
    subject_id: int
    event_id: int
    at: datetime
    member: str
    actor_id: int | None
    actor: str
    role: str
    role_name: str
    channel: str
    channel_name: str
    from_status: str | None
    from_name: str
    to_status: str
    to_name: str
    reason: str


@dataclass(frozen=True)
class AuditPage:
    """A page of the audit, newest first, and how many transitions match in all."""

    total: int
    rows: tuple[AuditEntry, ...]


@dataclass(frozen=True)
class AuditFile:
    """What `audit_xlsx` wrote: how many rows."""

    rows: int


def _events(subject: str, filters: AuditFilter, subject_id: int | None) -> Any:
    """The transitions of cases or loans, as rows of one shape, filtered."""
    events, parents = (case_events, cases) if subject == "case" else (loan_events, loans)
    parent_id = events.c.case_id if subject == "case" else events.c.loan_id
    member = people.alias(f"{subject}_member")
    doer = people.alias(f"{subject}_actor")
    branch = (
        member.c.branch_id
        if subject == "case"
        else func.coalesce(loans.c.branch_id, member.c.branch_id)
    )
    query = (
        select(
            literal(subject).label("subject"),
            parent_id.label("subject_id"),
            events.c.id.label("event_id"),
            events.c.at,
            member.c.name.label("member"),
            events.c.actor_id,
            doer.c.name.label("actor"),
            events.c.role,
            events.c.channel,
            events.c.from_status,
            events.c.to_status,
            events.c.reason,
        )
        .select_from(
            events.join(parents, parents.c.id == parent_id)
            .join(member, member.c.id == parents.c.person_id)
            .outerjoin(doer, doer.c.id == events.c.actor_id)
        )
        .where(in_scope(branch, township_id=filters.township_id, branch_id=filters.branch_id))
    )
    actor = filters.actor
    if isinstance(actor, int):
        query = query.where(events.c.actor_id == actor)
    elif actor:
        query = query.where(doer.c.name.contains(actor, autoescape=True))
    if filters.act:
        query = query.where(events.c.to_status == filters.act)
    if filters.channel:
        query = query.where(events.c.channel == filters.channel)
    if filters.since is not None:
        query = query.where(events.c.at >= filters.since)
    if filters.until is not None:
        query = query.where(events.c.at < filters.until)
    if subject_id is not None:
        query = query.where(parent_id == subject_id)
    return query


def _department_acts(subject: str, filters: AuditFilter) -> Any:
    """A notice sent, a roster imported on the desk or a year's plan set, as rows of the
    transitions' shape: no member, no status moved from, the act as the status moved to."""
    if subject == "notice":
        table, at, actor_id = broadcasts, broadcasts.c.created_at, broadcasts.c.author_id
        channel: Any = broadcasts.c.channel
        reason: Any = broadcasts.c.audience
        done: Any = None
    elif subject == "roster":
        table, at, actor_id = (
            roster_uploads,
            roster_uploads.c.imported_at,
            roster_uploads.c.person_id,
        )
        channel = literal("web", String)
        reason = roster_uploads.c.result
        done = roster_uploads.c.imported_at.is_not(None)
    else:
        table, at, actor_id = year_plans, year_plans.c.set_at, year_plans.c.set_by
        channel = year_plans.c.channel
        reason = cast(year_plans.c.year, String)
        done = None
    doer = people.alias(f"{subject}_actor")
    query = select(
        literal(subject, String).label("subject"),
        table.c.id.label("subject_id"),
        table.c.id.label("event_id"),
        at.label("at"),
        literal("", String).label("member"),
        actor_id.label("actor_id"),
        doer.c.name.label("actor"),
        literal("department", String).label("role"),
        cast(channel, String).label("channel"),
        literal(None, String).label("from_status"),
        literal(DEPARTMENT_ACTS[subject], String).label("to_status"),
        cast(reason, String).label("reason"),
    ).select_from(table.outerjoin(doer, doer.c.id == actor_id))
    if done is not None:
        query = query.where(done)
    actor = filters.actor
    if isinstance(actor, int):
        query = query.where(actor_id == actor)
    elif actor:
        query = query.where(doer.c.name.contains(actor, autoescape=True))
    if filters.channel:
        query = query.where(channel == filters.channel)
    if filters.since is not None:
        query = query.where(at >= filters.since)
    if filters.until is not None:
        query = query.where(at < filters.until)
    return query


def _union(filters: AuditFilter) -> Any:
    """Case and loan transitions together (one of them when the subject, a case or a loan id
    says which); None when the filter can match nothing."""
    subject = filters.subject
    if subject not in (None, *SUBJECTS):
        return None
    parts: list[Any] = []
    if subject in (None, "case") and filters.loan_id is None:
        parts.append(_events("case", filters, filters.case_id))
    if subject in (None, "loan") and filters.case_id is None:
        parts.append(_events("loan", filters, filters.loan_id))
    county_wide = filters.township_id is None and filters.branch_id is None
    if county_wide and filters.case_id is None and filters.loan_id is None:
        # The department's acts are the county's: a township's or branch's audit has none.
        for act in DEPARTMENT_ACTS:
            if subject in (None, act) and filters.act in (None, DEPARTMENT_ACTS[act]):
                parts.append(_department_acts(act, filters))
    if not parts:
        return None
    together: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    return together.subquery("audit")


async def audit_list(
    session: AsyncSession,
    filters: AuditFilter = AuditFilter(),
    *,
    limit: int = 50,
    offset: int = 0,
) -> AuditPage:
    """Every transition of cases and loans that matches `filters`, newest first; a page of
    `limit` from `offset`, and the total. Two queries."""
    audit = _union(filters)
    if audit is None:
        return AuditPage(0, ())
    conn = await session.connection()
    total = await conn.scalar(select(func.count()).select_from(audit))
    rows = (
        await conn.execute(
            select(audit)
            .order_by(audit.c.at.desc(), audit.c.subject, audit.c.event_id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    return AuditPage(int(total or 0), tuple(_entry(row) for row in rows))


def _entry(row: Any) -> AuditEntry:
    def name(status: str | None) -> str:
        if status is None:
            return ""
        if row.subject == "case":
            return audit_label("case", status)
        if row.subject == "loan":
            return status_name(status)
        return say(f"audit_{row.subject}_{status}")

    reason = row.reason or ""
    if row.subject == "notice":  # the audience as the sender chose it
        reason = describe(reason)
    return AuditEntry(
        subject=row.subject,
        subject_id=row.subject_id,
        event_id=row.event_id,
        at=row.at,
        member=row.member,
        actor_id=row.actor_id,
        actor=row.actor or say("system_actor"),
        role=row.role,
        role_name=audit_label("role", row.role),
        channel=row.channel,
        channel_name=audit_label("channel", row.channel),
        from_status=row.from_status,
        from_name=name(row.from_status),
        to_status=row.to_status,
        to_name=name(row.to_status),
        reason=reason,
    )


async def audit_xlsx(
    session: AsyncSession,
    filters: AuditFilter = AuditFilter(),
    *,
    out: BinaryIO,
    tz: tzinfo,
) -> AuditFile:
    """Write the transitions that match `filters`, oldest first, as the CLI's audit workbook
    (审计记录; a loan's number is written as 借款N in the 案件编号 column). With
    `AuditFilter(subject="case")` it is `bangfu-bot export audit`'s workbook."""
    audit = _union(filters)
    rows: list[list[Any]] = []
    if audit is not None:
        conn = await session.connection()
        result = await conn.execute(
            select(audit).order_by(audit.c.at, audit.c.subject, audit.c.event_id)
        )
        for row in result:
            entry = _entry(row)
            rows.append(
                [
                    entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    entry.subject_id
                    if entry.subject == "case"
                    else say(f"audit_{entry.subject}_ref", id=entry.subject_id),
                    entry.member,
                    entry.actor,
                    entry.role_name,
                    entry.channel_name,
                    entry.from_name,
                    entry.to_name,
                    entry.reason,
                ]
            )
    await asyncio.to_thread(write_audit, rows, out)
    return AuditFile(len(rows))
