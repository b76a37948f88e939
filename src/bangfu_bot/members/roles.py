"""Setting roles from a short list (`bangfu-bot import roles FILE`).

The national system's export has no 角色 column, so its import makes everyone 党员. Who is
支部书记, 党委委员, 组织部 or 监督小组 comes afterwards from a small file the department keeps:
姓名, 身份证号 (the full number or its last six characters, as binding asks) and 角色.

A listed person's roles become the file's roles; 党员 stays with whoever has it (their
membership comes from the roster, not from this list), so 「支部书记」 makes a member a member
and secretary, and 「党员」 alone takes their other roles away. A person may be on several
lines: their roles are all of them. People not listed keep their roles. Like the roster, a
file with any bad line writes nothing unless `skip_invalid`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.common.fields import FieldError, parse_id_number, parse_name
from bangfu_bot.members.models import people, person_roles
from bangfu_bot.members.roster import (
    COUNTY_ROLES,
    HEADER_ALIASES,
    ID_NUMBER,
    NAME,
    ROLE_NAMES,
    ROLES,
    Rejection,
    RowInvalid,
    parse_roles,
)
from bangfu_bot.members.tables import cell_text, read_table
from bangfu_bot.texts import speaker

__all__ = ["ROLE_FILE_ALIASES", "RoleLine", "RolesReport", "import_roles", "read_roles"]

log = logging.getLogger(__name__)
say = speaker("bangfu_bot.members")

# stays in Python: header words a parser matches (the last six of the ID, a 职务 column)
ROLE_FILE_ALIASES: dict[str, tuple[str, ...]] = {
    NAME: HEADER_ALIASES[NAME],
    ID_NUMBER: (
        *HEADER_ALIASES[ID_NUMBER],
        "身份证后六位",
        "身份证号后六位",
        "身份证后6位",
        "身份证号后6位",
        "后六位",
    ),
    ROLES: (ROLES, "职务", "担任职务"),
}
_REQUIRED = (NAME, ID_NUMBER, ROLES)
_TAIL = re.compile(r"^[0-9]{5}[0-9X]$")
_CHUNK = 500
_CHINA = ZoneInfo("Asia/Shanghai")

T = TypeVar("T")


@dataclass(frozen=True)
class RoleLine:
    """A line of the roles file that passed its own checks (who it is is looked up later)."""

    line: int
    name: str
    id_number: str = field(repr=False)  # 18 characters, or the last 6
    roles: frozenset[str]


@dataclass(frozen=True)
class RolesReport:
    """What a roles import did; `refused` means errors stopped it and nothing was written."""

    changed: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    refused: bool = False

    def lines(self) -> list[str]:
        """One line per rejected row, then a summary, ready to print."""
        summary = (
            say("roles_refused", count=len(self.rejected))
            if self.refused
            else say(
                "roles_done",
                changed=self.changed,
                unchanged=self.unchanged,
                rejected=len(self.rejected),
            )
        )
        return [rejection.text() for rejection in self.rejected] + [summary]


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, object]
    headers: dict[str, str]

    def column(self, name: str) -> str:
        return self.headers.get(name) or name


def read_roles(path: Path, *, today: date) -> list[RoleLine | Rejection]:
    """Each line of a roles file: checked on its own, or the reasons it is not usable."""
    table = read_table(path, ROLE_FILE_ALIASES, _REQUIRED)
    return [
        _check(_Row(record.line, record.values, table.headers), today=today)
        for record in table.records
    ]


def _check(row: _Row, *, today: date) -> RoleLine | Rejection:
    reasons: list[str] = []

    def take(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except RowInvalid as exc:
            reasons.extend(exc.reasons)
            return None

    name = take(lambda: _name(row))
    number = take(lambda: _id_or_tail(row, today=today))
    roles = take(lambda: parse_roles(row.values.get(ROLES), row.column(ROLES)))
    if name is None or number is None or roles is None:
        return Rejection(row.line, say("roster_reasons_joiner").join(reasons))
    return RoleLine(row.line, name, number, roles)


def _name(row: _Row) -> str:
    text = cell_text(row.values.get(NAME))
    if not text:
        raise RowInvalid(say("roster_name_empty", column=row.column(NAME)))
    try:
        return parse_name(text)
    except FieldError:
        raise RowInvalid(say("roster_name_invalid", column=row.column(NAME))) from None


def _id_or_tail(row: _Row, *, today: date) -> str:
    value = row.values.get(ID_NUMBER)
    column = row.column(ID_NUMBER)
    text = unicodedata.normalize("NFKC", cell_text(value)).upper()
    if not text:
        raise RowInvalid(say("roles_id_empty", column=column))
    # A number cell: 18 digits have lost their end, six may have lost a leading 0.
    if isinstance(value, int | float) and not isinstance(value, bool) and len(text) != 6:
        raise RowInvalid(say("roles_id_as_number", column=column))
    if _TAIL.match(text):
        return text
    if len(text) != 18:
        raise RowInvalid(say("roles_id_length", column=column))
    try:
        return parse_id_number(text, today=today)
    except FieldError:
        raise RowInvalid(say("roles_id_wrong", column=column)) from None


# --- Writing -------------------------------------------------------------------------------


async def import_roles(
    engine: AsyncEngine, path: Path | str, *, skip_invalid: bool, now: datetime
) -> RolesReport:
    """Set the roles a roles file gives, in one transaction; with errors and no skip, none."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    checked = read_roles(Path(path), today=now.astimezone(_CHINA).date())
    rejected = [item for item in checked if isinstance(item, Rejection)]
    lines = [item for item in checked if isinstance(item, RoleLine)]
    async with engine.begin() as conn:
        found = await _people_named(conn, sorted({line.name for line in lines}))
        wanted: dict[int, set[str]] = {}
        for line in lines:
            match = _who(line, found)
            if isinstance(match, str):
                rejected.append(Rejection(line.line, match))
                continue
            problem = _cannot_hold(line, match)
            if problem is not None:
                rejected.append(Rejection(line.line, problem))
                continue
            wanted.setdefault(match.id, set()).update(line.roles)
        rejected.sort(key=lambda rejection: rejection.line)
        if rejected and not skip_invalid:
            return RolesReport(rejected=rejected, refused=True)
        stored = await _stored_roles(conn, sorted(wanted))
        changes: dict[int, frozenset[str]] = {}
        for person_id, roles in wanted.items():
            current = stored.get(person_id, set())
            # 党员 is the roster's word, not this list's: it stays.
            new = frozenset(roles | (current & {"member"}))
            if new != current:
                changes[person_id] = new
        await _replace_roles(conn, changes, now)
    log.info(
        "roles imported: %d changed, %d unchanged, %d rejected",
        len(changes),
        len(wanted) - len(changes),
        len(rejected),
    )
    return RolesReport(
        changed=len(changes), unchanged=len(wanted) - len(changes), rejected=rejected
    )


def _who(line: RoleLine, found: dict[str, list[Any]]) -> Any:
    """The one active person the line names, or the reason there is not one."""
    named = found.get(line.name, [])
    if len(line.id_number) == 18:
        matches = [person for person in named if person.id_number == line.id_number]
    else:
        matches = [person for person in named if person.id_number.endswith(line.id_number)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        return say("roles_ambiguous", name=line.name, count=len(matches))
    if not named:
        return say("roles_nobody", name=line.name)
    return say("roles_id_mismatch", name=line.name)


def _cannot_hold(line: RoleLine, person: Any) -> str | None:
    """Why the person cannot take one of the line's roles: a branch role needs a branch."""
    needing = sorted(line.roles - COUNTY_ROLES)
    if person.branch_id is not None or not needing:
        return None
    return say("roles_needs_branch", name=line.name, role=ROLE_NAMES[needing[0]])


async def _people_named(conn: AsyncConnection, names: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for chunk in _chunks(names):
        rows = await conn.execute(
            select(people.c.id, people.c.name, people.c.id_number, people.c.branch_id).where(
                people.c.name.in_(chunk), people.c.active.is_(True)
            )
        )
        for row in rows:
            found.setdefault(row.name, []).append(row)
    return found


async def _stored_roles(conn: AsyncConnection, person_ids: list[int]) -> dict[int, set[str]]:
    roles: dict[int, set[str]] = {}
    for chunk in _chunks(person_ids):
        rows = await conn.execute(
            select(person_roles.c.person_id, person_roles.c.role).where(
                person_roles.c.person_id.in_(chunk)
            )
        )
        for row in rows:
            roles.setdefault(row.person_id, set()).add(row.role)
    return roles


async def _replace_roles(
    conn: AsyncConnection, changes: dict[int, frozenset[str]], now: datetime
) -> None:
    """Each changed person's role rows become the new set, in a few statements."""
    ids = sorted(changes)
    for chunk in _chunks(ids):
        await conn.execute(delete(person_roles).where(person_roles.c.person_id.in_(chunk)))
        await conn.execute(update(people).where(people.c.id.in_(chunk)).values(updated_at=now))
    rows = [
        {"person_id": person_id, "role": role}
        for person_id in ids
        for role in sorted(changes[person_id])
    ]
    if rows:
        await conn.execute(insert(person_roles), rows)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
