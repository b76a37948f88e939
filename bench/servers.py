"""Servers the webhook bench starts in their own processes, pinned to the server core.

`python -m bench.servers bare PORT` is the baseline: bare aiohttp answering `success`.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def _success(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


def bare(port: int) -> None:
    """Bare aiohttp: read the body, answer `success` (the floor of any aiohttp bot)."""
    app = web.Application()
    app.router.add_post("/wechat", _success)
    app.router.add_get("/healthz", lambda request: _ok())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _ok() -> web.Response:
    return web.Response(text="ok")


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        bare(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown server {sys.argv[1]!r}")
