"""What every desk page shares: the encrypted cookie, the signed-in viewer, the form token,
rendering with the "数据截至" time, and the Chinese refusal pages."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.desk.figures import LIVE, Figures
from bangfu_bot.reports import login
from bangfu_bot.services import SERVICES, Services
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.desk")
COOKIE = "bangfu_desk"
CURRENT = web.RequestKey("desk.current", login.Current)
FORM: web.RequestKey[Any] = web.RequestKey("desk.form", object)


class Desk:
    """The desk's state on the application: the cookie storage, made once the key is read."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._middleware: Any = None
        self.rules: Any = None  # the procedure's Rules, read once from the settings
        self._lock = asyncio.Lock()
        # Readings kept in memory (see figures.py), and the sessions as last looked up.
        self.figures = Figures(self.now, services.changes)
        self.sessions = Sessions(services)

    @property
    def engine(self) -> AsyncEngine:
        """The store."""
        assert self.services.engine is not None
        return self.services.engine

    def now(self) -> datetime:
        """The service's clock."""
        return self.services.clock.now()

    def local(self, instant: datetime) -> datetime:
        """An instant in the county's time."""
        return instant.astimezone(self.services.settings.tz)

    async def session_middleware(self) -> Any:
        """aiohttp-session's middleware over the encrypted cookie, once the key is known."""
        if self._middleware is None:
            async with self._lock:
                if self._middleware is None:
                    key = await login.cookie_key(self.engine, now=self.now())
                    public = self.services.settings.public_url
                    storage = EncryptedCookieStorage(
                        Fernet(key),
                        cookie_name=COOKIE,
                        path="/desk",
                        httponly=True,
                        samesite="Lax",
                        secure=public.startswith("https://"),
                    )
                    self._middleware = aiohttp_session.session_middleware(storage)
        return self._middleware


class Sessions:
    """Live sessions as last looked up in the store, by cookie token: a page a second
    costs no query. One is looked up again after `LIVE`, a minute after it was last marked
    seen (which marks it again), and at once after this process writes to the bindings,
    people or roles (unbinding, a role taken away); logging out forgets the person's."""

    TABLES = ("bindings", "people", "person_roles", "organisations")
    MOST = 10_000

    def __init__(self, services: Services) -> None:
        self._changes = services.changes
        self._kept: dict[str, tuple[login.Current, tuple[int, ...], float]] = {}

    def snapshot(self) -> tuple[int, ...]:
        """The write counters of the tables a session's viewer is read from."""
        return self._changes.snapshot(self.TABLES)

    def get(self, token: str, now: datetime) -> login.Current | None:
        """The kept session of a token while it holds."""
        kept = self._kept.get(token)
        if kept is None:
            return None
        current, snapshot, looked = kept
        if (
            snapshot != self.snapshot()
            or time.monotonic() - looked >= LIVE.total_seconds()
            or not current.seen_at <= now < current.seen_at + login.SEEN_EVERY
        ):
            del self._kept[token]
            return None
        return current

    def keep(self, token: str, current: login.Current, snapshot: tuple[int, ...]) -> None:
        """Keep a session just looked up (with the counters noted before the look)."""
        if len(self._kept) >= self.MOST:
            self._kept.clear()
        self._kept[token] = (current, snapshot, time.monotonic())

    def drop(self, token: str) -> None:
        """Forget a token's session."""
        self._kept.pop(token, None)

    def drop_person(self, person_id: int) -> None:
        """Forget every kept session of a person (they logged out)."""
        for token, (current, _, _) in list(self._kept.items()):
            if current.viewer.id == person_id:
                del self._kept[token]


DESK = web.AppKey("desk", Desk)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def desk_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The encrypted session cookie, and headers that keep the pages to themselves."""
    inner = await request.app[DESK].session_middleware()
    response: web.StreamResponse = await inner(request, handler)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


def desk_of(request: web.Request) -> Desk:
    """The desk's state."""
    return request.app[DESK]


def services_of(request: web.Request) -> Services:
    """The running services (on the parent application)."""
    return request.config_dict[SERVICES]


# --- rendering ---------------------------------------------------------------------------------


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    read_at: datetime | None = None,
) -> web.Response:
    """A page, with who is looking and the time its data was read (`read_at`, the oldest
    kept figures it shows, else now)."""
    desk = desk_of(request)
    current = request.get(CURRENT)
    values = {
        "viewer": current.viewer if current is not None else None,
        "csrf": current.csrf if current is not None else "",
        "as_of": desk.local(read_at or desk.now()).strftime("%H:%M"),
        "say": say,
        "path": request.path,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, values, status=status)
    return response


def refuse(request: web.Request, status: int, key: str) -> web.Response:
    """A refusal as a Chinese page (403 out of sight, 404, 400 a stale form)."""
    values = {"title": say(key + "_title"), "text": say(key)}
    return render(request, "refused.html", values, status=status)


# --- who is signed in --------------------------------------------------------------------------


async def signed_in(request: web.Request) -> login.Current | str:
    """The live session of this request's cookie, or why there is none."""
    session = await aiohttp_session.get_session(request)
    token = session.get("sid")
    if not isinstance(token, str):
        return "none"
    desk = desk_of(request)
    now = desk.now()
    kept = desk.sessions.get(token, now)
    if kept is not None:
        return kept
    snapshot = desk.sessions.snapshot()
    # A plain connection: most looks write nothing (the last-seen time is written at most
    # once a minute), and then no write transaction is begun.
    async with desk.engine.connect() as conn:
        found = await login.current(conn, token=token, now=now)
        await conn.commit()
    if isinstance(found, str):
        desk.sessions.drop(token)
        session.pop("sid", None)
    else:
        desk.sessions.keep(token, found, snapshot)
    return found


def page(handler: Handler) -> Handler:
    """A handler for signed-in viewers only; others go to the login page (and a POST must
    carry the session's form token)."""

    async def view(request: web.Request) -> web.StreamResponse:
        found = await signed_in(request)
        if isinstance(found, str):
            if request.method != "GET":
                return refuse(request, 403, "signed_out")
            target = "/desk/login" if found == "none" else f"/desk/login?why={found}"
            raise web.HTTPSeeOther(target)
        request[CURRENT] = found
        if request.method == "POST":
            form = await request.post()
            if not same_origin(request) or not token_matches(form.get("csrf"), found.csrf):
                return refuse(request, 403, "stale_form")
            request[FORM] = form
            try:
                return await handler(request)
            finally:
                # An act (done or refused) may change what the kept figures say: whoever
                # acted sees the change on their next page.
                desk_of(request).figures.forget()
        return await handler(request)

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def current_of(request: web.Request) -> login.Current:
    """The signed-in viewer's session (inside a `page`)."""
    return request[CURRENT]


def form_of(request: web.Request) -> Any:
    """The posted form (inside a `page`, after its token was checked)."""
    return request[FORM]


def token_matches(given: object, expected: str) -> bool:
    """Whether a posted form token is this session's."""
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given, expected)


def same_origin(request: web.Request) -> bool:
    """A browser that names where a form came from must name this site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def new_token() -> str:
    """A random token for a form before login."""
    return secrets.token_urlsafe(32)


# --- flash: one line shown on the next page ----------------------------------------------------


async def flash(request: web.Request, kind: str, text: str) -> None:
    """Keep one line (`done` or `refused`) for the next page this browser opens."""
    session = await aiohttp_session.get_session(request)
    session["flash"] = [kind, text]


async def flashed(request: web.Request) -> tuple[str, str] | None:
    """The line kept for this page, once."""
    session = await aiohttp_session.get_session(request)
    found = session.pop("flash", None)
    if isinstance(found, list) and len(found) == 2:
        return str(found[0]), str(found[1])
    return None
