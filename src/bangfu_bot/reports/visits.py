"""走访 on the desk: campaigns with their progress against the deadline, progress by
township and branch, and the households not yet visited. Progress is counted by the branch
a household was listed under (`visits.branch_id`), as the campaign's own reminders count it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.common.fields import mask_phone
from bangfu_bot.members.models import organisations, people
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker
from bangfu_bot.visits.models import visit_campaigns, visits

__all__ = [
    "CampaignPage",
    "CampaignRow",
    "CampaignView",
    "PendingHousehold",
    "Progress",
    "campaign_list",
    "campaign_view",
]

say = speaker("bangfu_bot.reports")


@dataclass(frozen=True)
class CampaignRow:
    """A campaign and its progress within the reader's scope; `days_left` is negative once
    the deadline has passed."""

    campaign_id: int
    name: str
    occasion: str
    occasion_on: date
    deadline: date
    days_left: int
    households: int
    visited: int
    cash_given_fen: int

    @property
    def done(self) -> bool:
        """Every household listed has been visited."""
        return self.visited >= self.households


@dataclass(frozen=True)
class CampaignPage:
    """A page of campaigns, latest deadline first, and how many there are."""

    total: int
    rows: tuple[CampaignRow, ...]


@dataclass(frozen=True)
class Progress:
    """Households listed and visited in one township or branch (`township` is the branch's
    township on a branch line, the township's own name on a township line)."""

    organisation_id: int | None
    name: str
    township: str
    households: int
    visited: int


@dataclass(frozen=True)
class PendingHousehold:
    """A household not yet visited, and who is to visit it."""

    person_id: int
    name: str
    phone: str
    branch: str
    township: str
    assignee: str
    assigned_as: str


@dataclass(frozen=True)
class CampaignView:
    """One campaign: its line, progress by township and by branch, and a page of the
    households not yet visited (`pending_total` in all)."""

    campaign: CampaignRow
    goods: str
    cash_fen: int
    by_township: tuple[Progress, ...]
    by_branch: tuple[Progress, ...]
    pending_total: int
    pending: tuple[PendingHousehold, ...]


def _visited() -> Any:
    return func.coalesce(func.sum(case((visits.c.visited_on.is_not(None), 1), else_=0)), 0)


async def campaign_list(
    session: AsyncSession,
    *,
    today: date,
    township_id: int | None = None,
    branch_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CampaignPage:
    """Campaigns, latest deadline first, with households listed and visited in scope (three
    queries)."""
    conn = await session.connection()
    total = await conn.scalar(select(func.count()).select_from(visit_campaigns))
    heads = (
        await conn.execute(
            select(visit_campaigns)
            .order_by(visit_campaigns.c.deadline.desc(), visit_campaigns.c.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    figures = await _figures(conn, [head.id for head in heads], township_id, branch_id)
    return CampaignPage(
        int(total or 0), tuple(_row(head, figures.get(head.id), today) for head in heads)
    )


async def _figures(
    conn: Any, ids: list[int], township_id: int | None, branch_id: int | None
) -> dict[int, tuple[int, int, int]]:
    if not ids:
        return {}
    query = (
        select(
            visits.c.campaign_id,
            func.count(),
            _visited(),
            func.coalesce(func.sum(visits.c.cash_fen), 0),
        )
        .where(
            visits.c.campaign_id.in_(ids),
            in_scope(visits.c.branch_id, township_id=township_id, branch_id=branch_id),
        )
        .group_by(visits.c.campaign_id)
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in await conn.execute(query)}


def _row(head: Any, figures: tuple[int, int, int] | None, today: date) -> CampaignRow:
    households, visited, cash = figures or (0, 0, 0)
    return CampaignRow(
        campaign_id=head.id,
        name=head.name,
        occasion=head.occasion,
        occasion_on=head.occasion_on,
        deadline=head.deadline,
        days_left=(head.deadline - today).days,
        households=households,
        visited=visited,
        cash_given_fen=cash,
    )


async def campaign_view(
    session: AsyncSession,
    campaign_id: int,
    *,
    today: date,
    township_id: int | None = None,
    branch_id: int | None = None,
    unmasked: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> CampaignView | None:
    """One campaign's progress by township and branch within the scope, and the households
    not yet visited (names in order, phones masked unless `unmasked`); None when there is no
    such campaign. Five queries."""
    conn = await session.connection()
    head = (
        await conn.execute(select(visit_campaigns).where(visit_campaigns.c.id == campaign_id))
    ).first()
    if head is None:
        return None
    scope = in_scope(visits.c.branch_id, township_id=township_id, branch_id=branch_id)
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    orgs = visits.outerjoin(branch, branch.c.id == visits.c.branch_id).outerjoin(
        committee, committee.c.id == branch.c.parent_id
    )
    lines = (
        await conn.execute(
            select(
                visits.c.branch_id,
                branch.c.name.label("branch"),
                committee.c.id.label("township_id"),
                committee.c.name.label("township"),
                func.count().label("households"),
                _visited().label("visited"),
                func.coalesce(func.sum(visits.c.cash_fen), 0).label("cash"),
            )
            .select_from(orgs)
            .where(visits.c.campaign_id == campaign_id, scope)
            .group_by(visits.c.branch_id, branch.c.name, committee.c.id, committee.c.name)
        )
    ).all()
    unassigned = say("no_township")
    by_branch = sorted(
        (
            Progress(
                line.branch_id,
                line.branch or unassigned,
                line.township or unassigned,
                int(line.households),
                int(line.visited),
            )
            for line in lines
        ),
        key=lambda line: (line.township, line.name),
    )
    townships: dict[int | None, list[Any]] = {}
    for line in lines:
        entry = townships.setdefault(line.township_id, [line.township or unassigned, 0, 0])
        entry[1] += int(line.households)
        entry[2] += int(line.visited)
    by_township = sorted(
        (
            Progress(key, name, name, households, done)
            for key, (name, households, done) in townships.items()
        ),
        key=lambda line: line.name,
    )
    figures = (
        sum(int(line.households) for line in lines),
        sum(int(line.visited) for line in lines),
        sum(int(line.cash) for line in lines),
    )
    pending_where = (visits.c.campaign_id == campaign_id, scope, visits.c.visited_on.is_(None))
    pending_total = await conn.scalar(
        select(func.count()).select_from(visits).where(*pending_where)
    )
    member = people.alias("member")
    assignee = people.alias("assignee")
    pending = (
        await conn.execute(
            select(
                visits.c.person_id,
                member.c.name,
                member.c.phone,
                branch.c.name.label("branch"),
                committee.c.name.label("township"),
                assignee.c.name.label("assignee"),
                visits.c.assigned_as,
            )
            .select_from(
                orgs.join(member, member.c.id == visits.c.person_id).outerjoin(
                    assignee, assignee.c.id == visits.c.assignee_id
                )
            )
            .where(*pending_where)
            .order_by(committee.c.name, branch.c.name, member.c.name, visits.c.id)
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
    ).all()
    return CampaignView(
        campaign=_row(head, figures, today),
        goods=head.goods or "",
        cash_fen=head.cash_fen,
        by_township=tuple(by_township),
        by_branch=tuple(by_branch),
        pending_total=int(pending_total or 0),
        pending=tuple(
            PendingHousehold(
                row.person_id,
                row.name,
                (row.phone or "") if unmasked else mask_phone(row.phone or ""),
                row.branch or unassigned,
                row.township or unassigned,
                row.assignee or "",
                row.assigned_as,
            )
            for row in pending
        ),
    )
