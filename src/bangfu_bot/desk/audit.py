"""审计 on the desk: every transition of a case or a loan — chat, command line, import and
the desk's own acts (channel `web`) — and the department's notices, roster imports and
plans, filtered, paged and within the viewer's sight; the supervision group and the
department take it away as the CLI's audit workbook."""

from __future__ import annotations

import dataclasses
import io
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.desk.base import current_of, desk_of, page, refuse, render, say, services_of
from bangfu_bot.desk.ledger import attachment
from bangfu_bot.ledger.export import audit_label
from bangfu_bot.loans.enums import LoanStatus
from bangfu_bot.reports import cases as case_reports
from bangfu_bot.reports.audit import (
    CHANNELS,
    DEPARTMENT_ACTS,
    SUBJECTS,
    AuditFilter,
    audit_list,
    audit_xlsx,
)
from bangfu_bot.reports.money import status_name
from bangfu_bot.reports.scope import viewer_scope
from bangfu_bot.reports.viewer import Viewer

PAGE_SIZE = 50
PAGE_LIMIT = 100_000


def may_download(viewer: Viewer) -> bool:
    """The workbook is the supervision group's (and the department's)."""
    return viewer.role in ("supervisor", "department")


def _scoped(request: web.Request, viewer: Viewer) -> AuditFilter | None:
    """The page's filter narrowed to what the viewer sees: a township chosen on the page
    counts only for the county's readers; None when the viewer sees nothing."""
    tz = services_of(request).settings.tz
    asked = AuditFilter.from_query(request.query, tz=tz)
    reach = viewer_scope(viewer)
    if reach is None:
        return None
    township_id, branch_id = reach
    if township_id is None and branch_id is None:
        return asked
    return dataclasses.replace(asked, township_id=township_id, branch_id=branch_id)


def _page_number(request: web.Request) -> int:
    asked = request.query.get("page", "").strip()
    if asked.isascii() and asked.isdigit() and len(asked) <= 6:
        return min(max(int(asked), 1), PAGE_LIMIT)
    return 1


@page
async def audit_page(request: web.Request) -> web.Response:
    """审计: the transitions within sight, newest first, fifty a page."""
    viewer = current_of(request).viewer
    filters = _scoped(request, viewer)
    if filters is None:
        return refuse(request, 403, "out_of_sight")
    desk = desk_of(request)
    tz = services_of(request).settings.tz
    number = _page_number(request)
    async with AsyncSession(desk.engine) as session:
        found = await audit_list(session, filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    townships: list[object] = []
    if viewer.county_wide:
        async with desk.engine.connect() as conn:
            townships, _ = await case_reports.places(conn, viewer)
    pages = max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    query = filters.to_query(tz=tz)
    if not viewer.county_wide:
        query.pop("township", None)

    def link(**changes: str) -> str:
        return urlencode({**query, **changes})

    return render(
        request,
        "audit.html",
        {
            "found": found,
            "filters": filters,
            "form": query,
            "page_number": number,
            "pages": pages,
            "link": link,
            "townships": townships,
            "case_acts": [(f"case:{s}", audit_label("case", s)) for s in CaseStatus],
            "loan_acts": [(f"loan:{s}", status_name(s)) for s in LoanStatus],
            "department_acts": [
                (f"{kind}:{done}", say(f"audit_{kind}_{done}"))
                for kind, done in DEPARTMENT_ACTS.items()
            ],
            "department_kinds": [(kind, say(f"kind_{kind}")) for kind in DEPARTMENT_ACTS],
            "kind_names": {kind: say(f"kind_{kind}") for kind in SUBJECTS},
            "channels": [(c, audit_label("channel", c)) for c in CHANNELS],
            "may_download": may_download(viewer),
            "local": desk.local,
        },
    )


@page
async def audit_download(request: web.Request) -> web.StreamResponse:
    """The matching transitions as the audit workbook (审计记录), oldest first."""
    viewer = current_of(request).viewer
    filters = _scoped(request, viewer)
    if filters is None or not may_download(viewer):
        return refuse(request, 403, "audit_download")
    out = io.BytesIO()
    async with AsyncSession(desk_of(request).engine) as session:
        await audit_xlsx(session, filters, out=out, tz=services_of(request).settings.tz)
    return attachment(out.getvalue(), say("audit_file"), "audit.xlsx")


ROUTES = [
    ("GET", "/audit", audit_page),
    ("GET", "/audit.xlsx", audit_download),
]
