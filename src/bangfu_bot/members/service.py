"""Who is writing: bindings between WeChat users and people on the roster (绑定)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import BY_NAME, Scope, Subject, able
from bangfu_bot.dbutil import in_list, rows_in
from bangfu_bot.group_commit import UNKNOWN, Kind, UnitOfWork
from bangfu_bot.members.models import (
    binding_attempts,
    binding_tickets,
    bindings,
    organisations,
    people,
    person_roles,
)

MAX_FAILURES = 5
LOCK_WINDOW = timedelta(hours=1)
NAME_MAX = 40  # people.name: a longer name matches nobody


@dataclass(frozen=True)
class Person:
    """A person on the roster, with what the bot needs to know about them."""

    id: int
    name: str
    roles: frozenset[str]
    branch_id: int | None
    branch_name: str | None
    committee_id: int | None
    committee_name: str | None
    urban_rural: str | None
    joined_on: date | None

    def has(self, role: str) -> bool:
        """Whether the person holds a role."""
        return role in self.roles


_BRANCH = organisations.alias("branch")
_COMMITTEE = organisations.alias("committee")
# Built once: an aliased join costs more CPU to build than to run from the compiled cache.
_PERSON = (
    select(
        people.c.id,
        people.c.name,
        people.c.branch_id,
        people.c.urban_rural,
        people.c.joined_on,
        _BRANCH.c.name.label("branch_name"),
        _COMMITTEE.c.id.label("committee_id"),
        _COMMITTEE.c.name.label("committee_name"),
    )
    .select_from(
        people.outerjoin(_BRANCH, _BRANCH.c.id == people.c.branch_id).outerjoin(
            _COMMITTEE, _COMMITTEE.c.id == _BRANCH.c.parent_id
        )
    )
    .where(people.c.active.is_(True))
)
_BOUND = and_(bindings.c.person_id == people.c.id, bindings.c.unbound_at.is_(None))
# Who each WeChat user of a batch is, by openid (None: bound to nobody); read from these
# tables, so a write to any of them drops it (see group_commit).
PEOPLE: Kind[Person | None] = Kind(
    "person", tables=("people", "bindings", "person_roles", "organisations")
)


@lru_cache(maxsize=16)
def _people_of(size: int) -> Any:
    """People bound to the openids, a row per role (roles joined in: one query a batch)."""
    return (
        _PERSON.add_columns(bindings.c.openid, person_roles.c.role)
        .join_from(people, bindings, _BOUND)
        .outerjoin(person_roles, person_roles.c.person_id == people.c.id)
        .where(in_list(bindings.c.openid, size))
        .order_by(bindings.c.id)
    )


def _person(row: Any, roles: Iterable[str]) -> Person:
    return Person(
        id=row.id,
        name=row.name,
        roles=frozenset(roles),
        branch_id=row.branch_id,
        branch_name=row.branch_name,
        committee_id=row.committee_id,
        committee_name=row.committee_name,
        urban_rural=row.urban_rural,
        joined_on=row.joined_on,
    )


async def person_by_id(conn: AsyncConnection, person_id: int) -> Person | None:
    """Load a person with their roles, branch and committee."""
    row = (await conn.execute(_PERSON.where(people.c.id == person_id))).first()
    if row is None:
        return None
    roles = (
        await conn.execute(select(person_roles.c.role).where(person_roles.c.person_id == person_id))
    ).scalars()
    return _person(row, roles)


async def person_for_openid(
    conn: AsyncConnection, openid: str, uow: UnitOfWork | None = None
) -> Person | None:
    """The person bound to this WeChat user, if any (as `uow` prefetched it, if it did)."""
    if uow is not None:
        known = uow.get(PEOPLE, openid)
        if known is not UNKNOWN:
            return known
    person_id = (
        await conn.execute(
            select(bindings.c.person_id).where(
                bindings.c.openid == openid, bindings.c.unbound_at.is_(None)
            )
        )
    ).scalar()
    return await person_by_id(conn, person_id) if person_id is not None else None


async def prefetch_people(uow: UnitOfWork) -> None:
    """Who every user in the batch is: one query for the whole batch."""
    openids = list({hint.openid for hint in uow.hints if hint.openid})
    found: dict[str, Person | None] = dict.fromkeys(openids)
    rows = await rows_in(uow.conn, _people_of, openids)  # by binding id within each openid
    roles: dict[int, list[str]] = {}
    for row in rows:
        if row.role is not None:
            roles.setdefault(row.id, []).append(row.role)
    for row in rows:  # the first active binding, as person_for_openid takes
        if found[row.openid] is None:
            found[row.openid] = _person(row, roles.get(row.id, ()))
    uow.fill(PEOPLE, found)


async def openids_of(conn: AsyncConnection, person_id: int) -> list[str]:
    """The WeChat users bound to a person now."""
    rows = await conn.execute(
        select(bindings.c.openid).where(
            bindings.c.person_id == person_id, bindings.c.unbound_at.is_(None)
        )
    )
    return list(rows.scalars())


async def binding_locked(conn: AsyncConnection, openid: str, now: datetime) -> bool:
    """Five failed tries within the last hour lock binding for this WeChat user."""
    failures = (
        await conn.execute(
            select(func.count())
            .select_from(binding_attempts)
            .where(
                binding_attempts.c.openid == openid,
                binding_attempts.c.succeeded.is_(False),
                binding_attempts.c.at > now - LOCK_WINDOW,
            )
        )
    ).scalar_one()
    return failures >= MAX_FAILURES


async def name_locked(conn: AsyncConnection, name: str, now: datetime) -> bool:
    """Five failed tries against this name within the last hour, from any WeChat users,
    lock binding to it (whoever it names: a name on nobody is locked alike, so the answer
    tells nothing about the roster)."""
    failures = (
        await conn.execute(
            select(func.count())
            .select_from(binding_attempts)
            .where(
                binding_attempts.c.name == name[:NAME_MAX],
                binding_attempts.c.succeeded.is_(False),
                binding_attempts.c.at > now - LOCK_WINDOW,
            )
        )
    ).scalar_one()
    return failures >= MAX_FAILURES


async def find_by_name_and_id_tail(conn: AsyncConnection, name: str, id_tail: str) -> int | None:
    """The one active person with this name whose ID number ends with `id_tail`."""
    matches = (
        (
            await conn.execute(
                select(people.c.id).where(
                    people.c.name == name,
                    people.c.active.is_(True),
                    func.upper(func.substr(people.c.id_number, 13, 6)) == id_tail.upper(),
                )
            )
        )
        .scalars()
        .all()
    )
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class Bound:
    """A binding made: the person, and the earlier bindings of that person it ended (binding
    id, WeChat user), whose users the caller tells."""

    person: Person
    ended: list[tuple[int, str]]


async def try_bind(
    conn: AsyncConnection, *, openid: str, name: str, id_tail: str, now: datetime
) -> Bound | None:
    """Bind when name and ID tail match one person and the name is not locked; every try is
    recorded. A try refused by the name's lock is not checked at all, and is recorded
    without the name: it counts against the WeChat user, but does not keep the name locked
    longer (the person themself, trying again, would otherwise lock themself out)."""
    if await name_locked(conn, name, now):
        await conn.execute(insert(binding_attempts).values(openid=openid, at=now, succeeded=False))
        return None
    person_id = await find_by_name_and_id_tail(conn, name, id_tail)
    await conn.execute(
        insert(binding_attempts).values(
            openid=openid, name=name[:NAME_MAX], at=now, succeeded=person_id is not None
        )
    )
    if person_id is None:
        return None
    return await _bound(
        conn,
        person_id,
        await bind(conn, openid=openid, person_id=person_id, channel="chat", now=now),
    )


async def _bound(
    conn: AsyncConnection, person_id: int, ended: list[tuple[int, str]]
) -> Bound | None:
    person = await person_by_id(conn, person_id)
    return None if person is None else Bound(person, ended)


async def bind(
    conn: AsyncConnection, *, openid: str, person_id: int, channel: str, now: datetime
) -> list[tuple[int, str]]:
    """Make this WeChat user this person. A person has one WeChat user at a time: any
    earlier binding of the user, and the person's binding to any other user, ends (recorded,
    not deleted). Returns the bindings to the person that ended (id, WeChat user): the
    caller tells those users."""
    await unbind(conn, openid=openid, now=now)
    ended = (
        await conn.execute(
            update(bindings)
            .where(bindings.c.person_id == person_id, bindings.c.unbound_at.is_(None))
            .values(unbound_at=now)
            .returning(bindings.c.id, bindings.c.openid)
        )
    ).all()
    await conn.execute(
        insert(bindings).values(openid=openid, person_id=person_id, channel=channel, bound_at=now)
    )
    return [(int(binding_id), str(previous)) for binding_id, previous in ended]


async def unbind(conn: AsyncConnection, *, openid: str, now: datetime) -> bool:
    """End the user's binding (recorded, not deleted); False when there was none."""
    result = await conn.execute(
        update(bindings)
        .where(bindings.c.openid == openid, bindings.c.unbound_at.is_(None))
        .values(unbound_at=now)
    )
    return bool(result.rowcount)


async def bind_by_ticket(
    conn: AsyncConnection, *, openid: str, scene: str, now: datetime
) -> Bound | None:
    """Bind through a scanned parametric QR code; None if unknown, used or expired."""
    ticket = (
        await conn.execute(
            select(binding_tickets).where(
                binding_tickets.c.scene == scene,
                binding_tickets.c.used_at.is_(None),
                binding_tickets.c.expires_at > now,
            )
        )
    ).first()
    if ticket is None:
        return None
    await conn.execute(
        update(binding_tickets).where(binding_tickets.c.scene == scene).values(used_at=now)
    )
    ended = await bind(conn, openid=openid, person_id=ticket.person_id, channel="qrcode", now=now)
    return await _bound(conn, ticket.person_id, ended)


async def people_able(conn: AsyncConnection, act_name: str, subject: Subject) -> list[int]:
    """Everyone the authority policy lets make this act on this matter, by id: whoever gets
    the act's to-do. Candidates are read by role and place, then each is asked of the policy
    itself, so a to-do never goes to someone who could not act on it. Two queries a grant
    (who, then each of them with their roles); for many matters at once, `Officials`."""
    found: list[int] = []
    for grant in BY_NAME[act_name].grants:
        if grant.role in {"system", "bound"}:
            continue
        query = (
            select(people.c.id)
            .select_from(
                people.join(
                    person_roles,
                    and_(
                        person_roles.c.person_id == people.c.id, person_roles.c.role == grant.role
                    ),
                )
            )
            .where(people.c.active.is_(True))
            .order_by(people.c.id)
        )
        if grant.scope is Scope.BRANCH:
            query = query.where(people.c.branch_id == subject.branch_id)
        elif grant.scope in {Scope.TOWNSHIP, Scope.STAND_IN}:
            query = query.where(
                people.c.branch_id.in_(
                    select(organisations.c.id).where(
                        organisations.c.parent_id == subject.committee_id
                    )
                )
            )
        ids = list((await conn.execute(query)).scalars())
        loaded = {person.id: person for person, _ in await _officials_in(conn, ids)}
        for person_id in ids:
            person = loaded.get(person_id)
            if person_id not in found and person is not None and able(act_name, person, subject):
                found.append(person_id)
    return found


@lru_cache(maxsize=16)
def _officials_of(size: int) -> Any:
    """People by id with their branch's township, a row per role."""
    return (
        _PERSON.add_columns(_BRANCH.c.parent_id.label("township"), person_roles.c.role)
        .outerjoin(person_roles, person_roles.c.person_id == people.c.id)
        .where(in_list(people.c.id, size))
        .order_by(people.c.id)
    )


def _grouped(rows: Iterable[Any]) -> list[tuple[Person, int | None]]:
    """Rows of people a row per role (ordered by id) as people, each with their township."""
    roles: dict[int, list[str]] = {}
    first: dict[int, Any] = {}
    for row in rows:
        first.setdefault(row.id, row)
        if row.role is not None:
            roles.setdefault(row.id, []).append(row.role)
    return [(_person(row, roles.get(key, ())), row.township) for key, row in first.items()]


async def _officials_in(
    conn: AsyncConnection, person_ids: Sequence[int]
) -> list[tuple[Person, int | None]]:
    if not person_ids:
        return []
    return _grouped(await rows_in(conn, _officials_of, list(dict.fromkeys(person_ids))))


@dataclass(frozen=True)
class Officials:
    """`people_able` for many matters of one act, read once: every active holder of a role
    the act grants, with all their roles, indexed by branch and township. A scheduled job
    that hands out to-dos for thousands of matters loads this once per run and asks
    `able_for` for each (no query per matter, none per candidate). The roster as it was
    when loaded: a job loads it anew each run."""

    act_name: str
    by_branch: dict[tuple[str, int | None], list[Person]]
    by_township: dict[tuple[str, int | None], list[Person]]
    by_role: dict[str, list[Person]]

    @classmethod
    async def load(cls, conn: AsyncConnection, act_name: str) -> Officials:
        """Every active holder of a role the act grants (by id), with their roles."""
        wanted = sorted(
            {g.role for g in BY_NAME[act_name].grants if g.role not in {"system", "bound"}}
        )
        holders = select(person_roles.c.person_id).where(person_roles.c.role.in_(wanted)).distinct()
        rows = (
            await conn.execute(
                _PERSON.add_columns(_BRANCH.c.parent_id.label("township"), person_roles.c.role)
                .outerjoin(person_roles, person_roles.c.person_id == people.c.id)
                .where(people.c.id.in_(holders))
                .order_by(people.c.id)
            )
        ).all()
        by_branch: dict[tuple[str, int | None], list[Person]] = {}
        by_township: dict[tuple[str, int | None], list[Person]] = {}
        by_role: dict[str, list[Person]] = {}
        for person, township in _grouped(rows):  # by id, so every list is by id
            for role in person.roles & set(wanted):
                by_role.setdefault(role, []).append(person)
                # As the queries of `people_able` compare (a None there is IS NULL).
                by_branch.setdefault((role, person.branch_id), []).append(person)
                if person.branch_id is not None:
                    by_township.setdefault((role, township), []).append(person)
        return cls(act_name, by_branch, by_township, by_role)

    def able_for(self, subject: Subject) -> list[int]:
        """`people_able(conn, act_name, subject)` as of the load: the same people, in the
        same order."""
        found: list[int] = []
        for grant in BY_NAME[self.act_name].grants:
            if grant.role in {"system", "bound"}:
                continue
            if grant.scope is Scope.BRANCH:
                candidates = self.by_branch.get((grant.role, subject.branch_id), [])
            elif grant.scope in {Scope.TOWNSHIP, Scope.STAND_IN}:
                candidates = self.by_township.get((grant.role, subject.committee_id), [])
            else:
                candidates = self.by_role.get(grant.role, [])
            for person in candidates:
                if person.id not in found and able(self.act_name, person, subject):
                    found.append(person.id)
        return found


async def secretaries_of(conn: AsyncConnection, branch_id: int | None) -> list[int]:
    """The branch secretaries of a branch."""
    if branch_id is None:
        return []
    rows = await conn.execute(
        select(people.c.id)
        .select_from(
            people.join(
                person_roles,
                and_(person_roles.c.person_id == people.c.id, person_roles.c.role == "secretary"),
            )
        )
        .where(people.c.branch_id == branch_id, people.c.active.is_(True))
        .order_by(people.c.id)
    )
    return list(rows.scalars())


async def secretaries_by_branch(
    conn: AsyncConnection, branch_ids: Sequence[int]
) -> dict[int, list[int]]:
    """`secretaries_of` for many branches: each branch's active secretaries, by id."""
    found: dict[int, list[int]] = {branch_id: [] for branch_id in branch_ids}
    for row in await rows_in(conn, _secretaries_in, list(found)):
        found[row.branch_id].append(row.id)
    return found


@lru_cache(maxsize=16)
def _secretaries_in(size: int) -> Executable:
    return (
        select(people.c.id, people.c.branch_id)
        .select_from(people.join(person_roles, person_roles.c.person_id == people.c.id))
        .where(
            person_roles.c.role == "secretary",
            people.c.active.is_(True),
            in_list(people.c.branch_id, size),
        )
        .order_by(people.c.id)
    )


async def find_person(conn: AsyncConnection, name_or_id: str) -> list[int]:
    """People matching an ID number exactly, or else a name."""
    text = name_or_id.strip().upper()
    by_id = (await conn.execute(select(people.c.id).where(people.c.id_number == text))).scalars()
    found = list(by_id)
    if found:
        return found
    rows = await conn.execute(
        select(people.c.id).where(people.c.name == name_or_id.strip(), people.c.active.is_(True))
    )
    return list(rows.scalars())


async def issue_binding_ticket(
    conn: AsyncConnection, *, person_id: int, now: datetime, valid: timedelta
) -> str:
    """A fresh QR scene that binds whoever scans it to this person (once)."""
    import secrets

    scene = secrets.token_urlsafe(9)
    await conn.execute(
        insert(binding_tickets).values(
            scene=scene, person_id=person_id, created_at=now, expires_at=now + valid
        )
    )
    return scene
