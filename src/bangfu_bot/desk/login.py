"""/desk/login: a QR code to scan with WeChat, or the code 登录 returns; /desk/logout."""

from __future__ import annotations

import logging

import aiohttp
import aiohttp_session
import segno
from aiohttp import web

from bangfu_bot.desk.base import (
    current_of,
    desk_of,
    new_token,
    page,
    refuse,
    render,
    same_origin,
    services_of,
    signed_in,
    token_matches,
)
from bangfu_bot.notify.platform import WeChatAPIError
from bangfu_bot.reports import login

log = logging.getLogger(__name__)
WHY = frozenset({"idle", "unbound", "role", "logout", "expired", "used", "code"})


async def login_page(request: web.Request) -> web.StreamResponse:
    """The login page: a fresh QR scene (when the account has parametric QR codes) and the
    code form."""
    if not isinstance(await signed_in(request), str):
        raise web.HTTPSeeOther("/desk")
    desk = desk_of(request)
    services = services_of(request)
    session = await aiohttp_session.new_session(request)
    session["csrf"] = new_token()
    qr_svg = ""
    if services.settings.features()["parametric_qr_codes"]:
        async with desk.engine.begin() as conn:
            scene = await login.open_scene(conn, now=desk.now())
        qr_svg = await _qr_svg(request, scene)
        if qr_svg:
            session["pending"] = scene
    why = request.query.get("why", "")
    return render(
        request,
        "login.html",
        {
            "qr_svg": qr_svg,
            "login_csrf": session["csrf"],
            "why": why if why in WHY else "",
            "minutes": int(login.SCENE_LIFE.total_seconds() // 60),
        },
    )


async def _qr_svg(request: web.Request, scene: str) -> str:
    client = services_of(request).client
    if client is None:
        return ""
    try:
        answer = await client.create_qrcode(
            scene_str=f"{login.SCENE_PREFIX}:{scene}",
            permanent=False,
            expire_seconds=int(login.SCENE_LIFE.total_seconds()),
        )
    except (WeChatAPIError, aiohttp.ClientError, TimeoutError) as error:
        log.warning("desk login: no QR code (%s); the code form remains", type(error).__name__)
        return ""
    url = str(answer.get("url") or "")
    if not url:
        return ""
    return str(segno.make(url, error="m").svg_inline(scale=5, border=2, omitsize=False))


async def login_wait(request: web.Request) -> web.Response:
    """Polled by the login page: has the QR code been scanned? Once it has, this browser's
    session begins (the scene is claimed once, by the page that holds it)."""
    session = await aiohttp_session.get_session(request)
    scene = session.get("pending")
    if not isinstance(scene, str):
        return web.json_response({"state": "used"})
    desk = desk_of(request)
    async with desk.engine.begin() as conn:
        waiting = await login.claim_scene(conn, scene=scene, now=desk.now())
        if waiting.state != "scanned":
            if waiting.state != "waiting":
                session.pop("pending", None)
            return web.json_response({"state": waiting.state})
        assert waiting.person_id is not None and waiting.binding_id is not None
        started = await login.start_session(
            conn,
            person_id=waiting.person_id,
            binding_id=waiting.binding_id,
            via="qrcode",
            now=desk.now(),
        )
    _signed_in_as(session, started)
    return web.json_response({"state": "signed_in", "go": "/desk"})


async def login_code(request: web.Request) -> web.StreamResponse:
    """The code 登录 returned, with the official's name."""
    session = await aiohttp_session.get_session(request)
    form = await request.post()
    if not same_origin(request) or not token_matches(form.get("csrf"), session.get("csrf", "")):
        return refuse(request, 403, "stale_form")
    name, code = str(form.get("name", ""))[:40], str(form.get("code", ""))[:12]
    desk = desk_of(request)
    started = None
    async with desk.engine.begin() as conn:
        # A miss is counted (committed) before the answer: never raise inside this block.
        found = await login.try_code(conn, name=name, code=code, now=desk.now())
        if found is not None:
            started = await login.start_session(
                conn, person_id=found[0], binding_id=found[1], via="code", now=desk.now()
            )
    if started is None:
        raise web.HTTPSeeOther("/desk/login?why=code")
    _signed_in_as(session, started)
    raise web.HTTPSeeOther("/desk")


def _signed_in_as(session: aiohttp_session.Session, started: login.Started) -> None:
    # A new cookie for a new identity: nothing of the anonymous one carries over.
    session.invalidate()
    session["sid"] = started.token


@page
async def logout(request: web.Request) -> web.StreamResponse:
    """退出: every session of the person ends, on every computer."""
    current = current_of(request)
    desk = desk_of(request)
    async with desk.engine.begin() as conn:
        await login.end_sessions(conn, person_id=current.viewer.id, now=desk.now(), reason="logout")
    desk.sessions.drop_person(current.viewer.id)
    session = await aiohttp_session.get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/desk/login?why=logout")
