"""名册 on the desk: the department uploads a roster, reads every rejected line before
anything is written, then confirms; the import is the command line's (`import_rows`, under
the authority act `roster.import`, channel web) on exactly the bytes that were checked, kept
in the store (`roster_uploads`) rather than sent again. Everyone at the desk searches the
people within their sight, ID numbers and phones masked as `reports/viewer.py` says."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp_session
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.authority import COUNTY_MATTER, Refused, acting_role, authorize
from bangfu_bot.db import refresh_statistics
from bangfu_bot.desk.base import (
    current_of,
    desk_of,
    flash,
    flashed,
    form_of,
    page,
    refuse,
    render,
    say,
    services_of,
)
from bangfu_bot.members.roster import ROLE_NAMES
from bangfu_bot.reports import cases as case_reports
from bangfu_bot.reports.roster import (
    MAX_UPLOAD_BYTES,
    PersonPage,
    import_upload,
    keep_upload,
    people_search,
    role_counts,
    roster_dry_run,
    upload_of,
)
from bangfu_bot.reports.viewer import Viewer

log = logging.getLogger(__name__)

PAGE_SIZE = 50
QUERY_MAX = 40
PAGE_MAX = 10_000
# The file and the form around it; the app's own client_max_size (the webhook's) is far
# smaller, so this one route reads its body under this limit instead.
UPLOAD_LIMIT = MAX_UPLOAD_BYTES + 64 * 1024
ROLES = tuple(ROLE_NAMES)  # member, secretary, committee, department, supervisor


def _scope(viewer: Viewer, township: int | None) -> tuple[int | None, int | None] | None:
    """(township_id, branch_id) the viewer may search, None when they see nobody."""
    person = viewer.person
    if viewer.scope == "county":
        return township, None
    if viewer.scope == "township":
        return (person.committee_id, None) if person.committee_id is not None else None
    return (None, person.branch_id) if person.branch_id is not None else None


def _digits(value: str | None, *, most: int) -> int | None:
    if value is None or not value.isdigit() or len(value) > 9:
        return None
    number = int(value)
    return number if 0 < number <= most else None


@page
async def roster_page(request: web.Request) -> web.Response:
    """名册: the upload (the department), the roles held, and a search of people."""
    viewer = current_of(request).viewer
    desk = desk_of(request)
    query = request.query
    q = query.get("q", "").strip()[:QUERY_MAX]
    role = query.get("role", "")
    role = role if role in ROLES else ""
    page_no = _digits(query.get("page"), most=PAGE_MAX) or 1
    async with desk.engine.connect() as conn:
        townships, _ = await case_reports.places(conn, viewer)
    township = _digits(query.get("township"), most=10**9) if viewer.county_wide else None
    if township is not None and township not in {row.id for row in townships}:
        township = None
    scope = _scope(viewer, township)
    async with AsyncSession(desk.engine) as session:
        if scope is None:
            found, counts = PersonPage(0, ()), {}
        else:
            found = await people_search(
                session,
                q,
                township_id=scope[0],
                branch_id=scope[1],
                role=role or None,
                unmasked=viewer.sees_id_number(),
                unmasked_phone=viewer.sees_phone(),
                limit=PAGE_SIZE,
                offset=(page_no - 1) * PAGE_SIZE,
            )
            counts = await role_counts(session, township_id=scope[0], branch_id=scope[1])
    return render(
        request,
        "roster.html",
        {
            "found": found,
            "q": q,
            "role": role,
            "roles": ROLES,
            "counts": counts,
            "township": township,
            "townships": townships if viewer.county_wide else [],
            "page_no": page_no,
            "pages": max(1, -(-found.total // PAGE_SIZE)),
            "may_upload": viewer.role == "department",
            "max_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
            "flash": await flashed(request),
        },
    )


def _too_big(request: web.Request) -> web.Response:
    mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    values = {"title": say("roster_too_big_title"), "text": say("roster_too_big", mb=mb)}
    return render(request, "refused.html", values, status=413)


async def roster_check(request: web.Request) -> web.StreamResponse:
    """上传并检查: a roster up to 20 MB, refused in Chinese above it (before reading, when
    the browser says its size)."""
    # The session must live on the request whose cookie the middleware writes back.
    await aiohttp_session.get_session(request)
    if request.content_length is not None and request.content_length > UPLOAD_LIMIT:
        log.info("desk: roster upload of %s bytes refused unread", request.content_length)
        return _too_big(request)
    larger = request.clone(client_max_size=UPLOAD_LIMIT)
    try:
        return await _check(larger)
    except web.HTTPRequestEntityTooLarge:
        log.info("desk: roster upload over %s bytes refused", UPLOAD_LIMIT)
        return _too_big(larger)


@page
async def _check(request: web.Request) -> web.StreamResponse:
    """Check an upload as the importer would and keep it, as checked, for the confirm."""
    try:
        return await _check_upload(request)
    finally:
        # aiohttp spooled each posted file to a temporary file: closed whatever happened.
        for value in form_of(request).values():
            if isinstance(value, web.FileField):
                value.file.close()


async def _check_upload(request: web.Request) -> web.StreamResponse:
    viewer = current_of(request).viewer
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    try:
        authorize(
            "roster.import",
            viewer.person,
            acting_role("roster.import", viewer.person, COUNTY_MATTER),
            COUNTY_MATTER,
        )
    except Refused as refused:
        await flash(request, "refused", refused.message)
        raise web.HTTPSeeOther("/desk/roster") from None
    field = form_of(request).get("file")
    if not isinstance(field, web.FileField):
        await flash(request, "refused", say("roster_no_file"))
        raise web.HTTPSeeOther("/desk/roster")
    data = await asyncio.to_thread(field.file.read)
    if not field.filename or not data:
        await flash(request, "refused", say("roster_no_file"))
        raise web.HTTPSeeOther("/desk/roster")
    desk = desk_of(request)
    now = desk.now()
    async with AsyncSession(desk.engine) as session:
        run = await roster_dry_run(session, data, field.filename, today=desk.local(now).date())
    if run.refused:
        await flash(request, "refused", run.message)
        raise web.HTTPSeeOther("/desk/roster")
    async with desk.engine.begin() as conn:
        upload_id = await keep_upload(
            conn, person_id=viewer.id, filename=field.filename, data=data, run=run, now=now
        )
    log.info("desk: roster upload %s: %d rows, %d rejected", upload_id, run.rows, len(run.rejected))
    raise web.HTTPSeeOther(f"/desk/roster/uploads/{upload_id}")


async def _own_upload(request: web.Request, viewer: Viewer) -> Any:
    upload_id = int(request.match_info["upload_id"])
    async with desk_of(request).engine.connect() as conn:
        return await upload_of(conn, upload_id, person_id=viewer.id)


@page
async def upload_page(request: web.Request) -> web.Response:
    """What the check found: every rejected row with its line, and the confirm."""
    viewer = current_of(request).viewer
    upload = await _own_upload(request, viewer)
    if upload is None:
        return refuse(request, 404, "no_upload")
    desk = desk_of(request)
    return render(
        request,
        "roster_upload.html",
        {
            "upload": upload,
            "waiting": upload.waiting(desk.now()),
            "local": desk.local,
            "flash": await flashed(request),
        },
    )


@page
async def upload_import(request: web.Request) -> web.StreamResponse:
    """确认导入: the stored upload, through the importer and the authority, in one
    transaction with the to-dos' hand-over; refused, nothing is written."""
    viewer = current_of(request).viewer
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    upload = await _own_upload(request, viewer)
    if upload is None:
        return refuse(request, 404, "no_upload")
    upload_id = upload.id
    skip = form_of(request).get("skip_invalid") == "1"
    desk = desk_of(request)
    now = desk.now()
    engine = desk.engine
    try:
        async with engine.begin() as conn:
            report, done = await import_upload(
                conn,
                upload_id,
                actor=viewer.person,
                skip_invalid=skip,
                now=now,
                today=desk.local(now).date(),
            )
    except Refused as refused:
        log.info("desk: roster upload %s not imported: %s", upload_id, refused.reason)
        await flash(request, "refused", refused.message)
    else:
        if report.created:
            await refresh_statistics(engine)
        lines = [report.lines()[-1]]
        if done.closed or done.handed:
            lines.append(say("roster_handover", closed=done.closed, handed=done.handed))
        lines += [say("roster_unowned", step=step) for step in done.unowned]
        await flash(request, "done", "\n".join(lines))
        dispatcher = services_of(request).dispatcher
        if dispatcher is not None:
            dispatcher.wake()
    raise web.HTTPSeeOther(f"/desk/roster/uploads/{upload_id}")


ROUTES = [
    ("GET", "/roster", roster_page),
    ("POST", "/roster/check", roster_check),
    ("GET", "/roster/uploads/{upload_id:[0-9]{1,12}}", upload_page),
    ("POST", "/roster/uploads/{upload_id:[0-9]{1,12}}/import", upload_import),
]
