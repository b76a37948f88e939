"""通知 on the desk: notices sent and their delivery, the 报名 list (and its XLSX), and the
live audience preview of a draft, from the same plan `broadcasts.service.create` records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot import xlsx
from bangfu_bot.broadcasts.models import broadcast_recipients, broadcasts, signups
from bangfu_bot.broadcasts.service import audience_people, describe, plan_audience
from bangfu_bot.common.fields import mask_phone
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people
from bangfu_bot.members.roster import ROLE_NAMES
from bangfu_bot.notify.models import outbox
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = [
    "AudienceChoices",
    "AudiencePreview",
    "NoticePage",
    "NoticeReceipts",
    "NoticeRow",
    "Signup",
    "audience_choices",
    "audience_preview",
    "notice_list",
    "notice_one",
    "notice_receipts",
    "signup_list",
    "signups_xlsx",
]

say = speaker("bangfu_bot.reports")


@dataclass(frozen=True)
class NoticeRow:
    """A notice as the list shows it."""

    broadcast_id: int
    text: str
    audience: str
    audience_name: str
    training: bool
    status: str
    recipients: int
    signups: int
    author: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class NoticePage:
    """A page of notices, newest first, and how many there are."""

    total: int
    rows: tuple[NoticeRow, ...]


async def notice_list(session: AsyncSession, *, limit: int = 50, offset: int = 0) -> NoticePage:
    """Notices, newest first, with their sign-up counts (two queries)."""
    conn = await session.connection()
    total = await conn.scalar(select(func.count()).select_from(broadcasts))
    rows = (
        await conn.execute(
            _notices().order_by(broadcasts.c.id.desc()).limit(max(limit, 0)).offset(max(offset, 0))
        )
    ).all()
    return NoticePage(int(total or 0), tuple(_notice_row(row) for row in rows))


async def notice_one(session: AsyncSession, broadcast_id: int) -> NoticeRow | None:
    """One notice as the list shows it, or None when there is no such notice (one query)."""
    conn = await session.connection()
    row = (await conn.execute(_notices().where(broadcasts.c.id == broadcast_id))).first()
    return _notice_row(row) if row is not None else None


def _notices() -> Select[Any]:
    author = people.alias("author")
    counted = (
        select(signups.c.broadcast_id, func.count().label("signups"))
        .group_by(signups.c.broadcast_id)
        .subquery("counted")
    )
    return select(broadcasts, author.c.name.label("author_name"), counted.c.signups).select_from(
        broadcasts.outerjoin(author, author.c.id == broadcasts.c.author_id).outerjoin(
            counted, counted.c.broadcast_id == broadcasts.c.id
        )
    )


def _notice_row(row: Any) -> NoticeRow:
    return NoticeRow(
        broadcast_id=row.id,
        text=row.text,
        audience=row.audience,
        audience_name=describe(row.audience),
        training=bool(row.training),
        status=row.status,
        recipients=row.recipients,
        signups=int(row.signups or 0),
        author=row.author_name or say("system_actor"),
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@dataclass(frozen=True)
class NoticeReceipts:
    """How a notice went: recipients by channel (mass by openid list, tag, one by one
    through the outbox), what WeChat reported of the mass sends, and the one-by-one
    messages by outbox status (sent, delivered, failed …)."""

    broadcast_id: int
    status: str
    recipients: int
    by_channel: dict[str, int]
    mass_sent: int
    mass_errors: int
    one_by_one: dict[str, int]


async def notice_receipts(session: AsyncSession, broadcast_id: int) -> NoticeReceipts | None:
    """A notice's delivery receipts, or None when there is no such notice (three queries)."""
    conn = await session.connection()
    row = (await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).first()
    if row is None:
        return None
    channels = {
        channel: int(count)
        for channel, count in await conn.execute(
            select(broadcast_recipients.c.channel, func.count())
            .where(broadcast_recipients.c.broadcast_id == broadcast_id)
            .group_by(broadcast_recipients.c.channel)
        )
    }
    # The outbox rows of a notice are keyed broadcast:<id>:<openid> (broadcasts.service).
    prefix = f"broadcast:{broadcast_id}:"
    statuses = {
        status: int(count)
        for status, count in await conn.execute(
            select(outbox.c.status, func.count())
            .where(outbox.c.idempotency_key.startswith(prefix, autoescape=True))
            .group_by(outbox.c.status)
        )
    }
    return NoticeReceipts(
        broadcast_id, row.status, row.recipients, channels, row.mass_sent, row.mass_errors, statuses
    )


@dataclass(frozen=True)
class Signup:
    """A member who answered 报名."""

    person_id: int
    name: str
    phone: str
    branch: str
    township: str
    at: datetime


async def signup_list(
    session: AsyncSession,
    broadcast_id: int,
    *,
    unmasked: bool = False,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> tuple[Signup, ...]:
    """Who signed up for a training notice, in the order they did, within the scope (one
    query)."""
    conn = await session.connection()
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    rows = (
        await conn.execute(
            select(
                signups.c.person_id,
                signups.c.at,
                people.c.name,
                people.c.phone,
                branch.c.name.label("branch"),
                committee.c.name.label("township"),
            )
            .select_from(
                signups.join(people, people.c.id == signups.c.person_id)
                .outerjoin(branch, branch.c.id == people.c.branch_id)
                .outerjoin(committee, committee.c.id == branch.c.parent_id)
            )
            .where(
                signups.c.broadcast_id == broadcast_id,
                in_scope(people.c.branch_id, township_id=township_id, branch_id=branch_id),
            )
            .order_by(signups.c.at, signups.c.id)
        )
    ).all()
    return tuple(
        Signup(
            row.person_id,
            row.name,
            (row.phone or "") if unmasked else mask_phone(row.phone or ""),
            row.branch or "",
            row.township or "",
            row.at,
        )
        for row in rows
    )


async def signups_xlsx(
    session: AsyncSession,
    broadcast_id: int,
    *,
    out: BinaryIO,
    tz: ZoneInfo,
    unmasked: bool = True,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> int:
    """Write the 报名 list as XLSX (phones whole by default: the organisers call people;
    masked for a reader who does not call them), within the scope; the count."""
    people_in = await signup_list(
        session, broadcast_id, unmasked=unmasked, township_id=township_id, branch_id=branch_id
    )
    await asyncio.to_thread(_write_signups, broadcast_id, people_in, out, tz)
    return len(people_in)


def _write_signups(
    broadcast_id: int, people_in: tuple[Signup, ...], out: BinaryIO, tz: ZoneInfo
) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = say("signups_sheet")
    xlsx.append(sheet, [say("signups_title", id=broadcast_id, count=len(people_in))])
    xlsx.append(sheet, say("signups_headers").splitlines())
    for number, person in enumerate(people_in, start=1):
        xlsx.append(
            sheet,
            [
                number,
                person.name,
                person.township,
                person.branch,
                person.phone,
                person.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            ],
        )
    for column, width in zip("ABCDEF", (6, 10, 16, 16, 14, 17), strict=True):
        sheet.column_dimensions[column].width = width
    book.save(out)


@dataclass(frozen=True)
class AudiencePreview:
    """Before sending: the people in the audience, those bound to WeChat, how the bound
    will be reached (by the audience's tag or by openid list within the month's mass
    quota; one by one when over it), and those reachable only through their secretary
    (not bound). `tag` is the WeChat tag the send will try first, if the audience has
    one; the send still falls back to lists when the tag reaches anyone else."""

    audience: str
    audience_name: str
    people: int
    bound: int
    by_mass: int
    one_by_one: int
    through_secretary: int
    tag: str | None


async def audience_preview(
    session: AsyncSession, audience: str, *, now: datetime, tz: ZoneInfo
) -> AudiencePreview:
    """The live preview of a draft's audience, from the plan `create` records. An audience
    naming no known place raises broadcasts' AudienceError (its message is for the sender)."""
    conn = await session.connection()
    members = (await audience_people(conn, audience, year=now.astimezone(tz).year)).subquery()
    everyone = int(await conn.scalar(select(func.count()).select_from(members)) or 0)
    plan = await plan_audience(conn, audience, now=now, tz=tz)
    bound_people = len({recipient.person_id for recipient in plan.recipients})
    over = len(plan.over_quota)
    return AudiencePreview(
        audience=audience,
        audience_name=describe(audience),
        people=everyone,
        bound=bound_people,
        by_mass=len(plan.recipients) - over,
        one_by_one=over,
        through_secretary=everyone - bound_people,
        tag=plan.tag,
    )


@dataclass(frozen=True)
class AudienceChoices:
    """What a notice may be sent to, as broadcasts names audiences: the townships and
    branches by name (a branch with its township's), the roles, and the parts of the year's
    ledger categories (缺技术 of 缺技术、缺资金)."""

    townships: tuple[str, ...]
    branches: tuple[tuple[str, str], ...]
    roles: tuple[tuple[str, str], ...]
    categories: tuple[str, ...]


async def audience_choices(session: AsyncSession, *, year: int) -> AudienceChoices:
    """The audiences a notice may name this year (two queries)."""
    conn = await session.connection()
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    places = (
        await conn.execute(
            select(committee.c.name.label("township"), branch.c.name.label("branch"))
            .select_from(committee.outerjoin(branch, branch.c.parent_id == committee.c.id))
            .where(committee.c.kind == "committee")
            .order_by(committee.c.name, branch.c.name)
        )
    ).all()
    found = await conn.execute(
        select(ledger_entries.c.category)
        .distinct()
        .where(ledger_entries.c.year == year, ledger_entries.c.status == "active")
    )
    parts = {part for category in found.scalars() for part in str(category).split("、") if part}
    return AudienceChoices(
        townships=tuple(dict.fromkeys(row.township for row in places)),
        branches=tuple((row.township, row.branch) for row in places if row.branch is not None),
        roles=tuple(ROLE_NAMES.items()),
        categories=tuple(sorted(parts)),
    )
