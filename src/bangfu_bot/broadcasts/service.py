"""Broadcasting a notice: resolve the audience, then mass-send within the platform's limit
of 4 mass messages a month per user; everyone over it gets the notice through the outbox
(customer-service, template, or their secretary). The mass call itself happens in the
dispatcher, never in the transaction that created the broadcast."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.authority import COUNTY_MATTER, Actor, Refused, check
from bangfu_bot.broadcasts import tags
from bangfu_bot.broadcasts.models import broadcast_recipients, broadcasts, signups
from bangfu_bot.clock import Clock
from bangfu_bot.common.dates import month_day
from bangfu_bot.common.fields import clip_text
from bangfu_bot.dbutil import chunked, inserted_id
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.roster import ROLE_NAMES
from bangfu_bot.notify.outbox import STALE_CLAIM, DeliveryRules
from bangfu_bot.notify.platform import NETWORK_ERRCODE, Platform, WeChatAPIError
from bangfu_bot.notify.queue import outbox_row, queue_messages
from bangfu_bot.notify.templates import sentence_facts
from bangfu_bot.texts import speaker

MASS_PER_MONTH = 4
MASS_CHANNELS = ("mass", "tag")  # the channels that count toward the month's four
NO_MASS_QUOTA = 45028  # a subscription account's one mass send a day is used
MASS_CHUNK = 10_000
INSERT_CHUNK = 5_000  # rows per multi-row insert
IN_LIST = 500  # openids per IN (...) list


say = speaker("bangfu_bot.broadcasts")
log = logging.getLogger(__name__)


class AudienceError(Refused):
    """The notice cannot go as asked (its audience names nobody, or it is too long);
    `message` is for the sender (Chinese), who may change the draft and send again."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message, reason, fixable=True)


# The longest notice: what the chat flow's text question allows (conversations/notice.toml,
# checked by a test), so a command-line notice cannot be longer than one typed in chat. With
# the 报名 line it still fits one mass text and one customer-service message.
MAX_TEXT = 500
# The most of a notice's first sentence a reply quotes (报名).
HEADLINE = 60


@dataclass(frozen=True)
class Recipient:
    """One bound WeChat user of a person in the audience."""

    person_id: int
    openid: str


def describe(audience: str) -> str:
    """An audience as the sender reads it."""
    kind, _, value = audience.partition(":")
    if kind == "role":
        value = ROLE_NAMES.get(value, value)
    return say(f"audience_{kind}", value=value)


async def audience_people(conn: AsyncConnection, audience: str, *, year: int) -> Any:
    """A query of the ids of the active people in the audience, bound or not (refused with
    AudienceError when it names no known township, branch, role or category)."""
    kind, _, value = audience.partition(":")
    query = select(people.c.id).where(people.c.active.is_(True))
    if kind == "township":
        committee = await _org_id(conn, "committee", value, say("kind_township"))
        branches = select(organisations.c.id).where(organisations.c.parent_id == committee)
        query = query.where(people.c.branch_id.in_(branches))
    elif kind == "branch":
        branch = await _org_id(conn, "branch", value, say("kind_branch"))
        query = query.where(people.c.branch_id == branch)
    elif kind == "role":
        if value not in ROLE_NAMES:
            raise AudienceError(say("unknown_place", value=value, kind=say("kind_role")))
        holders = select(person_roles.c.person_id).where(person_roles.c.role == value)
        query = query.where(people.c.id.in_(holders))
    elif kind == "category":
        members = select(ledger_entries.c.person_id).where(
            ledger_entries.c.year == year,
            ledger_entries.c.status == "active",
            ledger_entries.c.category.in_(await _categories_named(conn, value, year)),
        )
        query = query.where(people.c.id.in_(members))
    elif kind != "everyone":
        raise AudienceError(say("unknown_place", value=audience, kind=say("kind_audience")))
    return query


async def recipients(conn: AsyncConnection, audience: str, *, year: int) -> list[Recipient]:
    """Everyone in the audience who has bound their WeChat."""
    members = (await audience_people(conn, audience, year=year)).subquery("audience")
    query = select(bindings.c.person_id, bindings.c.openid).where(
        bindings.c.person_id.in_(select(members.c.id)), bindings.c.unbound_at.is_(None)
    )
    rows = (await conn.execute(query.order_by(bindings.c.person_id))).all()
    return [Recipient(row.person_id, row.openid) for row in rows]


@dataclass(frozen=True)
class AudiencePlan:
    """Who a notice to an audience goes to and how, as `create` decides it: the bound
    recipients, those of them over the month's mass quota (they get it one by one, through
    the outbox), the month counted, and the tag that may carry the mass send."""

    recipients: list[Recipient]
    over_quota: set[str]
    month: str
    tag: str | None


async def plan_audience(
    conn: AsyncConnection, audience: str, *, now: datetime, tz: ZoneInfo
) -> AudiencePlan:
    """The plan `create` records, and the desk's audience preview shows before sending."""
    people_in = await recipients(conn, audience, year=now.astimezone(tz).year)
    month = month_of(now, tz)
    used = await _mass_used(conn, [r.openid for r in people_in], month)
    over = {r.openid for r in people_in if used.get(r.openid, 0) >= MASS_PER_MONTH}
    return AudiencePlan(people_in, over, month, await _tag_of(conn, audience))


@dataclass(frozen=True)
class Reach:
    """How many people an audience names, and how many of them a notice can reach (those
    who have bound their WeChat)."""

    bound: int
    everyone: int


async def reach(conn: AsyncConnection, audience: str, *, year: int) -> Reach:
    """The audience's size and the part of it bound to WeChat (AudienceError as above)."""
    members = (await audience_people(conn, audience, year=year)).subquery("audience")
    everyone = (await conn.execute(select(func.count()).select_from(members))).scalar_one()
    bound = (
        await conn.execute(
            select(func.count(func.distinct(bindings.c.person_id))).where(
                bindings.c.person_id.in_(select(members.c.id)), bindings.c.unbound_at.is_(None)
            )
        )
    ).scalar_one()
    return Reach(bound=int(bound), everyone=int(everyone))


def body_of(text: str, *, training: bool) -> str:
    """The notice exactly as members read it: a training notice ends with how to sign up."""
    return text + (say("training_suffix") if training else "")


async def _categories_named(conn: AsyncConnection, name: str, year: int) -> list[str]:
    """The year's ledger categories that `name` names: a whole one, or one of its parts.
    The application's choices are pairs ("缺技术、缺资金"), and a department writing a
    training notice asks for "缺技术"."""
    found = await conn.execute(
        select(ledger_entries.c.category)
        .distinct()
        .where(ledger_entries.c.year == year, ledger_entries.c.status == "active")
    )
    return [
        category for category in found.scalars() if name == category or name in category.split("、")
    ]


async def _org_id(conn: AsyncConnection, kind: str, name: str, label: str) -> int:
    found = (
        await conn.execute(
            select(organisations.c.id).where(
                organisations.c.kind == kind, organisations.c.name == name
            )
        )
    ).scalar()
    if found is None:
        raise AudienceError(say("unknown_place", value=name, kind=label))
    return int(found)


def month_of(instant: datetime, tz: ZoneInfo) -> str:
    """YYYY-MM in the county (WeChat counts mass messages per calendar month)."""
    return instant.astimezone(tz).strftime("%Y-%m")


async def create(
    conn: AsyncConnection,
    *,
    author: Actor | None,
    text: str,
    audience: str,
    training: bool,
    now: datetime,
    tz: ZoneInfo,
    channel: str = "chat",
) -> tuple[int, int]:
    """Record a broadcast and who it goes to; returns (id, recipient count). `author`: the
    department staff member (None: the command line, as the system); `channel`: the front
    end it came through (chat, web, cli), kept for the audit."""
    check(
        AudienceError, "broadcast.send", author, "department" if author else "system", COUNTY_MATTER
    )
    author_id = author.id if author else None
    if not text.strip():
        raise AudienceError(say("empty_text"))
    if len(text) > MAX_TEXT:
        raise AudienceError(say("too_long", length=len(text), limit=MAX_TEXT))
    plan = await plan_audience(conn, audience, now=now, tz=tz)
    people_in = plan.recipients
    if not people_in:
        raise AudienceError(say("empty_audience", audience=describe(audience)))
    body = body_of(text, training=training)
    result = await conn.execute(
        insert(broadcasts).values(
            author_id=author_id,
            text=body,
            audience=audience,
            training=training,
            channel=channel,
            status="pending",
            recipients=len(people_in),
            mass_msg_ids="",
            mass_sent=0,
            mass_errors=0,
            created_at=now,
        )
    )
    broadcast_id = inserted_id(result)
    month = plan.month
    over = [r.openid for r in people_in if r.openid in plan.over_quota]
    outbox_ids = plan.over_quota
    await _insert_chunked(
        conn,
        broadcast_recipients,
        [
            {
                "broadcast_id": broadcast_id,
                "openid": r.openid,
                "person_id": r.person_id,
                "channel": "outbox" if r.openid in outbox_ids else "mass",
                "month": month,
            }
            for r in people_in
        ],
    )
    await _queue_notices(
        conn,
        broadcast_id,
        over,
        body,
        training=training,
        reason=f"broadcast {broadcast_id}, over the mass limit",
        now=now,
    )
    return broadcast_id, len(people_in)


async def _insert_chunked(
    conn: AsyncConnection, table: Table, rows: list[dict[str, object]]
) -> None:
    # Multi-row inserts: one statement per chunk, not one per person.
    for start in range(0, len(rows), INSERT_CHUNK):
        await conn.execute(insert(table), rows[start : start + INSERT_CHUNK])


async def _queue_notices(
    conn: AsyncConnection,
    broadcast_id: int,
    openids: list[str],
    body: str,
    *,
    training: bool,
    reason: str,
    now: datetime,
) -> None:
    """The notice through the outbox for each of `openids` (one key per broadcast and
    user, so a second write is ignored); outside the window the notice template shows its
    first sentence and whether it is a training."""
    facts = sentence_facts(
        "notice", body, phrase=say("fact_training" if training else "fact_notice")
    )
    await queue_messages(
        conn,
        [
            outbox_row(
                key=f"broadcast:{broadcast_id}:{openid}",
                openid=openid,
                kind="notice",
                content=body,
                reason=reason,
                now=now,
                facts=facts,
            )
            for openid in openids
        ],
    )


async def _mass_used(conn: AsyncConnection, openids: list[str], month: str) -> dict[str, int]:
    """How many mass messages each of `openids` was sent in `month`."""
    counted = (
        select(broadcast_recipients.c.openid, func.count())
        .where(
            broadcast_recipients.c.month == month, broadcast_recipients.c.channel.in_(MASS_CHANNELS)
        )
        .group_by(broadcast_recipients.c.openid)
    )
    if len(openids) <= IN_LIST:
        counted = counted.where(broadcast_recipients.c.openid.in_(openids))
        return {openid: int(count) for openid, count in await conn.execute(counted)}
    # A big audience: one pass over the month (the only index that helps is on month, so
    # each IN-list chunk would read the whole month again), keeping the audience's counts.
    wanted = set(openids)
    return {openid: int(count) for openid, count in await conn.execute(counted) if openid in wanted}


async def send_pending(
    engine: AsyncEngine, client: Platform, clock: Clock, rules: DeliveryRules
) -> int:
    """Make the mass calls of pending broadcasts (the leader's dispatcher runs this)."""
    now = clock.now()
    async with engine.begin() as conn:
        # A claim left by a process that died mid-send is taken up again: the clientmsgid of
        # each chunk makes WeChat refuse what was already sent (45065), so nothing goes twice.
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.status == "sending", broadcasts.c.sent_at < now - STALE_CLAIM)
            .values(status="pending")
        )
        pending = (
            (
                await conn.execute(
                    select(broadcasts.c.id)
                    .where(
                        broadcasts.c.status == "pending",
                        or_(broadcasts.c.not_before.is_(None), broadcasts.c.not_before <= now),
                    )
                    .order_by(broadcasts.c.id)
                )
            )
            .scalars()
            .all()
        )
    for broadcast_id in pending:
        await _send_one(engine, client, clock, rules, broadcast_id)
    return len(pending)


async def _send_one(
    engine: AsyncEngine, client: Platform, clock: Clock, rules: DeliveryRules, broadcast_id: int
) -> None:
    async with engine.begin() as conn:
        claimed = await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == "pending")
            .values(status="sending", sent_at=clock.now())
        )  # while sending: when claimed
        if claimed.rowcount != 1:
            return
        row = (await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).one()
    tag_id = row.tag_id if row.planned_at is not None else await _plan(engine, client, clock, row)
    async with engine.connect() as conn:
        planned = (
            await conn.execute(
                select(broadcast_recipients.c.openid, broadcast_recipients.c.channel)
                .where(
                    broadcast_recipients.c.broadcast_id == broadcast_id,
                    broadcast_recipients.c.channel.in_(MASS_CHANNELS),
                )
                .order_by(broadcast_recipients.c.openid)
            )
        ).all()
    by_tag = [openid for openid, channel in planned if channel == "tag"]
    by_list = [openid for openid, channel in planned if channel == "mass"]
    msg_ids: list[str] = []
    refused = 0
    if by_tag:  # the plan stores the tag with the people it covers, so tag_id is set
        refused = (
            await _send_by_tag(client, row, tag_id, msg_ids)
            if tag_id is not None
            else NETWORK_ERRCODE
        )
    if refused == NO_MASS_QUOTA:
        await _wait_for_tomorrow(engine, broadcast_id, clock, rules)
        return
    tag_failed = refused != 0
    if tag_failed:
        by_list = sorted(by_list + by_tag)  # the tag's people go by openid list instead
    fallback = await _send_by_lists(client, row, by_list, msg_ids)
    now = clock.now()
    async with engine.begin() as conn:
        if tag_failed:
            await _set_channel(conn, broadcast_id, by_tag, "mass")
        await _set_channel(conn, broadcast_id, fallback, "outbox")
        await _queue_notices(
            conn,
            broadcast_id,
            fallback,
            row.text,
            training=row.training,
            reason=f"broadcast {broadcast_id}, mass send not possible",
            now=now,
        )
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id)
            .values(status="sent", sent_at=now, mass_msg_ids=",".join(msg_ids))
        )


async def _plan(engine: AsyncEngine, client: Platform, clock: Clock, row: Row[Any]) -> int | None:
    """Choose, once, who goes by the audience's tag: its followers, when every one of them
    is in this broadcast's mass audience (else nobody: a tag must never reach someone the
    notice is not for). The choice is stored before any mass call, so a send taken up
    after a crash makes the same calls and WeChat refuses the repeats by clientmsgid."""
    covered: set[str] = set()
    tag_id = None
    async with engine.connect() as conn:
        name = await _tag_of(conn, row.audience)
        mass = set(
            (
                await conn.execute(
                    select(broadcast_recipients.c.openid).where(
                        broadcast_recipients.c.broadcast_id == row.id,
                        broadcast_recipients.c.channel == "mass",
                    )
                )
            ).scalars()
        )
    if name is not None and mass:
        try:
            # Brought in step, then read back: WeChat's list is what a send by tag reaches.
            found = (await tags.sync(engine, client, only=name)).ids.get(name)
            carrying = set(await client.tag_members(tag_id=found)) if found else set()
        except WeChatAPIError as error:
            log.warning(
                "broadcast %s: tag not usable (%s), sending by openid list", row.id, error.errcode
            )
            carrying = set()
        if carrying and carrying <= mass:
            tag_id, covered = found, carrying
    async with engine.begin() as conn:
        await _set_channel(conn, row.id, sorted(covered), "tag")
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == row.id)
            .values(tag_id=tag_id, planned_at=clock.now())
        )
    return tag_id


async def _tag_of(conn: AsyncConnection, audience: str) -> str | None:
    """The name of the tag that stands for an audience; None for a ledger category."""
    kind, _, value = audience.partition(":")
    if kind == "everyone":
        return tags.everyone_tag()
    if kind == "role" and value in ROLE_NAMES:
        return tags.role_tag(value)
    if kind in ("township", "branch"):
        org_kind = "committee" if kind == "township" else "branch"
        try:
            org_id = await _org_id(conn, org_kind, value, "")
        except AudienceError:
            return None
        return (await tags.org_tags(conn)).get(org_id)
    return None


async def _send_by_tag(client: Platform, row: Row[Any], tag_id: int, msg_ids: list[str]) -> int:
    """One mass send to the tag's followers; the errcode that refused it, or 0."""
    try:
        answer = await client.mass_send_by_tag(
            tag_id=tag_id, content=row.text, clientmsgid=f"bangfu-bc{row.id}-tag"
        )
    except WeChatAPIError as error:
        if error.errcode == 45065:
            return 0  # sent before a crash: WeChat already has it
        log.warning("broadcast %s: send by tag failed (%s)", row.id, error.errcode)
        return error.errcode
    msg_ids.append(str(answer.get("msg_id", "")))
    return 0


async def _wait_for_tomorrow(
    engine: AsyncEngine, broadcast_id: int, clock: Clock, rules: DeliveryRules
) -> None:
    """A subscription account may mass-send once a day (45028): the notice goes again
    tomorrow when quiet hours end, by the same plan, rather than one by one through the
    outbox, which would end as a to-do for every secretary."""
    local = clock.now().astimezone(rules.tz)
    morning = datetime.combine(local.date() + timedelta(days=1), rules.quiet_start, tzinfo=rules.tz)
    async with engine.begin() as conn:
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id)
            .values(status="pending", not_before=morning)
        )


async def _send_by_lists(
    client: Platform, row: Row[Any], openids: list[str], msg_ids: list[str]
) -> list[str]:
    """Mass sends by openid list, 10,000 a call; returns those it could not reach."""
    fallback = []
    for number, start in enumerate(range(0, len(openids), MASS_CHUNK)):
        chunk = openids[start : start + MASS_CHUNK]
        if len(chunk) < 2:  # the platform's openid mass send needs two at least
            fallback.extend(chunk)
            continue
        try:
            # clientmsgid makes a retry after a crash a duplicate WeChat refuses (45065).
            answer = await client.mass_send_to_openids(
                openids=chunk, content=row.text, clientmsgid=f"bangfu-bc{row.id}-{number}"
            )
            msg_ids.append(str(answer.get("msg_id", "")))
        except WeChatAPIError as error:
            if error.errcode == 45065:
                continue  # sent before a crash: WeChat already has it
            fallback.extend(chunk)
    return fallback


async def _set_channel(
    conn: AsyncConnection, broadcast_id: int, openids: list[str], channel: str
) -> None:
    for chunk in chunked(openids, IN_LIST):
        await conn.execute(
            update(broadcast_recipients)
            .where(
                broadcast_recipients.c.broadcast_id == broadcast_id,
                broadcast_recipients.c.openid.in_(chunk),
            )
            .values(channel=channel)
        )


async def mass_finished(conn: AsyncConnection, *, msg_id: str, sent: int, errors: int) -> None:
    """A MASSSENDJOBFINISH receipt: add its counts to the broadcast it belongs to."""
    rows = (await conn.execute(select(broadcasts.c.id, broadcasts.c.mass_msg_ids))).all()
    for row in rows:
        if msg_id and msg_id in row.mass_msg_ids.split(","):
            await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == row.id)
                .values(
                    mass_sent=broadcasts.c.mass_sent + sent,
                    mass_errors=broadcasts.c.mass_errors + errors,
                )
            )
            return


async def latest_report(conn: AsyncConnection, tz: ZoneInfo) -> str | None:
    """How the latest notice went, for 发送情况: by which way it reached how many, and what
    WeChat reported back (None when no notice was sent yet)."""
    row = (await conn.execute(select(broadcasts).order_by(broadcasts.c.id.desc()).limit(1))).first()
    if row is None:
        return None
    return say(
        "report",
        id=row.id,
        audience=describe(row.audience),
        count=row.recipients,
        state=await _state(conn, row, tz),
    )


async def _state(conn: AsyncConnection, row: Row[Any], tz: ZoneInfo) -> str:
    if row.status != "sent":
        if row.not_before is None:
            return say("report_pending")
        local = row.not_before.astimezone(tz)
        return say("report_waiting", day=f"{month_day(local)}{local:%H:%M}")
    ways: dict[str, int] = dict(
        (
            await conn.execute(
                select(broadcast_recipients.c.channel, func.count())
                .where(broadcast_recipients.c.broadcast_id == row.id)
                .group_by(broadcast_recipients.c.channel)
            )
        ).all()
    )
    return say(
        "report_sent",
        tag=ways.get("tag", 0),
        mass=ways.get("mass", 0),
        outbox=ways.get("outbox", 0),
        delivered=row.mass_sent,
        failed=row.mass_errors,
    )


def headline(text: str) -> str:
    """What a notice is about, in a reply: its first sentence, whole; a first sentence too
    long for a reply is cut at a clause end and marked as cut."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    ends = [first.find(mark) for mark in "。！？!?" if mark in first]
    sentence = first[: min(ends) + 1] if ends else first
    kept, cut = clip_text(sentence, HEADLINE)
    return kept + say("headline_cut") if cut else kept


async def sign_up(conn: AsyncConnection, *, person_id: int, now: datetime) -> str:
    """报名: sign up for the latest training notice this person received (30 days)."""
    latest = (
        await conn.execute(
            select(broadcasts.c.id, broadcasts.c.text)
            .select_from(
                broadcasts.join(
                    broadcast_recipients, broadcast_recipients.c.broadcast_id == broadcasts.c.id
                )
            )
            .where(
                broadcasts.c.training.is_(True),
                broadcast_recipients.c.person_id == person_id,
                broadcasts.c.created_at > now - timedelta(days=30),
            )
            .order_by(broadcasts.c.id.desc())
        )
    ).first()
    if latest is None:
        return say("nothing_to_sign_up")
    exists = (
        await conn.execute(
            select(signups.c.id).where(
                signups.c.broadcast_id == latest.id, signups.c.person_id == person_id
            )
        )
    ).first()
    if exists is not None:
        return say("already_signed_up")
    await conn.execute(insert(signups).values(broadcast_id=latest.id, person_id=person_id, at=now))
    return say("signed_up", text=headline(latest.text))


async def signup_list(conn: AsyncConnection, broadcast_id: int | None = None) -> str:
    """The sign-ups of a training notice (the latest when none is named)."""
    if broadcast_id is None:
        broadcast_id = (
            await conn.execute(
                select(func.max(broadcasts.c.id)).where(broadcasts.c.training.is_(True))
            )
        ).scalar()
    if broadcast_id is None:
        return say("nothing_to_sign_up")
    names = (
        (
            await conn.execute(
                select(people.c.name)
                .select_from(signups.join(people, people.c.id == signups.c.person_id))
                .where(signups.c.broadcast_id == broadcast_id)
                .order_by(signups.c.id)
            )
        )
        .scalars()
        .all()
    )
    return "\n".join([say("signups_header", id=broadcast_id, count=len(names)), *names])


async def training_open(conn: AsyncConnection, *, person_id: int, now: datetime) -> bool:
    """Whether the person received a training notice in the last 30 days (报名 is offered)."""
    found = await conn.execute(
        select(broadcasts.c.id)
        .select_from(
            broadcasts.join(
                broadcast_recipients, broadcast_recipients.c.broadcast_id == broadcasts.c.id
            )
        )
        .where(
            broadcasts.c.training.is_(True),
            broadcast_recipients.c.person_id == person_id,
            broadcasts.c.created_at > now - timedelta(days=30),
        )
        .limit(1)
    )
    return found.first() is not None
