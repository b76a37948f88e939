"""The sandbox page 「沙盒·演练」 at /sandbox and its JSON endpoints under /sandbox/api/.

A training ground, not a back door: the routes exist only in sandbox mode, answer only
requests from this machine addressed to a loopback name, and refuse posts from other pages.
Everything the page does to the bot goes through the real webhook (see chat.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from bangfu_bot.cases.eligibility import load_rules
from bangfu_bot.clock import OffsetClock
from bangfu_bot.members.models import organisations
from bangfu_bot.sandbox.agenda import Agenda, next_thing
from bangfu_bot.sandbox.chat import (
    KINDS,
    MODES,
    Action,
    Sandbox,
    local_date,
    menu_buttons,
    say,
)
from bangfu_bot.sandbox.clock import MICROSECOND
from bangfu_bot.sandbox.clock import save as save_clock
from bangfu_bot.sandbox.personas import (
    person_id_of,
    persona,
    persona_groups,
    roster_size,
)
from bangfu_bot.seed.county import DEMO_COUNTY, seed_demo
from bangfu_bot.services import SERVICES, Services, run_jobs

log = logging.getLogger(__name__)

SANDBOX = web.AppKey("sandbox", Sandbox)
TITLE = say("title")
STATIC = {"sandbox.css": "text/css", "sandbox.js": "text/javascript"}
LOOPBACK_NAMES = frozenset({"localhost"})
MAX_TEXT = 600
MAX_DAYS = 30
MAX_HOURS = 24
MAX_QUERY = 20

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_sandbox(app: web.Application) -> None:
    """Add the sandbox routes to the application."""
    services = app[SERVICES]
    app.cleanup_ctx.append(_sandbox_state(services))
    routes = [
        ("GET", "/sandbox", page),
        ("GET", "/sandbox/", page),
        ("GET", "/sandbox/static/{name}", static),
        ("GET", "/sandbox/api/state", state),
        ("POST", "/sandbox/api/demo", create_demo),
        ("GET", "/sandbox/api/personas", personas),
        ("GET", "/sandbox/api/chat", chat),
        ("POST", "/sandbox/api/send", send),
        ("POST", "/sandbox/api/bind", bind),
        ("POST", "/sandbox/api/scan", scan),
        ("POST", "/sandbox/api/clock", move_clock),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, guarded(handler))


def _sandbox_state(services: Services):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession()
        app[SANDBOX] = Sandbox(services=services, session=session)
        yield
        await session.close()

    return ctx


# --- the guard ---------------------------------------------------------------------------------


def is_loopback(address: str | None) -> bool:
    """Whether an IP address is this machine's (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def refusal(request: web.Request) -> web.Response | None:
    """Why a request may not use the sandbox (a 403 to send), or None when it may."""
    if not is_loopback(request.remote):
        return _forbidden("refused_remote")
    # A loopback peer with a foreign Host is a page that re-pointed its own name at
    # 127.0.0.1 (DNS rebinding); it must not drive the bot.
    try:
        host = request.url.host or ""
    except ValueError:
        host = ""
    if host.lower() not in LOOPBACK_NAMES and not is_loopback(host.strip("[]")):
        return _forbidden("refused_host")
    if request.method not in ("GET", "HEAD"):
        # A JSON body forces a browser's CORS preflight, which we never answer: another page
        # cannot post here. The Origin check covers browsers that send it anyway.
        origin = request.headers.get("Origin")
        if request.content_type != "application/json" or (
            origin is not None and origin != f"{request.scheme}://{request.host}"
        ):
            return _forbidden("refused_origin")
    return None


def guarded(handler: Handler) -> Handler:
    """The handler, behind the sandbox guard."""

    async def view(request: web.Request) -> web.StreamResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        return await handler(request)

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def _forbidden(key: str) -> web.Response:
    return web.json_response({"error": say(key)}, status=403, dumps=_dumps)


def _bad(what: str, status: int = 400) -> web.Response:
    return web.json_response({"error": say("bad_request", what=what)}, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json(value: Any) -> web.Response:
    response = web.json_response(value, dumps=_dumps)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the page ----------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (
        resources.files("bangfu_bot.sandbox").joinpath("static", name).read_text(encoding="utf-8")
    )


async def page(request: web.Request) -> web.Response:
    """The sandbox page."""
    return web.Response(
        text=_asset("index.html"),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def static(request: web.Request) -> web.Response:
    """The page's stylesheet and script (only those two files)."""
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    return web.Response(
        text=_asset(name),
        content_type=STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


# --- the API -----------------------------------------------------------------------------------


def webhook_url(request: web.Request) -> str:
    """The bot's own /wechat, at the address this request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/wechat"
    return str(request.url.origin().with_path("/wechat"))


async def state(request: web.Request) -> web.Response:
    """The sandbox date, whether there is a roster, the menu, what the page can offer."""
    sandbox = request.app[SANDBOX]
    return _json(await _state(sandbox))


async def _state(sandbox: Sandbox) -> dict[str, Any]:
    services = sandbox.services
    now = sandbox.clock.now()
    async with sandbox.engine.connect() as conn:
        roster = await roster_size(conn)
        demo = (
            await conn.execute(
                select(organisations.c.id).where(
                    organisations.c.kind == "county", organisations.c.name == DEMO_COUNTY
                )
            )
        ).first()
    offset = sandbox.clock.offset if isinstance(sandbox.clock, OffsetClock) else None
    return {
        "title": TITLE,
        "date": local_date(now, sandbox.tz),
        "time": now.astimezone(sandbox.tz).strftime("%H:%M"),
        "days_ahead": offset.days if offset is not None else 0,
        "clock_movable": isinstance(sandbox.clock, OffsetClock),
        "roster": roster,
        "demo": demo is not None,
        "fake": services.fake is not None,
        "notice": "" if services.fake is not None else say("no_fake"),
        "safe_mode": sandbox.can_encrypt,
        "menu": menu_buttons(Path(services.settings.conversations_dir) / "menu.toml"),
    }


async def create_demo(request: web.Request) -> web.Response:
    """Create the demo county (nothing happens if it exists)."""
    sandbox = request.app[SANDBOX]
    settings = sandbox.services.settings
    async with sandbox.seeding:
        summary = await seed_demo(
            sandbox.engine,
            now=sandbox.clock.now(),
            tz=sandbox.tz,
            rules=load_rules(Path(settings.conversations_dir) / "eligibility.toml"),
        )
    return _json({"lines": summary.lines(), "state": await _state(sandbox)})


async def personas(request: web.Request) -> web.Response:
    """Personas by role, or those whose name contains ?q=."""
    query = request.query.get("q", "")[:MAX_QUERY]
    sandbox = request.app[SANDBOX]
    async with sandbox.engine.connect() as conn:
        groups = await persona_groups(conn, query=query)
    return _json({"groups": groups})


async def chat(request: web.Request) -> web.Response:
    """A persona's chat after ?after=SEQ (what the page has not shown yet)."""
    openid = request.query.get("openid", "")
    if person_id_of(openid) is None:
        return _bad("openid")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _bad("after")
    sandbox = request.app[SANDBOX]
    await sandbox.sync()
    return _json(await _entries(sandbox, openid, after))


async def send(request: web.Request) -> web.Response:
    """The persona types, taps a menu button, sends a photo or a voice message."""
    sandbox = request.app[SANDBOX]
    body, problem = await _body(request)
    if problem is not None:
        return problem
    kind = str(body.get("kind", "text"))
    text = str(body.get("text", "")).strip()
    key = str(body.get("key", ""))
    if kind not in KINDS:
        return _bad("kind")
    if kind == "text" and not 0 < len(text) <= MAX_TEXT:
        return _bad("text")
    if kind == "voice" and len(text) > MAX_TEXT:
        return _bad("text")
    if kind == "click" and key not in sandbox.menu:
        return _bad("key")
    await sandbox.act(
        url=webhook_url(request),
        openid=body["openid"],
        action=Action(kind, text, key),
        mode=body["mode"],
    )
    return await _after_turn(sandbox, body)


async def bind(request: web.Request) -> web.Response:
    """The 绑定 helper: answer the real binding dialogue for the persona."""
    sandbox = request.app[SANDBOX]
    body, problem = await _body(request)
    if problem is not None:
        return problem
    await sandbox.bind(
        url=webhook_url(request),
        openid=body["openid"],
        person_id=body["person_id"],
        mode=body["mode"],
    )
    return await _after_turn(sandbox, body)


async def scan(request: web.Request) -> web.Response:
    """「扫码」: the persona scans the newest desk login QR code (the one /desk/login shows)."""
    sandbox = request.app[SANDBOX]
    body, problem = await _body(request)
    if problem is not None:
        return problem
    fake = sandbox.services.fake
    ticket = fake.latest_qr("login:") if fake is not None else None
    if ticket is None:
        return web.json_response({"error": say("no_login_qr")}, status=409, dumps=_dumps)
    await sandbox.act(
        url=webhook_url(request),
        openid=body["openid"],
        action=Action("scan", "", ticket),
        mode=body["mode"],
    )
    return await _after_turn(sandbox, body)


async def move_clock(request: web.Request) -> web.Response:
    """Move the sandbox clock ahead (days, hours past the night's quiet time, or to the next
    scheduled thing), write down where it stands, run the scheduled jobs and send what is
    due."""
    sandbox = request.app[SANDBOX]
    try:
        body = await request.json()
        days, hours = int(body.get("days", 0)), int(body.get("hours", 0))
        to_next = body.get("next", False) is True
    except (ValueError, TypeError, AttributeError):
        return _bad("days")
    if not (to_next and days == hours == 0) and not (
        (1 <= days <= MAX_DAYS and hours == 0) or (days == 0 and 1 <= hours <= MAX_HOURS)
    ):
        return web.json_response({"error": say("clock_days")}, status=400, dumps=_dumps)
    clock = sandbox.clock
    if not isinstance(clock, OffsetClock):
        return web.json_response({"error": say("clock_fixed")}, status=409, dumps=_dumps)
    async with sandbox.moving:
        if to_next:
            async with sandbox.engine.connect() as conn:
                thing = await next_thing(conn, now=clock.now(), agenda=_agenda(sandbox))
            if thing is None:
                return web.json_response({"error": say("nothing_next")}, status=409, dumps=_dumps)
            # Whole microseconds, never short of the instant: the jobs must see it come.
            clock.advance(microseconds=-((clock.now() - thing.at) // MICROSECOND))
        else:
            clock.advance(days=days, hours=hours)
        await save_clock(sandbox.engine, clock)
        await sandbox.sync()
        moved = await _state(sandbox)
        # The line goes in first, so what the jobs send shows under it.
        if to_next:
            assert thing is not None
            line = say("clock_next", what=thing.what, date=moved["date"], time=moved["time"])
            moved["next"] = thing.what
        else:
            step = say("days", n=days) if days else say("hours", n=hours)
            line = say("clock_moved", step=step, date=moved["date"], time=moved["time"])
        sandbox.note_everywhere(line)
        services = sandbox.services
        await run_jobs(services)
        if services.dispatcher is not None:
            await services.dispatcher.send_due()
        await sandbox.sync()
    return _json(moved)


def _agenda(sandbox: Sandbox) -> Agenda:
    settings = sandbox.services.settings
    return Agenda(
        tz=sandbox.tz,
        review_opens=settings.review_opens,
        guarantor_call_days=settings.guarantor_call_days,
    )


async def _body(request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
    """The posted JSON with a known persona's openid, person id and mode checked."""
    try:
        body = await request.json()
    except ValueError:
        return {}, _bad("JSON")
    if not isinstance(body, dict):
        return {}, _bad("JSON")
    person_id = person_id_of(str(body.get("openid", "")))
    if person_id is None:
        return {}, _bad("openid")
    async with request.app[SANDBOX].engine.connect() as conn:
        found = await persona(conn, person_id)
    if found is None:
        return {}, web.json_response({"error": say("unknown_persona")}, status=404, dumps=_dumps)
    mode = str(body.get("mode", "safe"))
    if mode not in MODES:
        return {}, _bad("mode")
    try:
        after = int(body.get("after", 0))
    except (TypeError, ValueError):
        return {}, _bad("after")
    return {**body, "person_id": person_id, "mode": mode, "after": after}, None


async def _after_turn(sandbox: Sandbox, body: dict[str, Any]) -> web.Response:
    async with sandbox.engine.connect() as conn:
        found = await persona(conn, body["person_id"])
    result = await _entries(sandbox, body["openid"], body["after"])
    result["persona"] = found.json() if found is not None else None
    return _json(result)


async def _entries(sandbox: Sandbox, openid: str, after: int) -> dict[str, Any]:
    entries = sandbox.transcripts.after(openid, after)
    return {
        "entries": [entry.json() for entry in entries],
        "next": entries[-1].seq if entries else after,
        "waiting": await sandbox.waiting(openid),
    }
