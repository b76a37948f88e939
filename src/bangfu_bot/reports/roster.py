"""名册 on the desk: a roster upload checked before anything is written (the importer's own
reading and checks), and a search of the people on the roster."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bangfu_bot.authority import Actor, Refused
from bangfu_bot.common.fields import mask_id, mask_phone
from bangfu_bot.dbutil import in_list, inserted_id, rows_in
from bangfu_bot.handover import Handover, hand_over
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.roster import (
    ImportReport,
    Rejection,
    RosterError,
    import_rows,
    read_roster,
    validate,
)
from bangfu_bot.reports.models import roster_uploads
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = [
    "FILES_KEPT",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_WAITS",
    "DryRun",
    "PersonPage",
    "PersonRow",
    "RosterRefused",
    "Upload",
    "clear_old_uploads",
    "import_upload",
    "keep_upload",
    "people_search",
    "role_counts",
    "roster_dry_run",
    "upload_of",
]

say = speaker("bangfu_bot.reports")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_SUFFIXES = (".csv", ".xlsx", ".xlsm")
UPLOAD_WAITS = timedelta(hours=1)  # a checked upload waits this long for its confirm
# An uploaded file (every member's ID number and phone) is kept this long after its upload,
# for a question about what was imported; then its bytes are cleared and the record stays.
FILES_KEPT = timedelta(days=30)
_FILENAME_MAX = 200


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
    sha256: str = ""


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
    return DryRun(
        False,
        "",
        len(rows),
        len(valid),
        len(valid) - known,
        known,
        tuple(rejected),
        hashlib.sha256(data).hexdigest(),
    )


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
    unmasked_phone: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> PersonPage:
    """People whose name contains `q`, or whose whole ID number or phone is `q` (taken
    literally: % _ and quotes are characters like any other), in scope, by name. Four
    queries. `unmasked_phone` (default: as `unmasked`) shows phones whole on their own."""
    conn = await session.connection()
    show_phone = unmasked if unmasked_phone is None else unmasked_phone
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
                phone=(row.phone or "") if show_phone else mask_phone(row.phone or ""),
                branch=row.branch_name or "",
                township=row.township_name or "",
                roles=tuple(sorted(roles.get(row.id, []))),
                bound=row.id in bound,
                active=bool(row.active),
            )
            for row in rows
        ),
    )


async def role_counts(
    session: AsyncSession, *, township_id: int | None = None, branch_id: int | None = None
) -> dict[str, int]:
    """How many people in scope hold each role (one query)."""
    conn = await session.connection()
    rows = await conn.execute(
        select(person_roles.c.role, func.count())
        .select_from(person_roles.join(people, people.c.id == person_roles.c.person_id))
        .where(in_scope(people.c.branch_id, township_id=township_id, branch_id=branch_id))
        .group_by(person_roles.c.role)
    )
    return {str(role): int(count) for role, count in rows}


# --- An upload kept as checked, then imported once ----------------------------------------


class RosterRefused(Refused):
    """A confirm that may not import; `message` is Chinese for the person who tried."""


@dataclass(frozen=True)
class Upload:
    """A roster uploaded on the desk and what its check found (the bytes stay in the store)."""

    id: int
    person_id: int
    filename: str
    sha256: str
    size: int
    rows: int
    valid: int
    new: int
    rejected: tuple[Rejection, ...]
    uploaded_at: datetime
    imported_at: datetime | None
    skipped: int | None
    result: str | None

    @property
    def known(self) -> int:
        """Valid rows of people already on the roster (updated, or unchanged)."""
        return self.valid - self.new

    def waiting(self, now: datetime) -> bool:
        """Whether it may still be confirmed."""
        return self.imported_at is None and now - self.uploaded_at <= UPLOAD_WAITS


async def keep_upload(
    conn: AsyncConnection,
    *,
    person_id: int,
    filename: str,
    data: bytes,
    run: DryRun,
    now: datetime,
) -> int:
    """Store a checked upload (its bytes and every rejected line) for its confirm."""
    result = await conn.execute(
        insert(roster_uploads).values(
            person_id=person_id,
            filename=PurePath(filename).name[:_FILENAME_MAX] or "roster",
            sha256=run.sha256 or hashlib.sha256(data).hexdigest(),
            data=data,
            row_count=run.rows,
            valid_count=run.valid,
            new_count=run.new,
            rejected=[[rejection.line, rejection.reason] for rejection in run.rejected],
            uploaded_at=now,
        )
    )
    return inserted_id(result)


async def clear_old_uploads(conn: AsyncConnection, *, now: datetime) -> int:
    """Clear the bytes of the uploads older than FILES_KEPT (imported or never confirmed);
    who uploaded what, when, its checksum, counts, rejected lines and result stay. Returns
    how many were cleared."""
    cleared = await conn.execute(
        update(roster_uploads)
        .where(
            roster_uploads.c.uploaded_at < now - FILES_KEPT,
            func.length(roster_uploads.c.data) > 0,
        )
        .values(data=b"")
    )
    return int(cleared.rowcount or 0)


async def upload_of(conn: AsyncConnection, upload_id: int, *, person_id: int) -> Upload | None:
    """An upload of this person's (None for anyone else's: as if there were none)."""
    row = (
        await conn.execute(
            select(
                *(c for c in roster_uploads.c if c.name != "data"),
                func.length(roster_uploads.c.data).label("size"),
            ).where(roster_uploads.c.id == upload_id, roster_uploads.c.person_id == person_id)
        )
    ).first()
    if row is None:
        return None
    return Upload(
        id=int(row.id),
        person_id=int(row.person_id),
        filename=row.filename,
        sha256=row.sha256,
        size=int(row.size or 0),
        rows=int(row.row_count),
        valid=int(row.valid_count),
        new=int(row.new_count),
        rejected=tuple(Rejection(int(line), str(reason)) for line, reason in row.rejected or []),
        uploaded_at=row.uploaded_at,
        imported_at=row.imported_at,
        skipped=row.skipped_invalid,
        result=row.result,
    )


async def import_upload(
    conn: AsyncConnection,
    upload_id: int,
    *,
    actor: Actor,
    skip_invalid: bool,
    now: datetime,
    today: date,
) -> tuple[ImportReport, Handover]:
    """导入名册 from the desk, in the caller's transaction: the upload is claimed once (its
    uploader's, not yet imported, within the hour), its stored bytes are read and checked
    again exactly as at the upload, and the importer writes them under the authority
    policy; then the to-dos follow their authority, as after the command line's import.
    Any refusal raises, so the caller's rollback leaves nothing written."""
    claimed = await conn.execute(
        update(roster_uploads)
        .where(
            roster_uploads.c.id == upload_id,
            roster_uploads.c.person_id == actor.id,
            roster_uploads.c.imported_at.is_(None),
            roster_uploads.c.uploaded_at >= now - UPLOAD_WAITS,
        )
        .values(imported_at=now)
    )
    if claimed.rowcount != 1:
        raise RosterRefused(say("roster_upload_gone"), f"upload {upload_id} is not waiting")
    row = (
        await conn.execute(
            select(roster_uploads.c.filename, roster_uploads.c.sha256, roster_uploads.c.data).where(
                roster_uploads.c.id == upload_id
            )
        )
    ).one()
    data = bytes(row.data)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise RosterRefused(say("roster_upload_gone"), f"upload {upload_id} changed in the store")
    try:
        rows = await asyncio.to_thread(_read, data, PurePath(row.filename).suffix.lower())
    except RosterError as error:
        raise RosterRefused(str(error), "the stored upload no longer reads") from None
    county = (
        await conn.execute(
            select(organisations.c.name)
            .where(organisations.c.kind == "county", organisations.c.parent_id.is_(None))
            .order_by(organisations.c.id)
        )
    ).scalar()
    if county is None:
        raise RosterRefused(say("roster_no_county"), "no county on the roster")
    report = await import_rows(
        conn,
        rows,
        county_name=county,
        skip_invalid=skip_invalid,
        now=now,
        today=today,
        actor=actor,
    )
    if report.refused:
        raise RosterRefused(
            say("roster_rows_refused", count=len(report.rejected)), "rejected rows, no skip"
        )
    summary = report.lines()[-1]
    await conn.execute(
        update(roster_uploads)
        .where(roster_uploads.c.id == upload_id)
        .values(skipped_invalid=len(report.rejected), result=summary[:300])
    )
    done = Handover()
    if report.created or report.updated:
        # People moved, came or changed roles: the to-dos follow their authority.
        done = await hand_over(conn, now=now)
    return report, done
