"""走访 on the desk: the campaigns with their progress against the deadline, one campaign's
progress by township and branch with the households not yet visited, and the small panel
the 工作台 shows. Everything is counted within the viewer's sight (reports.visits)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.desk.base import Desk, current_of, desk_of, page, refuse, render
from bangfu_bot.reports.scope import viewer_scope
from bangfu_bot.reports.viewer import Viewer
from bangfu_bot.reports.visits import CampaignRow, campaign_list, campaign_view

PAGE = 50  # campaigns a page
PENDING_PAGE = 200  # households not yet visited a page
PANEL = 4  # campaigns the 工作台 shows
RECENT = 30  # days after its deadline a finished campaign stays on the 工作台
NOWHERE = 0  # no organisation has this id: a reader placed nowhere sees nothing


def scope_ids(viewer: Viewer) -> tuple[int | None, int | None]:
    """The (township, branch) the read side narrows to for this viewer; one the roster does
    not place gets a township nobody is in, and so sees nothing."""
    return viewer_scope(viewer) or (NOWHERE, None)


def _offset(request: web.Request, name: str = "from") -> int:
    raw = request.query.get(name, "0")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 0


@page
async def visit_list(request: web.Request) -> web.Response:
    """走访: the campaigns, latest deadline first, with progress within sight."""
    viewer = current_of(request).viewer
    desk = desk_of(request)
    township_id, branch_id = scope_ids(viewer)
    start = _offset(request)
    async with AsyncSession(desk.engine) as session:
        found = await campaign_list(
            session,
            today=_today(desk),
            township_id=township_id,
            branch_id=branch_id,
            limit=PAGE,
            offset=start,
        )
    return render(
        request,
        "visits.html",
        {"page": found, "start": start, "step": PAGE, "percent": percent},
    )


@page
async def campaign_page(request: web.Request) -> web.Response:
    """A campaign: progress by township and branch, and who is not visited yet."""
    viewer = current_of(request).viewer
    desk = desk_of(request)
    township_id, branch_id = scope_ids(viewer)
    start = _offset(request)
    async with AsyncSession(desk.engine) as session:
        view = await campaign_view(
            session,
            int(request.match_info["campaign_id"]),
            today=_today(desk),
            township_id=township_id,
            branch_id=branch_id,
            unmasked=viewer.sees_phone(),
            limit=PENDING_PAGE,
            offset=start,
        )
    if view is None:
        return refuse(request, 404, "no_campaign")
    return render(
        request,
        "campaign.html",
        {"view": view, "start": start, "step": PENDING_PAGE, "percent": percent},
    )


async def campaign_panel(desk: Desk, viewer: Viewer) -> list[CampaignRow]:
    """The 工作台's panel: within sight, the campaigns still under way (households left)
    and those whose deadline passed in the last month, latest deadline first."""
    township_id, branch_id = scope_ids(viewer)
    async with AsyncSession(desk.engine) as session:
        found = await campaign_list(
            session,
            today=_today(desk),
            township_id=township_id,
            branch_id=branch_id,
            limit=PANEL * 3,
        )
    live = [
        row for row in found.rows if row.households and (not row.done or row.days_left >= -RECENT)
    ]
    return live[:PANEL]


def percent(done: int, total: int) -> int:
    """Whole percent done (100 when there is nothing to do)."""
    return 100 if total <= 0 else min(100, done * 100 // total)


def _today(desk: Desk) -> Any:
    return desk.local(desk.now()).date()


ROUTES = [
    ("GET", "/visits", visit_list),
    ("GET", "/visits/{campaign_id:[0-9]{1,12}}", campaign_page),
]
