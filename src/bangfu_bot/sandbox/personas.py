"""The people a trainer can play in the sandbox: everyone on the roster, by role.

Each person is played from a fixed sandbox WeChat user, `sandbox-<person id>`, so switching
back to someone finds their chat where it was left.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.models import cases
from bangfu_bot.cases.transitions import status_name
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.roster import ROLE_WORDS
from bangfu_bot.texts import speaker
from bangfu_bot.wechat.models import wechat_users

OPENID_PREFIX = "sandbox-"
_OPENID = re.compile(r"^sandbox-([0-9]{1,12})$")

# Shown in this order; a person appears under the most senior role they hold.
ROLES = ("member", "secretary", "committee", "department", "supervisor")
_SENIORITY = ("supervisor", "department", "committee", "secretary", "member")
ROLE_LABELS = {role: word for word, role in ROLE_WORDS.items()}
say = speaker("bangfu_bot.sandbox")

# Without a search, a handful per role; members who already have a case are mixed in so a
# trainer can see 进度 at each stage.
PER_ROLE = 6
MEMBERS_WITH_CASES = 4
SEARCH_LIMIT = 30


@dataclass(frozen=True)
class Persona:
    """A person as the sandbox's picker shows them."""

    id: int
    name: str
    openid: str
    role: str
    role_label: str
    roles: list[str]
    where: str
    bound: bool
    bound_to: str | None
    followed: bool
    case: str | None

    def json(self) -> dict[str, Any]:
        """The JSON the page reads."""
        return asdict(self)


def openid_for(person_id: int) -> str:
    """The sandbox WeChat user that plays this person."""
    return f"{OPENID_PREFIX}{person_id}"


def person_id_of(openid: str) -> int | None:
    """The person a sandbox openid plays, or None if it is not one."""
    match = _OPENID.match(openid)
    return int(match.group(1)) if match else None


async def roster_size(conn: AsyncConnection) -> int:
    """How many active people are on the roster."""
    return int(
        (
            await conn.execute(
                select(func.count()).select_from(people).where(people.c.active.is_(True))
            )
        ).scalar_one()
    )


async def persona_groups(conn: AsyncConnection, *, query: str = "") -> list[dict[str, Any]]:
    """Personas by role: a handful each, or everyone whose name contains `query`."""
    everyone = await _personas(conn, query=query.strip())
    groups = []
    for role in ROLES:
        found = [p for p in everyone if p.role == role]
        shown = found[:SEARCH_LIMIT] if query.strip() else _handful(found)
        groups.append(
            {
                "role": role,
                "label": ROLE_LABELS[role],
                "total": len(found),
                "people": [p.json() for p in shown],
            }
        )
    return groups


async def persona(conn: AsyncConnection, person_id: int) -> Persona | None:
    """One persona by person id."""
    found = await _personas(conn, person_id=person_id)
    return found[0] if found else None


def _handful(found: list[Persona]) -> list[Persona]:
    without = [p for p in found if p.case is None][:PER_ROLE]
    with_case: list[Persona] = []
    for p in found:
        if p.case is not None and all(p.case != q.case for q in with_case):
            with_case.append(p)
    return without + with_case[:MEMBERS_WITH_CASES]


async def _personas(
    conn: AsyncConnection, *, query: str = "", person_id: int | None = None
) -> list[Persona]:
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    statement = (
        select(
            people.c.id,
            people.c.name,
            branch.c.name.label("branch"),
            committee.c.name.label("committee"),
        )
        .select_from(
            people.outerjoin(branch, branch.c.id == people.c.branch_id).outerjoin(
                committee, committee.c.id == branch.c.parent_id
            )
        )
        .where(people.c.active.is_(True))
        # Roster order: a department's file lists its townships and branches as it sees fit.
        .order_by(people.c.id)
    )
    if query:
        statement = statement.where(people.c.name.contains(query, autoescape=True))
    if person_id is not None:
        statement = statement.where(people.c.id == person_id)
    rows = (await conn.execute(statement)).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    roles = await _roles(conn, ids)
    bound = await _sandbox_bindings(conn)
    followed = set(
        (
            await conn.execute(
                select(wechat_users.c.openid).where(wechat_users.c.openid.like(f"{OPENID_PREFIX}%"))
            )
        ).scalars()
    )
    latest = await _latest_case_status(conn, ids)
    names = await _names(conn, set(bound.values()) - set(ids))
    names.update({row.id: row.name for row in rows})
    found = []
    for row in rows:
        held = roles.get(row.id, set())
        if not held:
            continue
        role = next(r for r in _SENIORITY if r in held)
        openid = openid_for(row.id)
        bound_id = bound.get(openid)
        places = [part for part in (row.committee, row.branch) if part]
        found.append(
            Persona(
                id=row.id,
                name=row.name,
                openid=openid,
                role=role,
                role_label=ROLE_LABELS[role],
                roles=[ROLE_LABELS[r] for r in ROLES if r in held],
                where=say("where_separator").join(places) or say("where_county"),
                bound=bound_id == row.id,
                bound_to=names.get(bound_id) if bound_id not in (None, row.id) else None,
                followed=openid in followed,
                case=status_name(latest[row.id]) if row.id in latest else None,
            )
        )
    return found


async def _roles(conn: AsyncConnection, ids: list[int]) -> dict[int, set[str]]:
    held: dict[int, set[str]] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(person_roles.c.person_id, person_roles.c.role).where(
                person_roles.c.person_id.in_(ids[start : start + 500])
            )
        )
        for row in rows:
            held.setdefault(row.person_id, set()).add(row.role)
    return held


async def _sandbox_bindings(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(bindings.c.openid, bindings.c.person_id).where(
            bindings.c.openid.like(f"{OPENID_PREFIX}%"), bindings.c.unbound_at.is_(None)
        )
    )
    return {row.openid: row.person_id for row in rows}


async def _latest_case_status(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    newest = (
        select(cases.c.person_id, func.max(cases.c.id).label("id"))
        .group_by(cases.c.person_id)
        .subquery()
    )
    rows = await conn.execute(
        select(cases.c.person_id, cases.c.status).select_from(
            cases.join(newest, newest.c.id == cases.c.id)
        )
    )
    wanted = set(ids)
    return {row.person_id: row.status for row in rows if row.person_id in wanted}


async def _names(conn: AsyncConnection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await conn.execute(select(people.c.id, people.c.name).where(people.c.id.in_(ids)))
    return {row.id: row.name for row in rows}
