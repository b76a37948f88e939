"""Servers the webhook bench starts in their own processes, pinned to the server core.

    python -m bench.servers bare PORT
    python -m bench.servers wechatpy PORT

`bare` is the ceiling: aiohttp answering `success`. `wechatpy` is the stateless bot the
issue measured as its second baseline: aiohttp + wechatpy's signature check, parse (and
decryption in safe mode) and a text reply, no database. Both are mostly Python on the same
interpreter as ours, so their ratio to the reference machine says how fast Python runs here.
"""

from __future__ import annotations

import sys

from aiohttp import web

from bangfu_bot.settings import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN


async def _success(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _serve(handler, port: int) -> None:  # type: ignore[no-untyped-def]
    app = web.Application()
    app.router.add_post("/wechat", handler)
    app.router.add_get("/healthz", _ok)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def bare(port: int) -> None:
    """Bare aiohttp: read the body, answer `success` (the floor of any aiohttp bot)."""
    _serve(_success, port)


def wechatpy_echo(port: int) -> None:
    """aiohttp + wechatpy: check the signature, parse (decrypt), reply with the text."""
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_APPID)

    async def echo(request: web.Request) -> web.Response:
        query = request.query
        body = await request.read()
        safe = query.get("encrypt_type") == "aes"
        try:
            check_signature(SANDBOX_TOKEN, query["signature"], query["timestamp"], query["nonce"])
            if safe:
                body = crypto.decrypt_message(
                    body, query["msg_signature"], query["timestamp"], query["nonce"]
                )
        except (InvalidSignatureException, KeyError):
            return web.Response(status=403)
        message = parse_message(body)
        xml = TextReply(content=getattr(message, "content", ""), message=message).render()
        if safe:
            xml = crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
        return web.Response(text=xml, content_type="application/xml")

    _serve(echo, port)


if __name__ == "__main__":
    servers = {"bare": bare, "wechatpy": wechatpy_echo}
    if sys.argv[1] not in servers:
        raise SystemExit(f"unknown server {sys.argv[1]!r}")
    servers[sys.argv[1]](int(sys.argv[2]))
