"""The desk's 工作台: my to-dos, cases by status and township, notices held by an objection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import cases, objections, public_notices
from bangfu_bot.members.models import people
from bangfu_bot.reports.cases import BRANCH, COMMITTEE, held_by_objection
from bangfu_bot.reports.viewer import Viewer
from bangfu_bot.todos.models import todos

# Statuses where a case is still under way, in the order of the procedure; the others
# (failed, filed, in the ledger, exited) are counted in one column each after them.
STATUS_ORDER: tuple[CaseStatus, ...] = tuple(CaseStatus)


@dataclass
class Grid:
    """Cases by township (rows) and status (columns)."""

    statuses: list[str]
    townships: list[tuple[int | None, str]] = field(default_factory=list)
    counts: dict[tuple[int | None, str], int] = field(default_factory=dict)

    def total(self, status: str) -> int:
        """All townships' cases in one status."""
        return sum(n for (_, s), n in self.counts.items() if s == status)

    def row_total(self, township: int | None) -> int:
        """One township's cases in every status."""
        return sum(n for (t, _), n in self.counts.items() if t == township)


async def status_grid(conn: AsyncConnection, viewer: Viewer) -> Grid:
    """How many cases within sight stand at each status in each township."""
    rows = await conn.execute(
        select(
            COMMITTEE.c.id,
            COMMITTEE.c.name,
            cases.c.status,
            func.count().label("n"),
        )
        .select_from(
            cases.outerjoin(BRANCH, BRANCH.c.id == cases.c.branch_id).outerjoin(
                COMMITTEE, COMMITTEE.c.id == BRANCH.c.parent_id
            )
        )
        .where(viewer.where(cases.c.branch_id, BRANCH.c.parent_id))
        .group_by(COMMITTEE.c.id, COMMITTEE.c.name, cases.c.status)
    )
    grid = Grid(statuses=[str(s) for s in STATUS_ORDER])
    names: dict[int | None, str] = {}
    for row in rows:
        names[row.id] = row.name or ""
        grid.counts[(row.id, row.status)] = int(row.n)
    grid.townships = sorted(names.items(), key=lambda item: (item[0] is None, item[1]))
    return grid


async def held_notices(conn: AsyncConnection, viewer: Viewer) -> list[Any]:
    """Cases on notice with an objection not yet resolved: the notice cannot close."""
    return list(
        await conn.execute(
            select(
                cases.c.id,
                people.c.name,
                BRANCH.c.name.label("branch_name"),
                public_notices.c.ends_on,
                select(func.count())
                .where(objections.c.case_id == cases.c.id, objections.c.resolved_at.is_(None))
                .scalar_subquery()
                .label("open_objections"),
            )
            .select_from(
                cases.join(people, people.c.id == cases.c.person_id)
                .outerjoin(BRANCH, BRANCH.c.id == cases.c.branch_id)
                .outerjoin(public_notices, public_notices.c.case_id == cases.c.id)
            )
            .where(
                cases.c.status == CaseStatus.ON_NOTICE,
                held_by_objection(),
                viewer.where(cases.c.branch_id, BRANCH.c.parent_id),
            )
            .order_by(public_notices.c.ends_on, cases.c.id)
        )
    )


async def my_todos(conn: AsyncConnection, person_id: int, *, limit: int = 50) -> list[Any]:
    """The viewer's open to-dos, oldest first, with the case or loan each is about."""
    return list(
        await conn.execute(
            select(
                todos.c.id,
                todos.c.kind,
                todos.c.text,
                todos.c.created_at,
                todos.c.case_id,
                todos.c.loan_id,
            )
            .where(todos.c.assignee_id == person_id, todos.c.done_at.is_(None))
            .order_by(todos.c.id)
            .limit(limit)
        )
    )
