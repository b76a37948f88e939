"""Importing the roster (党员花名册): a CSV or Excel file of people, their 党委, 支部 and roles.

The file is the department's word on who is on the roster and in which branch: an import
builds the organisation tree it names, adds or updates people keyed by ID number, and sets
each person's roles to exactly those in the file. It never removes anyone (a township
often sends only its own people), and a blank optional cell keeps what is stored.

Two kinds of file are read: the department's template (党委, 支部, 角色 columns) and the
export of the national party member information system (全国党员管理信息系统), whose
columns have other names (公民身份号码, 联系电话, 所在党支部 ...) and which has no 党委 and no
角色 column. Without a 党委 column the 党委 is read from the branch's full name
(「中共桃源镇委员会桃源村党支部」, 「桃源镇桃源村党支部」: 桃源镇党委, 桃源村党支部), or taken
from the column `committee_column` names. Without a 角色 column new people are 党员 and
people already stored keep their roles (set by `bangfu-bot import roles`, members/roles.py).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.authority import COUNTY_MATTER, Actor, acting_role, authorize
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
from bangfu_bot.members.tables import RosterError, cell_text, read_table
from bangfu_bot.texts import speaker

__all__ = [
    "DEFAULT_ROLES",
    "HEADERS",
    "HEADER_ALIASES",
    "REQUIRED_HEADERS",
    "ImportReport",
    "Rejection",
    "RosterError",
    "RosterPerson",
    "RosterRow",
    "RowInvalid",
    "import_roster",
    "import_rows",
    "parse_roles",
    "read_roster",
    "split_branch",
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
HEADERS = (
    NAME,
    GENDER,
    BIRTH_DATE,
    JOINED_ON,
    ID_NUMBER,
    PHONE,
    COMMITTEE,
    BRANCH,
    ROLES,
    URBAN_RURAL,
)
# 党委 comes from the branch's full name when there is no column for it; 角色 defaults.
REQUIRED_HEADERS = (NAME, ID_NUMBER, BRANCH)

# stays in Python: header words a parser matches (the template's, then the national
# system's export and what clerks write), the preferred first when a file has two of them;
# 学历, 民族, 人员类别 and the like have nowhere to go and are not read.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    NAME: (NAME, "党员姓名"),
    GENDER: (GENDER,),
    BIRTH_DATE: (BIRTH_DATE,),
    JOINED_ON: (JOINED_ON, "入党时间", "加入党组织日期", "加入党组织时间"),
    ID_NUMBER: (
        ID_NUMBER,
        "公民身份号码",
        "公民身份证号码",
        "身份证号码",
        "公民身份证号",
        "身份证",
    ),
    PHONE: (PHONE, "手机号码", "手机", "移动电话", "联系电话", "电话", "联系方式"),
    COMMITTEE: (COMMITTEE, "所属党委", "乡镇党委", "党(工)委", "党工委"),
    BRANCH: (
        BRANCH,
        "所在党支部",
        "党支部",
        "所在支部",
        "所在党组织",
        "党组织",
        "所在党组织名称",
        "党组织名称",
    ),
    ROLES: (ROLES,),
    URBAN_RURAL: (URBAN_RURAL, "城镇或农村"),
}

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
# What a new person is when the file has no 角色 column: everyone the national system
# exports is a party member.
DEFAULT_ROLES = frozenset({"member"})
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

# stays in Python: the words of an organisation's full name that split_branch reads
_PARTY_PREFIXES = ("中国共产党", "中共")
# stays in Python: as above (longest first, so 工作委员会 wins over 委员会)
_COMMITTEE_WORDS = ("工作委员会", "委员会", "党工委", "党委")
_TOWNSHIP_WORDS = ("街道", "苏木", "镇", "乡")
_BRANCH_WORDS = ("党", "支部", "总支", "委员会")  # a branch's own name comes before these
_COMMITTEE_SUFFIX = "党委"
_ECHO_MAX = 30  # characters of a cell a reason may repeat

T = TypeVar("T")


@dataclass(frozen=True)
class RosterRow:
    """One line of the file as typed: the cells under the known headers."""

    line: int
    # Raw cells hold full ID and phone numbers, so they stay out of repr (and test logs).
    values: Mapping[str, object] = field(repr=False)
    # Each column's header as the file writes it (所在党支部 for 支部), for the reasons.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def value(self, header: str) -> object:
        """The raw cell under `header`, or None when the file has no such column."""
        return self.values.get(header)

    def column(self, header: str) -> str:
        """What the file calls the column `header` (the template's word if not known)."""
        return self.headers.get(header) or header


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
    # None when the file has no 角色 column: 党员 if new, else the stored roles are kept.
    roles: frozenset[str] | None


@dataclass(frozen=True)
class Rejection:
    """A line left out of the import, with a short reason naming the column."""

    line: int
    reason: str

    def text(self) -> str:
        """The line as the operator reads it, e.g. "第 3 行：身份证号最后一位（校验位）..."."""
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
            say("roster_refused", count=len(self.rejected))
            if self.refused
            else say(
                "roster_done",
                created=self.created,
                updated=self.updated,
                unchanged=self.unchanged,
                rejected=len(self.rejected),
                committees=self.committees_created,
                branches=self.branches_created,
            )
        )
        return [rejection.text() for rejection in self.rejected] + [summary]


# --- Reading the file ----------------------------------------------------------------------


def read_roster(
    path: Path, *, committee_column: str | None = None, formulas_as_text: bool = False
) -> list[RosterRow]:
    """Read a .csv (UTF-8 or GBK) or .xlsx roster under its header (title rows above it
    are skipped); `committee_column` names the column that holds the 党委; with
    `formulas_as_text` a formula cell is read as its formula, not its cached value."""
    aliases = dict(HEADER_ALIASES)
    if committee_column is not None:
        aliases[COMMITTEE] = (committee_column,)
    table = read_table(path, aliases, REQUIRED_HEADERS, formulas_as_text=formulas_as_text)
    if committee_column is not None and COMMITTEE not in table.headers:
        raise RosterError(say("table_committee_column_missing", column=committee_column))
    headers = table.headers
    return [RosterRow(record.line, record.values, headers) for record in table.records]


_text = cell_text


# --- Checking rows -------------------------------------------------------------------------


class RowInvalid(ValueError):
    """What is wrong with a cell (or a row): the reasons the operator reads."""

    def __init__(self, *reasons: str) -> None:
        super().__init__(*reasons)
        self.reasons = list(reasons)


def validate(
    rows: Iterable[RosterRow], *, today: date
) -> tuple[list[RosterPerson], list[Rejection]]:
    """Check every row; a row with any problem becomes one rejection listing them all."""
    valid: list[RosterPerson] = []
    rejected: list[Rejection] = []
    first_line: dict[str, int] = {}
    for row in rows:
        result = _check_row(row, today=today)
        if isinstance(result, RosterPerson) and result.id_number in first_line:
            result = [
                say(
                    "roster_id_duplicate",
                    column=row.column(ID_NUMBER),
                    line=first_line[result.id_number],
                )
            ]
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
        except RowInvalid as exc:
            reasons.extend(exc.reasons)
            return None

    column = row.column
    name = take(lambda: _name(row.value(NAME), column(NAME)))
    id_number = take(lambda: _id_number(row.value(ID_NUMBER), column(ID_NUMBER), today=today))
    gender = take(lambda: _gender(row.value(GENDER), column(GENDER), id_number))
    birth = take(
        lambda: _birth_date(row.value(BIRTH_DATE), column(BIRTH_DATE), id_number, today=today)
    )
    joined = take(lambda: _joined_on(row.value(JOINED_ON), column(JOINED_ON), birth, today=today))
    phone = take(lambda: _phone(row.value(PHONE), column(PHONE)))
    urban_rural = take(lambda: _urban_rural(row.value(URBAN_RURAL), column(URBAN_RURAL)))
    roles_given = ROLES in row.values
    roles = take(lambda: parse_roles(row.value(ROLES), column(ROLES))) if roles_given else None
    org: tuple[str | None, str | None] | None = None
    if roles is not None or not roles_given:  # a rejected role leaves where they belong open
        org = take(lambda: _organisation(row, roles))
    if reasons:
        return reasons
    assert name and id_number and gender and birth and org  # for the type checker
    return RosterPerson(
        line=row.line,
        name=name,
        id_number=id_number,
        gender=gender,
        birth_date=birth,
        joined_on=joined,
        phone=phone,
        urban_rural=urban_rural,
        committee=org[0],
        branch=org[1],
        roles=roles,
    )


def _name(value: object, column: str) -> str:
    if not _text(value):
        raise RowInvalid(say("roster_name_empty", column=column))
    try:
        return parse_name(_text(value))
    except FieldError:
        raise RowInvalid(say("roster_name_invalid", column=column)) from None


def _id_number(value: object, column: str, *, today: date) -> str:
    text = _text(value)
    # An ID typed into a number cell has already lost its last digits; no digit can be trusted.
    if (isinstance(value, int | float) and not isinstance(value, bool)) or _SCIENTIFIC.match(text):
        raise RowInvalid(say("roster_id_as_number", column=column))
    if not text:
        raise RowInvalid(say("roster_id_empty", column=column))
    try:
        return parse_id_number(text, today=today)
    except FieldError as exc:
        raise RowInvalid(
            say(_ID_REASONS.get(exc.message, "roster_id_invalid"), column=column)
        ) from None


def _gender(value: object, column: str, id_number: str | None) -> str | None:
    text = _text(value)
    if text:
        if text not in _GENDERS:
            raise RowInvalid(say("roster_gender_invalid", column=column))
        return _GENDERS[text]
    if id_number is None:
        return None
    # The 17th character of a resident ID is odd for men and even for women.
    return "男" if int(id_number[16]) % 2 else "女"


def _birth_date(value: object, column: str, id_number: str | None, *, today: date) -> date | None:
    from_id = id_birth_date(id_number) if id_number else None
    if not _text(value):
        return from_id
    given = _date(value, column=column, today=today)
    if from_id is not None and given != from_id:
        raise RowInvalid(say("roster_birth_mismatch", column=column))
    return given


def _joined_on(value: object, column: str, birth: date | None, *, today: date) -> date | None:
    if not _text(value):
        return None
    joined = _date(value, column=column, today=today)
    if birth is not None and joined < birth:
        raise RowInvalid(say("roster_joined_before_birth", column=column))
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
                raise RowInvalid(say("roster_date_future", column=column)) from None
            raise RowInvalid(say("roster_date_unreadable", column=column)) from None
    if result > today:
        raise RowInvalid(say("roster_date_future", column=column))
    return result


def _phone(value: object, column: str) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        return parse_phone(text)
    except FieldError:
        raise RowInvalid(say("roster_phone_invalid", column=column)) from None


def _urban_rural(value: object, column: str) -> str | None:
    text = _text(value)
    if not text:
        return None
    if text not in _URBAN_RURAL:
        raise RowInvalid(say("roster_urban_rural_invalid", column=column))
    return _URBAN_RURAL[text]


def parse_roles(value: object, column: str = ROLES) -> frozenset[str]:
    """The roles a 角色 cell names ("党员、支部书记"); RowInvalid says what is wrong."""
    words = [
        word for word in _ROLE_SEPARATORS.split(unicodedata.normalize("NFKC", _text(value))) if word
    ]
    if not words:
        raise RowInvalid(say("roster_roles_empty", column=column))
    roles = set()
    for word in words:
        role = ROLE_WORDS.get(word) or _ROLE_ALIASES.get(word)
        if role is None:
            raise RowInvalid(say("roster_role_unknown", column=column, word=_shown(word, 10)))
        roles.add(role)
    # No role is implied: a secretary on the roster is usually also 党员, but only the
    # file says so.
    return frozenset(roles)


def _shown(text: str, longest: int = _ECHO_MAX) -> str:
    """A cell repeated in a reason: never digits that could be an ID or a phone (a shifted
    column puts them anywhere), and never more than a short name."""
    if re.search(r"[0-9]{7,}", text) or (longest <= 10 and any(ch.isdigit() for ch in text)):
        return "…"
    return text if len(text) <= longest else text[:longest] + "…"


def _organisation(row: RosterRow, roles: frozenset[str] | None) -> tuple[str | None, str | None]:
    """The row's (党委, 支部): from the 党委 column, or else read from the branch's name."""
    if roles is not None and roles <= COUNTY_ROLES:
        # County staff and supervisors belong to the county (branch_id NULL) even when the
        # clerk filled in their old township; the 党委/支部 columns are not read for them.
        return None, None
    committee = " ".join(_text(row.value(COMMITTEE)).split())
    branch = " ".join(_text(row.value(BRANCH)).split())
    reasons = []
    if not committee and branch:
        split = split_branch(branch)
        if split is not None:
            committee, branch = split
        elif COMMITTEE in row.values:
            reasons.append(say("roster_committee_empty", column=row.column(COMMITTEE)))
        else:
            reasons.append(
                say("roster_committee_unknown", column=row.column(BRANCH), branch=_shown(branch))
            )
    elif not committee and COMMITTEE in row.values:
        # Blank branch too: the branch's reason says what to write; with a 党委 column its
        # blank cell is a problem of its own.
        reasons.append(say("roster_committee_empty", column=row.column(COMMITTEE)))
    if not branch:
        reasons.append(say("roster_branch_empty", column=row.column(BRANCH)))
    for name, header in ((committee, COMMITTEE), (branch, BRANCH)):
        if len(name) > _ORG_NAME_MAX:
            reasons.append(say("roster_org_too_long", column=row.column(header)))
    if reasons:
        raise RowInvalid(*reasons)
    return committee, branch


def split_branch(full_name: str) -> tuple[str, str] | None:
    """(党委, 支部) read from a branch's full name, or None when it does not name its 党委.

    「中共桃源镇委员会桃源村党支部」 and 「桃源镇党委桃源村党支部」 name the committee before
    the branch; 「桃源镇桃源村党支部」 names the township (镇, 乡, 街道, 苏木). Either way the
    党委 is called 「桃源镇党委」 and the branch 「桃源村党支部」.
    """
    name = "".join(full_name.split())
    for prefix in _PARTY_PREFIXES:
        name = name.removeprefix(prefix)
    for words, keeps_word in ((_COMMITTEE_WORDS, False), (_TOWNSHIP_WORDS, True)):
        for start in range(1, len(name)):
            word = next((word for word in words if name.startswith(word, start)), None)
            if word is None:
                continue
            # 桃源镇 keeps its 镇; 桃源镇委员会 drops its 委员会.
            unit = name[: start + len(word)] if keeps_word else name[:start]
            branch = name[start + len(word) :]
            if len(unit) >= 2 and _names_itself(branch):
                return unit + _COMMITTEE_SUFFIX, branch
    return None


def _names_itself(branch: str) -> bool:
    """Whether a branch's name says which branch it is: 「桃源村党支部」, not 「村党支部」."""
    cut = min(
        (index for index in (branch.find(word) for word in _BRANCH_WORDS) if index >= 0),
        default=len(branch),
    )
    return cut >= 2


# --- Writing -------------------------------------------------------------------------------


async def import_roster(
    engine: AsyncEngine,
    rows_or_path: Path | str | Iterable[RosterRow],
    *,
    county_name: str,
    skip_invalid: bool,
    now: datetime,
    today: date | None = None,
    committee_column: str | None = None,
    actor: Actor | None = None,
) -> ImportReport:
    """Validate and store a roster in one transaction; with errors and no skip, store nothing.
    `actor` None is the command line (the system); the authority policy decides either way."""
    rows = (
        read_roster(Path(rows_or_path), committee_column=committee_column)
        if isinstance(rows_or_path, str | Path)
        else list(rows_or_path)
    )
    async with engine.begin() as conn:
        report = await import_rows(
            conn,
            rows,
            county_name=county_name,
            skip_invalid=skip_invalid,
            now=now,
            today=today,
            actor=actor,
        )
    if report.created:
        await refresh_statistics(engine)
    return report


async def import_rows(
    conn: AsyncConnection,
    rows: Iterable[RosterRow],
    *,
    county_name: str,
    skip_invalid: bool,
    now: datetime,
    today: date | None = None,
    actor: Actor | None = None,
) -> ImportReport:
    """导入名册 inside the caller's transaction: the authority policy first, then every row
    checked; with errors and no skip nothing is written (the report says `refused`)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    county_name = county_name.strip()
    if not county_name:
        raise ValueError("county_name must not be empty")
    authorize(
        "roster.import", actor, acting_role("roster.import", actor, COUNTY_MATTER), COUNTY_MATTER
    )
    # "Today" for dates in the file is the county's calendar day, not UTC's.
    valid, rejected = validate(rows, today=today or now.astimezone(_CHINA).date())
    if rejected and not skip_invalid:
        return ImportReport(rejected=rejected, refused=True)
    if not valid:
        return ImportReport(rejected=rejected)
    branch_ids, committees_created, branches_created = await _build_tree(conn, county_name, valid)
    created, updated, unchanged = await _store_people(conn, valid, branch_ids, now)
    log.info(
        "roster imported: %d created, %d updated, %d unchanged, %d rejected",
        created,
        updated,
        unchanged,
        len(rejected),
    )
    return ImportReport(
        created=created,
        updated=updated,
        unchanged=unchanged,
        rejected=rejected,
        committees_created=committees_created,
        branches_created=branches_created,
    )


# --- The organisation tree ---


async def _build_tree(
    conn: AsyncConnection, county_name: str, valid: list[RosterPerson]
) -> tuple[dict[tuple[str, str], int], int, int]:
    """Get or create county → 党委 → 支部; map (committee, branch) names to branch ids."""
    county_id = await _county_id(conn, county_name)
    wanted: dict[str, set[str]] = {}
    for person in valid:
        if person.committee is not None and person.branch is not None:
            wanted.setdefault(person.committee, set()).add(person.branch)
    committee_ids, committees_created = await _children(conn, county_id, "committee", set(wanted))
    branch_ids: dict[tuple[str, str], int] = {}
    branches_created = 0
    for committee, branches in sorted(wanted.items()):
        ids, created = await _children(conn, committee_ids[committee], "branch", branches)
        branches_created += created
        branch_ids.update({(committee, branch): ids[branch] for branch in branches})
    return branch_ids, committees_created, branches_created


async def _county_id(conn: AsyncConnection, name: str) -> int:
    # The unique (parent_id, name) does not cover a NULL parent, so look before inserting.
    found = (
        await conn.execute(
            select(organisations.c.id).where(
                organisations.c.kind == "county",
                organisations.c.parent_id.is_(None),
                organisations.c.name == name,
            )
        )
    ).scalar()
    if found is not None:
        return int(found)
    result = await conn.execute(
        insert(organisations).values(kind="county", name=name, parent_id=None)
    )
    return inserted_id(result)


async def _children(
    conn: AsyncConnection, parent_id: int, kind: str, names: set[str]
) -> tuple[dict[str, int], int]:
    """Ids of the named children of an organisation, creating the missing ones."""
    existing = await _child_ids(conn, parent_id)
    missing = sorted(names - existing.keys())
    created = 0
    for name in missing:
        # Ignore-on-conflict: a concurrent import creating the same branch is not an error.
        result = await conn.execute(
            insert_ignore(conn, organisations, ["parent_id", "name"]).values(
                kind=kind, name=name, parent_id=parent_id
            )
        )
        created += max(result.rowcount, 0)
    if missing:
        existing = await _child_ids(conn, parent_id)
    return existing, created


async def _child_ids(conn: AsyncConnection, parent_id: int) -> dict[str, int]:
    rows = await conn.execute(
        select(organisations.c.name, organisations.c.id).where(
            organisations.c.parent_id == parent_id
        )
    )
    return {row.name: row.id for row in rows}


# --- People and roles ---

_PERSON_COLUMNS = (
    "name",
    "gender",
    "birth_date",
    "joined_on",
    "phone",
    "urban_rural",
    "branch_id",
    "active",
)


async def _store_people(
    conn: AsyncConnection,
    valid: list[RosterPerson],
    branch_ids: dict[tuple[str, str], int],
    now: datetime,
) -> tuple[int, int, int]:
    """Upsert people by ID number and set their roles; return created, updated, unchanged."""
    stored = await _stored_people(conn, [person.id_number for person in valid])
    stored_roles = await _stored_roles(conn, [row.id for row in stored.values()])
    changes: list[tuple[RosterPerson, dict[str, Any], frozenset[str]]] = []
    created = unchanged = 0
    for person in valid:
        before = stored.get(person.id_number)
        current = frozenset(stored_roles.get(before.id, ())) if before is not None else None
        # No 角色 column: a new person is 党员, a stored one keeps the roles set before
        # (by an earlier roster or `import roles`).
        roles = person.roles if person.roles is not None else (current or DEFAULT_ROLES)
        values = _person_values(person, before, branch_ids, roles)
        if before is None:
            created += 1
        elif (
            all(getattr(before, column) == values[column] for column in _PERSON_COLUMNS)
            and current == roles
        ):
            unchanged += 1
            continue
        changes.append((person, values, roles))
    if changes:
        await conn.execute(
            upsert(conn, people, ["id_number"], [*_PERSON_COLUMNS, "updated_at"]),
            [
                {**values, "id_number": person.id_number, "created_at": now, "updated_at": now}
                for person, values, _ in changes
            ],
        )
        ids = {
            number: row.id
            for number, row in (
                await _stored_people(conn, [person.id_number for person, _, _ in changes])
            ).items()
        }
        await _set_roles(
            conn, {ids[person.id_number]: roles for person, _, roles in changes}, stored_roles
        )
    return created, len(changes) - created, unchanged


def _person_values(
    person: RosterPerson, before: Any, branch_ids: dict[tuple[str, str], int], roles: frozenset[str]
) -> dict[str, Any]:
    def keep(new: object, column: str) -> object:
        # A blank optional cell means "not known to the clerk", not "erase it".
        return new if new is not None or before is None else getattr(before, column)

    branch_id = (
        branch_ids[(person.committee, person.branch)]
        if person.committee is not None and person.branch is not None and not roles <= COUNTY_ROLES
        else None
    )
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
        rows = await conn.execute(
            select(person_roles.c.person_id, person_roles.c.role).where(
                person_roles.c.person_id.in_(chunk)
            )
        )
        for row in rows:
            roles.setdefault(row.person_id, set()).add(row.role)
    return roles


async def _set_roles(
    conn: AsyncConnection, wanted: dict[int, frozenset[str]], stored: dict[int, set[str]]
) -> None:
    """Make each person's role rows exactly the file's roles."""
    # Role rows are the current assignment, not history: a role the file no longer gives is
    # deleted. Who did what in a role is kept by the cases' own event rows.
    additions = []
    for person_id, roles in wanted.items():
        current = stored.get(person_id, set())
        removed = current - roles
        if removed:
            await conn.execute(
                delete(person_roles).where(
                    person_roles.c.person_id == person_id, person_roles.c.role.in_(sorted(removed))
                )
            )
        additions += [{"person_id": person_id, "role": role} for role in sorted(roles - current)]
    if additions:
        await conn.execute(insert_ignore(conn, person_roles, ["person_id", "role"]), additions)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
