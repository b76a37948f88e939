"""WeChat tags (标签) kept in step with the organisation tree and the roles, so that a notice
to everyone, a township, a branch or a role can go out as one mass send by tag, which a
subscription account can make too (it has no mass send by openid list).

The platform is the record of who carries a tag: a sync reads each tag's followers from
WeChat (user/tag/get) and tags or untags the difference from what the roster says, so a tag
edited by hand in the console is put right at the next sync, and the send path checks the
platform's own list rather than a copy of it. Our tags are those whose names start with the
prefix in messages.toml (帮扶·); tags staff made themselves are never touched.

The platform's limits: 100 tags an account (45056), 20 a user (45059), names of at most 30
bytes (45158), 50 users a tagging call, followers only (40003: we tag only those we have
seen follow, and note who turns out to have left). When tags run out, the narrowest
audiences (branches, by id) go without one and are sent by openid list.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.dbutil import chunked
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.roster import ROLE_NAMES
from bangfu_bot.notify.models import wechat_users
from bangfu_bot.notify.platform import TAGGING_BATCH, Platform, WeChatAPIError
from bangfu_bot.texts import speaker

log = logging.getLogger(__name__)
say = speaker("bangfu_bot.broadcasts")

MAX_TAGS = 100  # an account's tags, the platform's three system tags not counted
NAME_MAX_BYTES = 30
CALLS_AT_ONCE = 8  # tagging calls in flight during a sync
# Per-user refusals: the user is at 20 tags, or no longer follows. A batch holding one such
# user fails whole, so it is tagged again one user at a time.
NOT_FOLLOWING = 40003
USER_REFUSALS = frozenset({45059, NOT_FOLLOWING})
TOO_MANY_TAGS, NAME_TAKEN = 45056, 45157
# At most this many users a sync are tried one by one. Each refused one is noted (not
# following) or retried next time, so a county whose followers were lost wholesale (a new
# account, an unfollowing we never heard of) costs a bounded number of calls an hour.
ALONE_PER_SYNC = 500


def prefix() -> str:
    """What every tag of ours begins with."""
    return say("tag_prefix")


def everyone_tag() -> str:
    """The tag of every bound member."""
    return prefix() + say("tag_everyone")


def role_tag(role: str) -> str:
    """The tag of a role's holders, e.g. 帮扶·支部书记."""
    return prefix() + ROLE_NAMES[role]


def _fits(name: str) -> bool:
    return len(name.encode("utf-8")) <= NAME_MAX_BYTES


async def org_tags(conn: AsyncConnection) -> dict[int, str]:
    """The tag name of each township committee and branch. A name that another
    organisation shares, or that would pass 30 bytes, is shortened and given its id
    (帮扶·新村党支#12), so no two organisations ever share a tag."""
    rows = (
        await conn.execute(
            select(organisations.c.id, organisations.c.name).where(
                organisations.c.kind.in_(("committee", "branch"))
            )
        )
    ).all()
    uses: defaultdict[str, int] = defaultdict(int)
    for row in rows:
        uses[row.name] += 1
    names = {}
    for row in rows:
        name = prefix() + row.name
        if uses[row.name] > 1 or not _fits(name):
            name = _numbered(row.name, row.id)
        names[int(row.id)] = name
    return names


def _numbered(org_name: str, org_id: int) -> str:
    suffix = f"#{org_id}"
    name = org_name
    while not _fits(prefix() + name + suffix):
        name = name[:-1]
    return prefix() + name + suffix


async def wanted(conn: AsyncConnection) -> dict[str, set[str]]:
    """Each tag of ours and the openids that should carry it, most general first (the
    order tags are made in when the account runs short of them)."""
    branch, committee = organisations.alias("branch"), organisations.alias("committee")
    found = await conn.execute(
        select(
            people.c.id,
            bindings.c.openid,
            branch.c.id.label("branch_id"),
            committee.c.id.label("committee_id"),
        )
        .select_from(
            people.join(
                bindings, and_(bindings.c.person_id == people.c.id, bindings.c.unbound_at.is_(None))
            )
            .outerjoin(branch, branch.c.id == people.c.branch_id)
            .outerjoin(
                committee,
                and_(committee.c.id == branch.c.parent_id, committee.c.kind == "committee"),
            )
            # Only followers can carry a tag (40003 otherwise): those we have
            # seen follow or write, and not unfollow since. Someone bound from an
            # import who never wrote is reached by openid list instead.
            .join(
                wechat_users,
                and_(
                    wechat_users.c.openid == bindings.c.openid, wechat_users.c.subscribed.is_(True)
                ),
            )
        )
        .where(people.c.active.is_(True))
    )
    openids_of: defaultdict[int, list[str]] = defaultdict(list)
    everyone, by_org, townships = set(), defaultdict(set), set()
    for row in found:
        openids_of[row.id].append(row.openid)
        everyone.add(row.openid)
        if row.committee_id is not None:
            townships.add(int(row.committee_id))
        for org_id in (row.committee_id, row.branch_id):
            if org_id is not None:
                by_org[int(org_id)].add(row.openid)
    by_role: defaultdict[str, set[str]] = defaultdict(set)
    roles = await conn.execute(select(person_roles.c.person_id, person_roles.c.role))
    for person_id, role in roles:
        if role in ROLE_NAMES and person_id in openids_of:
            by_role[role].update(openids_of[person_id])
    names = await org_tags(conn)
    result = {everyone_tag(): everyone} if everyone else {}
    result.update((role_tag(role), by_role[role]) for role in ROLE_NAMES if by_role[role])
    # Townships before branches: a township tag serves more notices than a branch's.
    for township in (True, False):
        result.update(
            (names[org_id], by_org[org_id])
            for org_id in sorted(by_org)
            if (org_id in townships) == township and org_id in names
        )
    return result


@dataclass
class SyncReport:
    """What a sync changed on the platform."""

    ids: dict[str, int] = field(default_factory=dict)  # every tag on the account, by name
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    without_room: list[str] = field(default_factory=list)  # no tag left on the account
    tagged: int = 0
    untagged: int = 0
    refused: int = 0  # users the platform would not tag (at 20 tags, or not following)
    not_following: list[str] = field(default_factory=list)  # unfollowed unheard of
    tried_alone: int = 0  # users tagged one by one after their batch was refused
    left_for_later: int = 0  # in refused batches past that bound
    failed_calls: int = 0  # left for the next sync

    def __str__(self) -> str:
        return (
            f"tags: {len(self.created)} created, {len(self.deleted)} deleted, "
            f"{len(self.without_room)} without room; {self.tagged} tagged, "
            f"{self.untagged} untagged, {self.refused} refused, "
            f"{self.failed_calls} calls failed, {self.left_for_later} left for later"
        )


async def sync(engine: AsyncEngine, client: Platform, *, only: str | None = None) -> SyncReport:
    """Bring our tags in step with the roster: make missing ones, tag and untag the
    difference, delete ours that nobody should carry. `only` limits it to one tag (the
    send path brings the audience's tag in step just before using it)."""
    async with engine.connect() as conn:
        want = await wanted(conn)
    report = SyncReport()
    if only is not None:
        want = {only: want[only]} if only in want else {}
    if not want and only is not None:
        return report
    ours = await _existing(client)
    report.ids = ours.ids
    await _create_missing(client, want, ours, report)
    calls = asyncio.Semaphore(CALLS_AT_ONCE)
    for name, openids in want.items():
        if name in ours.ids:
            await _align(client, ours.ids[name], openids, report, calls)
    if only is None:
        await _delete_unwanted(client, want, ours, report)
    await _note_gone(engine, sorted(set(report.not_following)))
    if report.created or report.deleted or report.tagged or report.untagged:
        log.info("%s", report)
    return report


async def _note_gone(engine: AsyncEngine, openids: list[str]) -> None:
    """Users the platform says do not follow: we missed their unfollowing. Noted, so the
    next sync does not try them again (a follow or a message marks them following)."""
    if not openids:
        return
    async with engine.begin() as conn:
        for chunk in chunked(openids, 500):
            await conn.execute(
                update(wechat_users)
                .where(wechat_users.c.openid.in_(chunk))
                .values(subscribed=False)
            )


@dataclass
class _Tags:
    ids: dict[str, int]  # name -> id, every tag on the account
    count: int


async def _existing(client: Platform) -> _Tags:
    tags = await client.get_tags()
    return _Tags({str(tag["name"]): int(tag["id"]) for tag in tags}, len(tags))


async def _create_missing(
    client: Platform, want: dict[str, set[str]], ours: _Tags, report: SyncReport
) -> None:
    missing = [name for name in want if name not in ours.ids]
    for position, name in enumerate(missing):
        if ours.count >= MAX_TAGS:
            report.without_room.extend(missing[position:])
            return
        try:
            ours.ids[name] = await client.create_tag(name=name)
        except WeChatAPIError as error:
            if error.errcode == TOO_MANY_TAGS:
                report.without_room.extend(missing[position:])
                return
            if error.errcode != NAME_TAKEN:
                raise
            # Made by a sync whose answer was lost, or by hand meanwhile: use it.
            found = (await _existing(client)).ids.get(name)
            if found is None:
                raise
            ours.ids[name] = found
            continue
        ours.count += 1
        report.created.append(name)


async def _align(
    client: Platform, tag_id: int, openids: set[str], report: SyncReport, calls: asyncio.Semaphore
) -> None:
    carrying = set(await client.tag_members(tag_id=tag_id))
    add, remove = sorted(openids - carrying), sorted(carrying - openids)
    await asyncio.gather(
        *(
            _tag(client, tag_id, list(chunk), report, calls, untag=False)
            for chunk in chunked(add, TAGGING_BATCH)
        ),
        *(
            _tag(client, tag_id, list(chunk), report, calls, untag=True)
            for chunk in chunked(remove, TAGGING_BATCH)
        ),
    )


async def _tag(
    client: Platform,
    tag_id: int,
    openids: list[str],
    report: SyncReport,
    calls: asyncio.Semaphore,
    *,
    untag: bool,
) -> None:
    try:
        async with calls:
            await client.tag_batch(tag_id=tag_id, openids=openids, untag=untag)
    except WeChatAPIError as error:
        if error.errcode in USER_REFUSALS and len(openids) > 1:
            if report.tried_alone + len(openids) > ALONE_PER_SYNC:
                report.left_for_later += len(openids)  # many refused: bounded per sync
                return
            report.tried_alone += len(openids)
            for openid in openids:  # find the one the platform refuses; tag the others
                await _tag(client, tag_id, [openid], report, calls, untag=untag)
            return
        if error.errcode in USER_REFUSALS:
            report.refused += 1
            if error.errcode == NOT_FOLLOWING:
                report.not_following.append(openids[0])
        else:
            report.failed_calls += 1  # busy, rate limit, network: the next sync retries
        return
    if untag:
        report.untagged += len(openids)
    else:
        report.tagged += len(openids)


async def _delete_unwanted(
    client: Platform, want: dict[str, set[str]], ours: _Tags, report: SyncReport
) -> None:
    # A renamed organisation, or one nobody bound belongs to any more. Deleting frees the
    # account's tag room; the tag is made again when someone needs it.
    for name, tag_id in ours.ids.items():
        if name.startswith(prefix()) and name not in want:
            try:
                await client.delete_tag(tag_id=tag_id)
            except WeChatAPIError:
                report.failed_calls += 1
                continue
            report.deleted.append(name)
