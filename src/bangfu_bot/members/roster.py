"""Importing the roster (党员花名册): a CSV or Excel file of people, their 党委, 支部 and roles.

The file is the department's word on who is on the roster and in which branch: an import
builds the organisation tree it names, adds or updates people keyed by ID number, and sets
each person's roles to exactly those in the file. It never removes anyone (a township
often sends only its own people), and a blank optional cell keeps what is stored.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.common.fields import (
    MSG_DATE_NOT_FUTURE,
    MSG_ID_BIRTH,
    MSG_ID_CHARS,
    MSG_ID_CHECKSUM,
    MSG_ID_LENGTH,
    FieldError,
    id_birth_date,
    parse_date,
    parse_id_number,
    parse_name,
    parse_phone,
)
from bangfu_bot.db import refresh_statistics
from bangfu_bot.dbutil import insert_ignore, inserted_id, upsert
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.texts import speaker

__all__ = [
    "HEADERS",
    "REQUIRED_HEADERS",
    "ImportReport",
    "Rejection",
    "RosterError",
    "RosterPerson",
    "RosterRow",
    "import_roster",
    "read_roster",
    "validate",
]

log = logging.getLogger(__name__)
say = speaker("bangfu_bot.members")

# Column headers as the department's template names them.
NAME = "姓名"
GENDER = "性别"
BIRTH_DATE = "出生日期"
JOINED_ON = "入党日期"
ID_NUMBER = "身份证号"
PHONE = "手机号"
COMMITTEE = "党委"
BRANCH = "支部"
ROLES = "角色"
URBAN_RURAL = "城乡"
HEADERS = (NAME, GENDER, BIRTH_DATE, JOINED_ON, ID_NUMBER, PHONE, COMMITTEE, BRANCH, ROLES,
           URBAN_RURAL)
REQUIRED_HEADERS = (NAME, ID_NUMBER, COMMITTEE, BRANCH, ROLES)

ROLE_WORDS = {
    "党员": "member",
    "支部书记": "secretary",
    "党委委员": "committee",
    "组织部": "department",
    "监督小组": "supervisor",
}
ROLE_NAMES = {role: word for word, role in ROLE_WORDS.items()}  # what each role is called
# Other words clerks write for the same roles.
# stays in Python: words clerks write in the roster's 角色 column, which the import matches
_ROLE_ALIASES = {
    "书记": "secretary",
    "党支部书记": "secretary",
    "组织委员": "committee",
    "党委组织委员": "committee",
    "组织部干部": "department",
    "县委组织部": "department",
    "监督小组成员": "supervisor",
    "帮扶基金监督小组": "supervisor",
}
# These work for the whole county, so they hang from the county rather than a branch.
COUNTY_ROLES = frozenset({"department", "supervisor"})
_URBAN_RURAL = {"城镇": "城镇", "城市": "城镇", "农村": "农村", "乡村": "农村"}
_GENDERS = {"男": "男", "男性": "男", "女": "女", "女性": "女"}

# Reasons the operator reads (members/messages.toml), one short phrase naming the column.
_ID_REASONS = {
    MSG_ID_LENGTH: "roster_id_length",
    MSG_ID_CHARS: "roster_id_chars",
    MSG_ID_CHECKSUM: "roster_id_checksum",
    MSG_ID_BIRTH: "roster_id_birth",
}

# Excel shows a long number as 1.10101E+17 and saves the CSV that way.
_SCIENTIFIC = re.compile(r"^[0-9]+(?:\.[0-9]+)?[eE]\+?[0-9]+$")
_ROLE_SEPARATORS = re.compile(r"[、,/;\s]+")  # after NFKC, so "，" "／" "；" are covered
_ORG_NAME_MAX = 100
# Keeps IN (...) lists well under the bind-parameter limits of SQLite and PostgreSQL.
_CHUNK = 500
_CHINA = ZoneInfo("Asia/Shanghai")

T = TypeVar("T")


class RosterError(ValueError):
    """The file cannot be read as a roster at all (no row is looked at)."""


@dataclass(frozen=True)
class RosterRow:
    """One line of the file as typed: the cells under the known headers (header = line 1)."""

    line: int
    # Raw cells hold full ID and phone numbers, so they stay out of repr (and test logs).
    values: Mapping[str, object] = field(repr=False)

    def value(self, header: str) -> object:
        """The raw cell under `header`, or None when the file has no such column."""
        return self.values.get(header)


@dataclass(frozen=True)
class RosterPerson:
    """A roster line that passed every check; None in an optional field means "keep"."""

    line: int
    name: str
    id_number: str = field(repr=False)
    gender: str
    birth_date: date
    joined_on: date | None
    phone: str | None = field(repr=False)
    urban_rural: str | None
    committee: str | None  # None for county staff (组织部, 监督小组)
    branch: str | None
    roles: frozenset[str]


@dataclass(frozen=True)
class Rejection:
    """A line left out of the import, with a short reason naming the column."""

    line: int
    reason: str

    def text(self) -> str:
        """The line as the operator reads it, e.g. "第 3 行：身份证号校验位不对"."""
        return say("roster_rejection", line=self.line, reason=self.reason)


@dataclass(frozen=True)
class ImportReport:
    """What an import did; `refused` means errors stopped it and nothing was written."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    committees_created: int = 0
    branches_created: int = 0
    refused: bool = False

    def lines(self) -> list[str]:
        """One line per rejected row, then a summary, ready to print."""
        summary = (
            say("roster_refused", count=len(self.rejected)) if self.refused
            else say("roster_done", created=self.created, updated=self.updated,
                     unchanged=self.unchanged, rejected=len(self.rejected),
                     committees=self.committees_created, branches=self.branches_created)
        )
        return [rejection.text() for rejection in self.rejected] + [summary]


# --- Reading the file ----------------------------------------------------------------------


def read_roster(path: Path) -> list[RosterRow]:
    """Read a .csv (UTF-8 or GB18030) or .xlsx roster; the first row names the columns."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table: Iterable[Sequence[object]] = _csv_table(path)
    elif suffix in (".xlsx", ".xlsm"):
        table = _xlsx_table(path)
    else:
        raise RosterError(f"unsupported roster file type {suffix or '(none)'!r}: "
                          "save it as .xlsx or .csv")
    return _rows(iter(table))


def _csv_table(path: Path) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(_decode(path.read_bytes()), newline=""))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Excel on Chinese Windows saves "CSV" in the ANSI code page, which GB18030 covers.
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterError("roster CSV is neither UTF-8 nor GB18030 text") from None


def _xlsx_table(path: Path) -> list[tuple[object, ...]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError) as exc:
        raise RosterError(f"cannot open the roster as an Excel workbook "
                          f"({type(exc).__name__})") from None
    try:
        sheet = workbook.worksheets[0]
        # Some writers record a wrong sheet size; read-only mode would trust it and cut rows.
        sheet.reset_dimensions()
        return list(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()


def _rows(table: Iterator[Sequence[object]]) -> list[RosterRow]:
    header = next(table, None)
    if header is None:
        raise RosterError("roster file is empty: the first row must name the columns")
    columns = _columns(header)
    rows = []
    for line, cells in enumerate(table, start=2):
        values = {name: cells[index] if index < len(cells) else None
                  for name, index in columns.items()}
        # Templates carry empty numbered rows below the data; they are not people.
        if any(_text(value) for value in values.values()):
            rows.append(RosterRow(line, values))
    return rows


def _columns(header: Sequence[object]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        # Forms often space out two-character headers ("姓  名") to align them.
        name = "".join(_text(cell).split())
        if name not in HEADERS:
            continue
        if name in columns:
            raise RosterError(f"roster header {name} appears twice "
                              f"(columns {columns[name] + 1} and {index + 1})")
        columns[name] = index
    missing = [name for name in REQUIRED_HEADERS if name not in columns]
    if missing:
        raise RosterError(f"roster header missing: {', '.join(missing)} "
                          f"(the first row must name the columns: {', '.join(HEADERS)})")
    return columns


def _text(value: object) -> str:
    """A cell as trimmed text; a whole number loses the ".0" a spreadsheet gives it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# --- Checking rows -------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate(rows: Iterable[RosterRow], *, today: date
             ) -> tuple[list[RosterPerson], list[Rejection]]:
    """Check every row; a row with any problem becomes one rejection listing them all."""
    valid: list[RosterPerson] = []
    rejected: list[Rejection] = []
    first_line: dict[str, int] = {}
    for row in rows:
        result = _check_row(row, today=today)
        if isinstance(result, RosterPerson) and result.id_number in first_line:
            result = [say("roster_id_duplicate", line=first_line[result.id_number])]
        if isinstance(result, RosterPerson):
            first_line[result.id_number] = row.line
            valid.append(result)
        else:
            rejected.append(Rejection(row.line, say("roster_reasons_joiner").join(result)))
    return valid, rejected


def _check_row(row: RosterRow, *, today: date) -> RosterPerson | list[str]:
    reasons: list[str] = []

    def take(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except _Invalid as exc:
            reasons.append(exc.reason)
            return None

    name = take(lambda: _name(row.value(NAME)))
    id_number = take(lambda: _id_number(row.value(ID_NUMBER), today=today))
    gender = take(lambda: _gender(row.value(GENDER), id_number))
    birth = take(lambda: _birth_date(row.value(BIRTH_DATE), id_number, today=today))
    joined = take(lambda: _joined_on(row.value(JOINED_ON), birth, today=today))
    phone = take(lambda: _phone(row.value(PHONE)))
    urban_rural = take(lambda: _urban_rural(row.value(URBAN_RURAL)))
    roles = take(lambda: _roles(row.value(ROLES)))
    committee = take(lambda: _org_name(row.value(COMMITTEE), column=COMMITTEE, roles=roles))
    branch = take(lambda: _org_name(row.value(BRANCH), column=BRANCH, roles=roles))
    if reasons:
        return reasons
    assert name and id_number and gender and birth and roles  # for the type checker
    return RosterPerson(line=row.line, name=name, id_number=id_number, gender=gender,
                        birth_date=birth, joined_on=joined, phone=phone,
                        urban_rural=urban_rural, committee=committee, branch=branch,
                        roles=roles)


def _name(value: object) -> str:
    if not _text(value):
        raise _Invalid(say("roster_name_empty"))
    try:
        return parse_name(_text(value))
    except FieldError:
        raise _Invalid(say("roster_name_invalid")) from None


def _id_number(value: object, *, today: date) -> str:
    text = _text(value)
    # An ID typed into a number cell has already lost its last digits; no digit can be trusted.
    if (isinstance(value, int | float) and not isinstance(value, bool)) or _SCIENTIFIC.match(text):
        raise _Invalid(say("roster_id_as_number"))
    if not text:
        raise _Invalid(say("roster_id_empty"))
    try:
        return parse_id_number(text, today=today)
    except FieldError as exc:
        raise _Invalid(say(_ID_REASONS.get(exc.message, "roster_id_invalid"))) from None


def _gender(value: object, id_number: str | None) -> str | None:
    text = _text(value)
    if text:
        if text not in _GENDERS:
            raise _Invalid(say("roster_gender_invalid"))
        return _GENDERS[text]
    if id_number is None:
        return None
    # The 17th character of a resident ID is odd for men and even for women.
    return "男" if int(id_number[16]) % 2 else "女"


def _birth_date(value: object, id_number: str | None, *, today: date) -> date | None:
    from_id = id_birth_date(id_number) if id_number else None
    if not _text(value):
        return from_id
    given = _date(value, column=BIRTH_DATE, today=today)
    if from_id is not None and given != from_id:
        raise _Invalid(say("roster_birth_mismatch"))
    return given


def _joined_on(value: object, birth: date | None, *, today: date) -> date | None:
    if not _text(value):
        return None
    joined = _date(value, column=JOINED_ON, today=today)
    if birth is not None and joined < birth:
        raise _Invalid(say("roster_joined_before_birth"))
    return joined


def _date(value: object, *, column: str, today: date) -> date:
    if isinstance(value, datetime):
        result = value.date()
    elif isinstance(value, date):
        result = value
    else:
        try:
            result = parse_date(_text(value), today=today, allow_future=False)
        except FieldError as exc:
            if exc.message == MSG_DATE_NOT_FUTURE:
                raise _Invalid(say("roster_date_future", column=column)) from None
            raise _Invalid(say("roster_date_unreadable", column=column)) from None
    if result > today:
        raise _Invalid(say("roster_date_future", column=column))
    return result


def _phone(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        return parse_phone(text)
    except FieldError:
        raise _Invalid(say("roster_phone_invalid")) from None


def _urban_rural(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    if text not in _URBAN_RURAL:
        raise _Invalid(say("roster_urban_rural_invalid"))
    return _URBAN_RURAL[text]


def _roles(value: object) -> frozenset[str]:
    words = [word for word in _ROLE_SEPARATORS.split(
        unicodedata.normalize("NFKC", _text(value))) if word]
    if not words:
        raise _Invalid(say("roster_roles_empty"))
    roles = set()
    for word in words:
        role = ROLE_WORDS.get(word) or _ROLE_ALIASES.get(word)
        if role is None:
            # A shifted column can put a phone or ID here; never echo digits back.
            shown = word if len(word) <= 10 and not any(ch.isdigit() for ch in word) else "…"
            raise _Invalid(say("roster_role_unknown", word=shown))
        roles.add(role)
    # No role is implied: a secretary on the roster is usually also 党员, but only the
    # file says so.
    return frozenset(roles)


def _org_name(value: object, *, column: str, roles: frozenset[str] | None) -> str | None:
    if roles is None:
        return None  # the role is already rejected; where they belong cannot be judged
    if roles <= COUNTY_ROLES:
        # County staff and supervisors belong to the county (branch_id NULL) even when the
        # clerk filled in their old township; the 党委/支部 columns are not read for them.
        return None
    name = " ".join(_text(value).split())
    if not name:
        raise _Invalid(say("roster_org_empty", column=column))
    if len(name) > _ORG_NAME_MAX:
        raise _Invalid(say("roster_org_too_long", column=column))
    return name


# --- Writing -------------------------------------------------------------------------------


async def import_roster(engine: AsyncEngine, rows_or_path: Path | str | Iterable[RosterRow],
                        *, county_name: str, skip_invalid: bool, now: datetime,
                        today: date | None = None) -> ImportReport:
    """Validate and store a roster in one transaction; with errors and no skip, store nothing."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    county_name = county_name.strip()
    if not county_name:
        raise ValueError("county_name must not be empty")
    rows = (read_roster(Path(rows_or_path)) if isinstance(rows_or_path, str | Path)
            else list(rows_or_path))
    # "Today" for dates in the file is the county's calendar day, not UTC's.
    valid, rejected = validate(rows, today=today or now.astimezone(_CHINA).date())
    if rejected and not skip_invalid:
        return ImportReport(rejected=rejected, refused=True)
    if not valid:
        return ImportReport(rejected=rejected)
    async with engine.begin() as conn:
        branch_ids, committees_created, branches_created = await _build_tree(
            conn, county_name, valid)
        created, updated, unchanged = await _store_people(conn, valid, branch_ids, now)
    if created:
        await refresh_statistics(engine)
    log.info("roster imported: %d created, %d updated, %d unchanged, %d rejected",
             created, updated, unchanged, len(rejected))
    return ImportReport(created=created, updated=updated, unchanged=unchanged,
                        rejected=rejected, committees_created=committees_created,
                        branches_created=branches_created)


# --- The organisation tree ---


async def _build_tree(conn: AsyncConnection, county_name: str, valid: list[RosterPerson]
                      ) -> tuple[dict[tuple[str, str], int], int, int]:
    """Get or create county → 党委 → 支部; map (committee, branch) names to branch ids."""
    county_id = await _county_id(conn, county_name)
    wanted: dict[str, set[str]] = {}
    for person in valid:
        if person.committee is not None and person.branch is not None:
            wanted.setdefault(person.committee, set()).add(person.branch)
    committee_ids, committees_created = await _children(
        conn, county_id, "committee", set(wanted))
    branch_ids: dict[tuple[str, str], int] = {}
    branches_created = 0
    for committee, branches in sorted(wanted.items()):
        ids, created = await _children(conn, committee_ids[committee], "branch", branches)
        branches_created += created
        branch_ids.update({(committee, branch): ids[branch] for branch in branches})
    return branch_ids, committees_created, branches_created


async def _county_id(conn: AsyncConnection, name: str) -> int:
    # The unique (parent_id, name) does not cover a NULL parent, so look before inserting.
    found = (await conn.execute(select(organisations.c.id).where(
        organisations.c.kind == "county", organisations.c.parent_id.is_(None),
        organisations.c.name == name))).scalar()
    if found is not None:
        return int(found)
    result = await conn.execute(insert(organisations).values(kind="county", name=name,
                                                             parent_id=None))
    return inserted_id(result)


async def _children(conn: AsyncConnection, parent_id: int, kind: str, names: set[str]
                    ) -> tuple[dict[str, int], int]:
    """Ids of the named children of an organisation, creating the missing ones."""
    existing = await _child_ids(conn, parent_id)
    missing = sorted(names - existing.keys())
    created = 0
    for name in missing:
        # Ignore-on-conflict: a concurrent import creating the same branch is not an error.
        result = await conn.execute(insert_ignore(conn, organisations, ["parent_id", "name"])
                                    .values(kind=kind, name=name, parent_id=parent_id))
        created += max(result.rowcount, 0)
    if missing:
        existing = await _child_ids(conn, parent_id)
    return existing, created


async def _child_ids(conn: AsyncConnection, parent_id: int) -> dict[str, int]:
    rows = await conn.execute(select(organisations.c.name, organisations.c.id)
                              .where(organisations.c.parent_id == parent_id))
    return {row.name: row.id for row in rows}


# --- People and roles ---

_PERSON_COLUMNS = ("name", "gender", "birth_date", "joined_on", "phone", "urban_rural",
                   "branch_id", "active")


async def _store_people(conn: AsyncConnection, valid: list[RosterPerson],
                        branch_ids: dict[tuple[str, str], int], now: datetime
                        ) -> tuple[int, int, int]:
    """Upsert people by ID number and set their roles; return created, updated, unchanged."""
    stored = await _stored_people(conn, [person.id_number for person in valid])
    stored_roles = await _stored_roles(conn, [row.id for row in stored.values()])
    changes: list[tuple[RosterPerson, dict[str, Any]]] = []
    created = unchanged = 0
    for person in valid:
        before = stored.get(person.id_number)
        values = _person_values(person, before, branch_ids)
        if before is None:
            created += 1
        elif (all(getattr(before, column) == values[column] for column in _PERSON_COLUMNS)
              and stored_roles.get(before.id, set()) == person.roles):
            unchanged += 1
            continue
        changes.append((person, values))
    if changes:
        await conn.execute(
            upsert(conn, people, ["id_number"], [*_PERSON_COLUMNS, "updated_at"]),
            [{**values, "id_number": person.id_number, "created_at": now, "updated_at": now}
             for person, values in changes])
        ids = {number: row.id for number, row in (await _stored_people(
            conn, [person.id_number for person, _ in changes])).items()}
        await _set_roles(conn, {ids[person.id_number]: person.roles for person, _ in changes},
                         stored_roles)
    return created, len(changes) - created, unchanged


def _person_values(person: RosterPerson, before: Any,
                   branch_ids: dict[tuple[str, str], int]) -> dict[str, Any]:
    def keep(new: object, column: str) -> object:
        # A blank optional cell means "not known to the clerk", not "erase it".
        return new if new is not None or before is None else getattr(before, column)

    branch_id = (branch_ids[(person.committee, person.branch)]
                 if person.committee is not None and person.branch is not None else None)
    return {
        "name": person.name,
        "gender": person.gender,
        "birth_date": person.birth_date,
        "joined_on": keep(person.joined_on, "joined_on"),
        "phone": keep(person.phone, "phone"),
        "urban_rural": keep(person.urban_rural, "urban_rural"),
        "branch_id": branch_id,
        "active": True,
    }


async def _stored_people(conn: AsyncConnection, id_numbers: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(id_numbers):
        rows = await conn.execute(select(people).where(people.c.id_number.in_(chunk)))
        found.update({row.id_number: row for row in rows})
    return found


async def _stored_roles(conn: AsyncConnection, person_ids: list[int]) -> dict[int, set[str]]:
    roles: dict[int, set[str]] = {}
    for chunk in _chunks(person_ids):
        rows = await conn.execute(select(person_roles.c.person_id, person_roles.c.role)
                                  .where(person_roles.c.person_id.in_(chunk)))
        for row in rows:
            roles.setdefault(row.person_id, set()).add(row.role)
    return roles


async def _set_roles(conn: AsyncConnection, wanted: dict[int, frozenset[str]],
                     stored: dict[int, set[str]]) -> None:
    """Make each person's role rows exactly the file's roles."""
    # Role rows are the current assignment, not history: a role the file no longer gives is
    # deleted. Who did what in a role is kept by the cases' own event rows.
    additions = []
    for person_id, roles in wanted.items():
        current = stored.get(person_id, set())
        removed = current - roles
        if removed:
            await conn.execute(delete(person_roles).where(
                person_roles.c.person_id == person_id, person_roles.c.role.in_(sorted(removed))))
        additions += [{"person_id": person_id, "role": role} for role in sorted(roles - current)]
    if additions:
        await conn.execute(insert_ignore(conn, person_roles, ["person_id", "role"]), additions)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
