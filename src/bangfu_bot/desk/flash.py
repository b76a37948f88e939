"""One line shown on the next page after an act (kept in the session, read once)."""

from __future__ import annotations

import aiohttp_session
from aiohttp import web


async def flash(request: web.Request, kind: str, text: str) -> None:
    """Show `text` on the next page; `kind` is done or refused."""
    session = await aiohttp_session.get_session(request)
    session["flash"] = [kind, text]


async def flashed(request: web.Request) -> tuple[str, str] | None:
    """The line to show on this page, if an act left one (then it is gone)."""
    session = await aiohttp_session.get_session(request)
    found = session.pop("flash", None)
    if isinstance(found, list) and len(found) == 2:
        return str(found[0]), str(found[1])
    return None
