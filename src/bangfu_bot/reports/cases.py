"""The desk's 案件: cases filtered within a viewer's sight, and one case's whole record.

Read-only queries; every filter value is a bound parameter (or checked against a fixed
list), so whatever is typed into the address bar is data, never SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import case_events, cases, evaluations, objections, public_notices
from bangfu_bot.members.models import organisations, people
from bangfu_bot.reports.viewer import Viewer

BRANCH = organisations.alias("branch")
COMMITTEE = organisations.alias("committee")
ACTOR = people.alias("actor")
LIST_LIMIT = 50  # a page of the case list: a screen and a half, and a 20 KB page
PAGE_MOST = 2_000  # pages further than this are asked of the filters, not of paging
TEXT_LIMIT = 40  # a category typed longer than the column matches nothing anyway


@dataclass(frozen=True)
class Filters:
    """What the case list is narrowed to (None: any)."""

    status: str | None = None
    township: int | None = None
    branch: int | None = None
    category: str | None = None
    year: int | None = None
    above_line: bool | None = None
    held: bool = False  # only notices held by an objection not yet resolved
    page: int = 1

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters (with changes) as query parameters, for links."""
        values = {
            "status": self.status,
            "township": self.township,
            "branch": self.branch,
            "category": self.category,
            "year": self.year,
            "above": None if self.above_line is None else ("1" if self.above_line else "0"),
            "held": "1" if self.held else None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _int(value: str | None, low: int, high: int) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 12:
        return None
    number = int(value.strip())
    return number if low <= number <= high else None


def parse_filters(query: Mapping[str, str]) -> Filters:
    """Filters from a query string; a value that is not one of the choices is ignored."""
    status = query.get("status")
    above = query.get("above")
    category = (query.get("category") or "").strip()[:TEXT_LIMIT] or None
    return Filters(
        status=status if status in set(CaseStatus) else None,
        township=_int(query.get("township"), 1, 2**62),
        branch=_int(query.get("branch"), 1, 2**62),
        category=category,
        year=_int(query.get("year"), 2000, 2100),
        above_line={"1": True, "0": False}.get(above or ""),
        held=query.get("held") == "1",
        page=_int(query.get("page"), 1, PAGE_MOST) or 1,
    )


def _cases_seen(viewer: Viewer) -> Select[Any]:
    return (
        select(
            cases.c.id,
            cases.c.status,
            cases.c.category,
            cases.c.household_size,
            cases.c.household_income_fen,
            cases.c.looks_above_line,
            cases.c.created_at,
            cases.c.updated_at,
            people.c.name,
            BRANCH.c.name.label("branch_name"),
            COMMITTEE.c.id.label("committee_id"),
            COMMITTEE.c.name.label("committee_name"),
        )
        .select_from(
            cases.join(people, people.c.id == cases.c.person_id)
            .outerjoin(BRANCH, BRANCH.c.id == cases.c.branch_id)
            .outerjoin(COMMITTEE, COMMITTEE.c.id == BRANCH.c.parent_id)
        )
        .where(viewer.where(cases.c.branch_id, BRANCH.c.parent_id))
    )


def held_by_objection() -> ColumnElement[bool]:
    """The case has an objection not yet resolved (on notice, the notice cannot close)."""
    return exists().where(
        and_(objections.c.case_id == cases.c.id, objections.c.resolved_at.is_(None))
    )


def _year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


async def case_list(
    conn: AsyncConnection, viewer: Viewer, filters: Filters, *, tz: ZoneInfo
) -> tuple[list[Any], bool]:
    """A page of the cases within sight that match, newest first (`LIST_LIMIT` a page);
    and whether there are more after it."""
    query = _cases_seen(viewer)
    if filters.status:
        query = query.where(cases.c.status == filters.status)
    if filters.township:
        query = query.where(BRANCH.c.parent_id == filters.township)
    if filters.branch:
        query = query.where(cases.c.branch_id == filters.branch)
    if filters.category:
        query = query.where(cases.c.category == filters.category)
    if filters.year:
        start, end = _year_bounds(filters.year, tz)
        query = query.where(cases.c.created_at >= start, cases.c.created_at < end)
    if filters.above_line is not None:
        query = query.where(cases.c.looks_above_line.is_(filters.above_line))
    if filters.held:
        query = query.where(cases.c.status == CaseStatus.ON_NOTICE, held_by_objection())
    offset = (filters.page - 1) * LIST_LIMIT
    query = query.order_by(cases.c.id.desc()).limit(LIST_LIMIT + 1).offset(offset)
    rows = list(await conn.execute(query))
    return rows[:LIST_LIMIT], len(rows) > LIST_LIMIT


async def places(conn: AsyncConnection, viewer: Viewer) -> tuple[list[Any], list[Any]]:
    """The townships and branches within sight (id, name; a branch with its township's)."""
    branch_rows = list(
        await conn.execute(
            select(BRANCH.c.id, BRANCH.c.name, BRANCH.c.parent_id)
            .where(BRANCH.c.kind == "branch", viewer.where(BRANCH.c.id, BRANCH.c.parent_id))
            .order_by(BRANCH.c.name)
        )
    )
    parents = {row.parent_id for row in branch_rows if row.parent_id is not None}
    township_rows = list(
        await conn.execute(
            select(COMMITTEE.c.id, COMMITTEE.c.name)
            .where(COMMITTEE.c.kind == "committee", COMMITTEE.c.id.in_(parents))
            .order_by(COMMITTEE.c.name)
        )
    )
    return township_rows, branch_rows


def _on_cases(viewer: Viewer, *columns: Any) -> Select[Any]:
    """Columns of the cases within sight, read from cases alone (every case has its member,
    so the filter choices need not join them); a township's through the branches."""
    query = select(*columns)
    if viewer.scope == "township":
        query = query.select_from(cases.join(BRANCH, BRANCH.c.id == cases.c.branch_id))
    else:
        query = query.select_from(cases)
    return query.where(viewer.where(cases.c.branch_id, BRANCH.c.parent_id))


async def categories(conn: AsyncConnection, viewer: Viewer) -> list[str]:
    """The categories of the cases within sight."""
    query = _on_cases(viewer, cases.c.category).distinct()
    return sorted(str(value) for value in (await conn.execute(query)).scalars())


async def years(conn: AsyncConnection, viewer: Viewer, *, tz: ZoneInfo) -> list[int]:
    """The years cases within sight were filed in, newest first."""
    query = _on_cases(viewer, func.min(cases.c.created_at), func.max(cases.c.created_at))
    first, last = (await conn.execute(query)).one()
    if first is None:
        return []
    return list(range(last.astimezone(tz).year, first.astimezone(tz).year - 1, -1))


@dataclass
class Record:
    """A case's whole record, as the desk shows it."""

    case: Any
    person: Any
    evaluations: list[Any] = field(default_factory=list)
    notice: Any = None
    objections: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


async def case_place(conn: AsyncConnection, case_id: int) -> Any:
    """Where a case belongs (branch id, township id), or None if there is no such case."""
    return (
        await conn.execute(
            select(cases.c.branch_id, BRANCH.c.parent_id.label("committee_id"))
            .select_from(cases.outerjoin(BRANCH, BRANCH.c.id == cases.c.branch_id))
            .where(cases.c.id == case_id)
        )
    ).first()


async def case_record(conn: AsyncConnection, case_id: int) -> Record | None:
    """Everything about one case: application and household, evaluations with their votes,
    the notice, objections and how each was resolved, every transition with its actor."""
    case = (
        await conn.execute(
            select(
                cases,
                BRANCH.c.name.label("branch_name"),
                COMMITTEE.c.id.label("committee_id"),
                COMMITTEE.c.name.label("committee_name"),
            )
            .select_from(
                cases.outerjoin(BRANCH, BRANCH.c.id == cases.c.branch_id).outerjoin(
                    COMMITTEE, COMMITTEE.c.id == BRANCH.c.parent_id
                )
            )
            .where(cases.c.id == case_id)
        )
    ).first()
    if case is None:
        return None
    person = (
        await conn.execute(
            select(
                people.c.id,
                people.c.name,
                people.c.gender,
                people.c.birth_date,
                people.c.joined_on,
                people.c.id_number,
                people.c.phone,
                people.c.urban_rural,
            ).where(people.c.id == case.person_id)
        )
    ).first()
    record = Record(case=case, person=person)
    record.evaluations = list(
        await conn.execute(
            select(evaluations, ACTOR.c.name.label("recorder"))
            .select_from(evaluations.join(ACTOR, ACTOR.c.id == evaluations.c.recorded_by))
            .where(evaluations.c.case_id == case_id)
            .order_by(evaluations.c.id)
        )
    )
    record.notice = (
        await conn.execute(select(public_notices).where(public_notices.c.case_id == case_id))
    ).first()
    resolver = people.alias("resolver")
    record.objections = list(
        await conn.execute(
            select(
                objections,
                ACTOR.c.name.label("raiser"),
                resolver.c.name.label("resolver"),
            )
            .select_from(
                objections.join(ACTOR, ACTOR.c.id == objections.c.raised_by).outerjoin(
                    resolver, resolver.c.id == objections.c.resolved_by
                )
            )
            .where(objections.c.case_id == case_id)
            .order_by(objections.c.id)
        )
    )
    record.events = list(
        await conn.execute(
            select(case_events, ACTOR.c.name.label("actor_name"))
            .select_from(case_events.outerjoin(ACTOR, ACTOR.c.id == case_events.c.actor_id))
            .where(case_events.c.case_id == case_id)
            .order_by(case_events.c.id)
        )
    )
    return record


async def approved_within(conn: AsyncConnection, viewer: Viewer) -> int:
    """How many approved cases within sight wait to be filed."""
    query = (
        _cases_seen(viewer)
        .with_only_columns(func.count())
        .where(and_(cases.c.status == CaseStatus.APPROVED))
    )
    return int((await conn.execute(query)).scalar_one())
