"""台账 on the desk: the year's ledger by township and category with the yearly review's
progress, within the viewer's sight, and its XLSX — the very workbook `bangfu-bot export
ledger` writes, through the same writer (`reports.ledger.ledger_xlsx`)."""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.desk.base import current_of, desk_of, page, refuse, render, say
from bangfu_bot.reports.ledger import ledger_overview, ledger_xlsx, ledger_years
from bangfu_bot.reports.scope import viewer_scope
from bangfu_bot.reports.viewer import Viewer

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
YEARS = (2000, 2100)


def _year(request: web.Request, years: tuple[int, ...]) -> int:
    """The year asked for; else this year if it has a ledger, else the latest that has."""
    asked = request.query.get("year", "").strip()
    if asked.isascii() and asked.isdigit() and YEARS[0] <= int(asked) <= YEARS[1]:
        return int(asked)
    this_year = desk_of(request).local(desk_of(request).now()).year
    if this_year in years or not years:
        return this_year
    return years[0]


def _township(request: web.Request) -> int | str | None:
    """The township id a download asks for, None for none, 'bad' for something else."""
    asked = request.query.get("township", "").strip()
    if not asked:
        return None
    if asked.isascii() and asked.isdigit() and len(asked) <= 12:
        return int(asked)
    return "bad"


def may_download(viewer: Viewer) -> bool:
    """The workbook is per township: the county's readers and township officers take it; a
    secretary's branch is no sheet of it, so they print the page instead."""
    return viewer.scope in ("county", "township")


@page
async def ledger_page(request: web.Request) -> web.Response:
    """台账: the year's ledger by township and category, and the review's progress."""
    viewer = current_of(request).viewer
    reach = viewer_scope(viewer)
    if reach is None:
        return refuse(request, 403, "out_of_sight")
    township_id, branch_id = reach
    async with AsyncSession(desk_of(request).engine) as session:
        years = await ledger_years(session, township_id=township_id, branch_id=branch_id)
        year = _year(request, years)
        overview = await ledger_overview(
            session, year=year, township_id=township_id, branch_id=branch_id
        )
    return render(
        request,
        "ledger.html",
        {
            "overview": overview,
            "year": year,
            "years": sorted({*years, year}, reverse=True),
            "may_download": may_download(viewer),
            "per_township": viewer.county_wide,
        },
    )


@page
async def ledger_download(request: web.Request) -> web.StreamResponse:
    """The year's ledger workbook (the county's, or one township's)."""
    viewer = current_of(request).viewer
    reach = viewer_scope(viewer)
    asked = _township(request)
    if reach is None or asked == "bad":
        return refuse(request, 403, "out_of_sight")
    if not may_download(viewer):
        return refuse(request, 403, "ledger_download")
    own, _ = reach
    if own is not None and asked not in (None, own):
        log.info("desk: ledger of township %s is out of %s's sight", asked, viewer.role)
        return refuse(request, 403, "out_of_sight")
    township_id = own if own is not None else asked
    assert not isinstance(township_id, str)
    desk = desk_of(request)
    async with AsyncSession(desk.engine) as session:
        year = _year(request, await ledger_years(session, township_id=township_id))
        out = io.BytesIO()
        written = await ledger_xlsx(
            session,
            year=year,
            out=out,
            today=desk.local(desk.now()).date(),
            township_id=township_id,
        )
    place = written.townships[0] if township_id is not None and written.townships else ""
    name = say("ledger_file", year=year, township=place)
    return attachment(out.getvalue(), name, f"ledger-{year}.xlsx")


def attachment(body: bytes, name: str, fallback: str) -> web.Response:
    """An XLSX to save, named in Chinese where the browser reads RFC 5987 names."""
    return web.Response(
        body=body,
        content_type=XLSX,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
            )
        },
    )


ROUTES = [
    ("GET", "/ledger", ledger_page),
    ("GET", "/ledger.xlsx", ledger_download),
]
