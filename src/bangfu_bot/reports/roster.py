"""名册 on the desk: a roster upload checked before anything is written (the importer's own
reading and checks), and a search of the people on the roster."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.common.fields import mask_id, mask_phone
from bangfu_bot.dbutil import in_list, rows_in
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.roster import Rejection, RosterError, read_roster, validate
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DryRun",
    "PersonPage",
    "PersonRow",
    "people_search",
    "roster_dry_run",
]

say = speaker("bangfu_bot.reports")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_SUFFIXES = (".csv", ".xlsx", ".xlsm")


@dataclass(frozen=True)
class DryRun:
    """What importing the file would do: `refused` (with `message`) when the file cannot be
    read at all; else the rows that pass (`new` people and `known` ones updated) and every
    rejected row with its line and reasons."""

    refused: bool
    message: str
    rows: int
    valid: int
    new: int
    known: int
    rejected: tuple[Rejection, ...]


async def roster_dry_run(
    session: AsyncSession, data: bytes, filename: str, *, today: date
) -> DryRun:
    """Check an uploaded roster as `bangfu-bot import roster` would, writing nothing.

    Refused before reading: a file over 20 MB, a name that is not .csv/.xlsx/.xlsm. A
    formula cell is read as its formula, so it is text to the checks (and refused where a
    name, number or date is wanted), never the value Excel cached."""
    if len(data) > MAX_UPLOAD_BYTES:
        return _refused(say("roster_too_big", mb=MAX_UPLOAD_BYTES // (1024 * 1024)))
    suffix = PurePath(filename).suffix.lower()
    if suffix not in _SUFFIXES:
        return _refused(say("roster_not_a_table"))
    try:
        rows = await asyncio.to_thread(_read, data, suffix)
    except RosterError as error:
        return _refused(str(error))
    valid, rejected = validate(rows, today=today)
    conn = await session.connection()
    numbers = [person.id_number for person in valid]
    known = len(await rows_in(conn, _known, numbers)) if numbers else 0
    return DryRun(False, "", len(rows), len(valid), len(valid) - known, known, tuple(rejected))


def _refused(message: str) -> DryRun:
    return DryRun(True, message, 0, 0, 0, 0, ())


def _read(data: bytes, suffix: str) -> list[Any]:
    """The importer reads paths: the upload goes to a private temporary file, then away."""
    with tempfile.TemporaryDirectory(prefix="bangfu-roster-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        return read_roster(path, formulas_as_text=True)


def _known(size: int) -> Any:
    return select(people.c.id).where(in_list(people.c.id_number, size))


@dataclass(frozen=True)
class PersonRow:
    """A person on the roster as the search lists them."""

    person_id: int
    name: str
    gender: str
    id_number: str
    phone: str
    branch: str
    township: str
    roles: tuple[str, ...]
    bound: bool
    active: bool


@dataclass(frozen=True)
class PersonPage:
    """A page of people found and how many match in all."""

    total: int
    rows: tuple[PersonRow, ...]


async def people_search(
    session: AsyncSession,
    q: str = "",
    *,
    township_id: int | None = None,
    branch_id: int | None = None,
    role: str | None = None,
    unmasked: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> PersonPage:
    """People whose name contains `q`, or whose whole ID number or phone is `q` (taken
    literally: % _ and quotes are characters like any other), in scope, by name. Four
    queries."""
    conn = await session.connection()
    conditions = [in_scope(people.c.branch_id, township_id=township_id, branch_id=branch_id)]
    q = q.strip()
    if q:
        conditions.append(
            or_(
                people.c.name.contains(q, autoescape=True),
                people.c.id_number == q.upper(),
                people.c.phone == q,
            )
        )
    if role:
        conditions.append(
            people.c.id.in_(select(person_roles.c.person_id).where(person_roles.c.role == role))
        )
    total = await conn.scalar(select(func.count()).select_from(people).where(*conditions))
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    rows = (
        await conn.execute(
            select(
                people,
                branch.c.name.label("branch_name"),
                committee.c.name.label("township_name"),
            )
            .select_from(
                people.outerjoin(branch, branch.c.id == people.c.branch_id).outerjoin(
                    committee, committee.c.id == branch.c.parent_id
                )
            )
            .where(*conditions)
            .order_by(people.c.name, people.c.id)
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    ids = [row.id for row in rows]
    roles: dict[int, list[str]] = {}
    bound: set[int] = set()
    if ids:
        for person_id, held in await conn.execute(
            select(person_roles.c.person_id, person_roles.c.role).where(
                person_roles.c.person_id.in_(ids)
            )
        ):
            roles.setdefault(person_id, []).append(held)
        bound = set(
            (
                await conn.execute(
                    select(bindings.c.person_id).where(
                        bindings.c.person_id.in_(ids), bindings.c.unbound_at.is_(None)
                    )
                )
            ).scalars()
        )
    return PersonPage(
        int(total or 0),
        tuple(
            PersonRow(
                person_id=row.id,
                name=row.name,
                gender=row.gender or "",
                id_number=row.id_number if unmasked else mask_id(row.id_number),
                phone=(row.phone or "") if unmasked else mask_phone(row.phone or ""),
                branch=row.branch_name or "",
                township=row.township_name or "",
                roles=tuple(sorted(roles.get(row.id, []))),
                bound=row.id in bound,
                active=bool(row.active),
            )
            for row in rows
        ),
    )
