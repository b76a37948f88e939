"""The desk's pages under /desk: 工作台, 案件 and a case's record with the acts open to the
viewer. Acts go through the same procedure functions, and so the same authority policy and
transition table, as the chat; the audit names the channel `web`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from bangfu_bot.authority import Refused, able
from bangfu_bot.cases import procedure
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.procedure import Rules
from bangfu_bot.cases.transitions import case_subject, load_case, status_name
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.fields import mask_id, mask_phone
from bangfu_bot.common.money import yuan
from bangfu_bot.desk import audit as audit_views
from bangfu_bot.desk import ledger as ledger_views
from bangfu_bot.desk import loan_steps
from bangfu_bot.desk import login as login_views
from bangfu_bot.desk import money as money_views
from bangfu_bot.desk import notices as notice_pages
from bangfu_bot.desk import roster as roster_views
from bangfu_bot.desk import visits as visit_pages
from bangfu_bot.desk import year as year_views
from bangfu_bot.desk.base import (
    DESK,
    Desk,
    current_of,
    desk_middleware,
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
from bangfu_bot.desk.figures import LIVE, scope_key
from bangfu_bot.reports import cases as case_reports
from bangfu_bot.reports import overview
from bangfu_bot.reports.viewer import Viewer
from bangfu_bot.services import SERVICES

log = logging.getLogger(__name__)

STATIC = {"desk.css": "text/css", "login.js": "text/javascript"}
REASON_MAX = 200
CADRE_MAX = 40


def setup_desk(app: web.Application) -> None:
    """Mount the desk at /desk on the application."""
    desk_app = web.Application(middlewares=[desk_middleware])
    desk_app[DESK] = Desk(app[SERVICES])
    env = aiohttp_jinja2.setup(
        desk_app,
        loader=jinja2.PackageLoader("bangfu_bot.desk", "templates"),
        # The templates ship with the code: no looking at their files' times on every page.
        auto_reload=False,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        yuan=yuan,
        status=status_name,
        day=lambda value: chinese_date(value) if value is not None else "",
    )
    routes = [
        ("GET", "", home),
        ("GET", "/", home),
        ("GET", "/login", login_views.login_page),
        ("GET", "/login/wait", login_views.login_wait),
        ("POST", "/login/code", login_views.login_code),
        ("POST", "/logout", login_views.logout),
        ("GET", "/cases", case_list),
        ("POST", "/cases/file-all", file_all),
        ("GET", "/cases/{case_id:[0-9]{1,12}}", case_page),
        ("POST", "/cases/{case_id:[0-9]{1,12}}/decide", decide),
        ("POST", "/cases/{case_id:[0-9]{1,12}}/file", file_case),
        *money_views.ROUTES,
        *loan_steps.ROUTES,
        ("GET", "/static/{name}", static),
        *ledger_views.ROUTES,
        *audit_views.ROUTES,
        *visit_pages.ROUTES,
        *notice_pages.ROUTES,
        *roster_views.ROUTES,
        *year_views.ROUTES,
    ]
    for method, path, handler in routes:
        desk_app.router.add_route(method, path, handler)
    app.add_subapp("/desk", desk_app)


async def static(request: web.Request) -> web.Response:
    """The stylesheet and the login page's script (only those)."""
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    text = resources.files("bangfu_bot.desk").joinpath("static", name).read_text(encoding="utf-8")
    return web.Response(
        text=text,
        content_type=STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "max-age=300"},
    )


# --- 工作台 ------------------------------------------------------------------------------------


@page
async def home(request: web.Request) -> web.Response:
    """工作台: my to-dos, and the scope's figures as last read (see figures.py): cases by
    status and township, notices held by an objection, loans by arrears, the fund's line,
    campaigns; the page refreshes itself every minute."""
    viewer = current_of(request).viewer
    desk = desk_of(request)
    parts = macros_of(request, "home_parts.html")
    todos, _ = await desk.figures.get(
        ("todos", viewer.id),
        lambda: _todos(desk, viewer.id, parts),
        tables=TODO_TABLES,
        window=LIVE,
        stale=True,
    )
    scope, read_at = await desk.figures.get(
        ("home", scope_key(viewer)), lambda: _home_figures(desk, viewer, parts)
    )
    money, money_at = await _money_panels(desk, viewer, parts)
    return render(
        request,
        "home.html",
        {
            "todos": todos,
            "parts": {**scope, **money},
            "flash": await flashed(request),
            "refresh": 60,
        },
        read_at=min(read_at, money_at),
    )


TODO_TABLES = ("todos",)
HELD_SHOWN = 10


def macros_of(request: web.Request, template: str) -> Any:
    """A template's macros, to render a part of a page once and keep it (see figures.py)."""
    return aiohttp_jinja2.get_env(request.app).get_template(template).module


async def _todos(desk: Desk, person_id: int, parts: Any) -> Markup:
    async with desk.engine.connect() as conn:
        todos = await overview.my_todos(conn, person_id)
    return Markup(parts.todo_panel(todos))


async def _home_figures(desk: Desk, viewer: Viewer, parts: Any) -> dict[str, Markup]:
    """工作台's panels of the viewer's scope besides money, rendered once per reading."""
    async with desk.engine.connect() as conn:
        grid = await overview.status_grid(conn, viewer)
        held = await overview.held_notices(conn, viewer)
    campaigns = await visit_pages.campaign_panel(desk, viewer)
    return {
        "held": parts.held_panel(held[:HELD_SHOWN], len(held)),
        "visits": parts.visits_panel(campaigns),
        "grid": parts.grid_panel(grid),
    }


async def _money_panels(
    desk: Desk, viewer: Viewer, parts: Any
) -> tuple[dict[str, Markup], datetime]:
    """The arrears and fund panels for the viewer (a township's officer sees their
    township's loans, the county's viewers the county's and the fund; a secretary neither),
    from the county's money figures (see figures.py)."""
    if viewer.scope not in ("county", "township"):
        return {"arrears": Markup(""), "fund": Markup("")}, desk.now()
    money, read_at = await money_views.county_money(desk)
    key = scope_key(viewer)
    shown = money.panels.get(key)
    if shown is None:
        arrears = money.arrears.buckets(**money_views.scope_of(viewer))
        fund = money.fund if viewer.county_wide else []
        shown = {"arrears": parts.arrears_panel(arrears), "fund": parts.fund_panel(fund)}
        money.panels[key] = shown
    return shown, read_at


# --- 案件 --------------------------------------------------------------------------------------

CASE_TABLES = ("cases", "people", "organisations", "objections")


@page
async def case_list(request: web.Request) -> web.Response:
    """案件: the cases within sight, filtered (the list as last read, see figures.py)."""
    viewer = current_of(request).viewer
    desk = desk_of(request)
    filters = case_reports.parse_filters(request.query)
    listing, _ = await desk.figures.get(
        ("cases", scope_key(viewer), viewer.role, filters),
        lambda: _listing(request, viewer, filters),
        tables=CASE_TABLES,
        window=LIVE,
        stale=True,
    )
    choices, read_at = await desk.figures.get(
        ("choices", scope_key(viewer)), lambda: _choices(desk, viewer)
    )
    form = listing.forms.get(read_at)
    if form is None:  # the filters as rendered with the choices of this reading
        macros = macros_of(request, "cases_rows.html")
        townships, branches, categories, years = choices
        offered = _branches_offered(branches, filters, many=len(townships) > 1)
        form = listing.forms[read_at] = macros.filter_form(
            filters, list(CaseStatus), townships, offered, categories, years
        )
    return render(
        request,
        "cases.html",
        {
            "listing": listing.html,
            "form": form,
            "may_file_all": viewer.role == "department" and listing.waiting > 0,
            "waiting": listing.waiting,
            "flash": await flashed(request),
        },
        read_at=read_at,
    )


def _branches_offered(branches: list[Any], filters: Any, *, many: bool) -> list[Any] | None:
    """The branches to choose from: the chosen township's; all of them when the viewer sees
    one township; None (choose a township first) for the county's 500 with none chosen,
    keeping a branch a link chose."""
    if filters.township:
        return [b for b in branches if b.parent_id == filters.township]
    if not many:
        return branches
    chosen = [b for b in branches if b.id == filters.branch]
    return chosen or None


@dataclass(frozen=True)
class Listing:
    """案件's rows as rendered, how many approved cases wait to be filed, and the filter
    form as rendered with each reading of the choices (by when it was made)."""

    html: Markup
    waiting: int
    forms: dict[datetime, Markup] = field(default_factory=dict)


async def _listing(request: web.Request, viewer: Viewer, filters: Any) -> Listing:
    desk = desk_of(request)
    tz = services_of(request).settings.tz
    async with desk.engine.connect() as conn:
        rows, more = await case_reports.case_list(conn, viewer, filters, tz=tz)
        waiting = await case_reports.approved_within(conn, viewer)
    macros = macros_of(request, "cases_rows.html")
    return Listing(macros.listing(rows, more, desk.local, filters), waiting)


async def _choices(desk: Desk, viewer: Viewer) -> tuple[list[Any], list[Any], list[str], list[int]]:
    """案件's filter choices within the viewer's sight: townships, branches, categories,
    years."""
    tz = desk.services.settings.tz
    async with desk.engine.connect() as conn:
        townships, branches = await case_reports.places(conn, viewer)
        categories = await case_reports.categories(conn, viewer)
        years = await case_reports.years(conn, viewer, tz=tz)
    return townships, branches, categories, years


async def _visible_case(request: web.Request, viewer: Viewer) -> int | web.Response:
    case_id = int(request.match_info["case_id"])
    async with desk_of(request).engine.connect() as conn:
        place = await case_reports.case_place(conn, case_id)
    if place is None:
        return refuse(request, 404, "no_case")
    if not viewer.sees(branch_id=place.branch_id, committee_id=place.committee_id):
        log.info("desk: case %s is out of %s's sight", case_id, viewer.role)
        return refuse(request, 403, "out_of_sight")
    return case_id


@page
async def case_page(request: web.Request) -> web.Response:
    """A case's whole record and the acts open to the viewer."""
    viewer = current_of(request).viewer
    found = await _visible_case(request, viewer)
    if isinstance(found, web.Response):
        return found
    desk = desk_of(request)
    async with desk.engine.connect() as conn:
        record = await case_reports.case_record(conn, found)
        acts = await _acts_open(conn, viewer, found)
    assert record is not None
    person = record.person
    id_number = person.id_number if viewer.sees_id_number() else mask_id(person.id_number)
    phone = person.phone or ""
    if phone and not viewer.sees_phone():
        phone = mask_phone(phone)
    return render(
        request,
        "case.html",
        {
            "record": record,
            "case": record.case,
            "answers": dict(record.case.answers or {}),
            "id_number": id_number,
            "phone": phone,
            "acts": acts,
            "flash": await flashed(request),
            "local": desk.local,
            "reason_max": REASON_MAX,
            "channel_name": lambda channel: say(f"channel_{channel}"),
            "role_name": lambda role: say(f"role_{role}"),
        },
    )


async def _acts_open(conn: Any, viewer: Viewer, case_id: int) -> list[str]:
    """The acts this viewer may make on the case now, as the authority policy says."""
    if viewer.read_only:
        return []
    case = await load_case(conn, case_id)
    subject = await case_subject(conn, case)
    acts = []
    if case.status == CaseStatus.REPORTED and able("case.decide", viewer.person, subject):
        acts.append("decide")
    if case.status == CaseStatus.APPROVED and able("case.file", viewer.person, subject):
        acts.append("file")
    return acts


def _rules(request: web.Request) -> Rules:
    desk = desk_of(request)
    if desk.rules is None:
        desk.rules = Rules.from_settings(services_of(request).settings)
    return desk.rules


async def _act(request: web.Request, case_id: int, run: Any) -> web.StreamResponse:
    """Run one act in its own transaction: refused, nothing is written and the viewer reads
    why; done, the outbox is woken so the member's WeChat hears of it at once."""
    desk = desk_of(request)
    try:
        async with desk.engine.begin() as conn:
            text = await run(conn)
    except Refused as refused:
        log.info("desk act on case %s refused: %s", case_id, refused.reason)
        await flash(request, "refused", refused.message)
    else:
        await flash(request, "done", text)
        dispatcher = services_of(request).dispatcher
        if dispatcher is not None:
            dispatcher.wake()
    raise web.HTTPSeeOther(f"/desk/cases/{case_id}")


@page
async def decide(request: web.Request) -> web.StreamResponse:
    """党委审批 from the desk: approve, or return to a named step with a reason."""
    viewer = current_of(request).viewer
    found = await _visible_case(request, viewer)
    if isinstance(found, web.Response):
        return found
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    form = form_of(request)
    decision = form.get("decision")
    reason = str(form.get("reason", "")).strip()[:REASON_MAX] or None
    return_to = {
        "submitted": CaseStatus.SUBMITTED,
        "under_evaluation": CaseStatus.UNDER_EVALUATION,
    }.get(str(form.get("return_to", "")))
    if decision not in ("approve", "return"):
        return refuse(request, 400, "bad_form")
    if decision == "return" and (reason is None or return_to is None):
        await flash(request, "refused", say("return_needs_reason"))
        raise web.HTTPSeeOther(f"/desk/cases/{found}")
    desk = desk_of(request)

    async def run(conn: Any) -> str:
        return await procedure.decide(
            conn,
            case_id=found,
            officer=viewer.person,
            approve=decision == "approve",
            return_to=return_to if decision == "return" else None,
            reason=reason,
            now=desk.now(),
            channel="web",
        )

    return await _act(request, found, run)


@page
async def file_case(request: web.Request) -> web.StreamResponse:
    """备案 from the desk (the department)."""
    viewer = current_of(request).viewer
    found = await _visible_case(request, viewer)
    if isinstance(found, web.Response):
        return found
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    cadre = str(form_of(request).get("paired_cadre", "")).strip()[:CADRE_MAX] or None
    desk = desk_of(request)
    rules = _rules(request)

    async def run(conn: Any) -> str:
        return await procedure.file_case(
            conn,
            case_id=found,
            staff=viewer.person,
            paired_cadre=cadre,
            channel="web",
            now=desk.now(),
            rules=rules,
        )

    return await _act(request, found, run)


@page
async def file_all(request: web.Request) -> web.StreamResponse:
    """批量备案: every approved case, each in its own savepoint (as in chat)."""
    viewer = current_of(request).viewer
    if viewer.role != "department":
        return refuse(request, 403, "read_only")
    desk = desk_of(request)
    rules = _rules(request)
    try:
        async with desk.engine.begin() as conn:
            text = await procedure.file_all(
                conn, staff=viewer.person, channel="web", now=desk.now(), rules=rules
            )
    except Refused as refused:
        await flash(request, "refused", refused.message)
    else:
        await flash(request, "done", text)
        dispatcher = services_of(request).dispatcher
        if dispatcher is not None:
            dispatcher.wake()
    raise web.HTTPSeeOther("/desk/cases?status=approved")
