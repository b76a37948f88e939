"""Async client for WeChat's outbound API (客服消息, 模板消息, 群发, 标签, 菜单, 二维码, 用户信息).

wechatpy's client is synchronous, loops on token errors and sends obsolete fields, so the
outbound side is written here on aiohttp. The access token lives in a store shared by every
process of the account (the database in production), refreshed through `stable_token`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from bangfu_bot.clock import Clock
from bangfu_bot.notify.platform import (
    NETWORK_ERRCODE,
    RETRY_ERRCODES,
    TAGGING_BATCH,
    TOKEN_ERRCODES,
    UNDELIVERABLE_ERRCODES,
    ErrorKind,
    WeChatAPIError,
    classify,
)

__all__ = [
    "NETWORK_ERRCODE",
    "RETRY_ERRCODES",
    "TAGGING_BATCH",
    "TOKEN_ERRCODES",
    "UNDELIVERABLE_ERRCODES",
    "ErrorKind",
    "WeChatAPIError",
    "WeChatClient",
    "classify",
]

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=60)
TEMPORARY_QR_MAX_SECONDS = 2_592_000


@dataclass(frozen=True)
class StoredToken:
    """An access token and the instant it stops working (tz-aware UTC)."""

    token: str
    expires_at: datetime


class TokenStore(Protocol):
    """Where the processes of one account share their access token."""

    async def load(self, appid: str) -> StoredToken | None: ...

    async def save(self, appid: str, token: StoredToken) -> None: ...


class MemoryTokenStore:
    """A token store for a single process (tests, sandbox, tools without a database)."""

    def __init__(self) -> None:
        self._tokens: dict[str, StoredToken] = {}

    async def load(self, appid: str) -> StoredToken | None:
        """The token saved for this account, if any."""
        return self._tokens.get(appid)

    async def save(self, appid: str, token: StoredToken) -> None:
        """Replace the account's token."""
        self._tokens[appid] = token


OnCall = Callable[[str, int], None]


class WeChatClient:
    """Calls the official-account API with a shared, self-refreshing access token."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        api_base: str,
        token_store: TokenStore,
        session: aiohttp.ClientSession,
        clock: Clock,
        timeout_s: float = 10.0,
        on_call: OnCall | None = None,
    ) -> None:
        self._appid = appid
        self._secret = secret
        self._api_base = api_base.rstrip("/")
        self._store = token_store
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._on_call = on_call
        # One refresh at a time in this process; other processes are handled by
        # stable_token returning the same token to everyone while it is valid.
        self._refresh_lock = asyncio.Lock()
        # The last token seen, so a call does not cost a database read (that read capped the
        # outbox near 500 sends/s). Another process's refresh shows up as a token error on
        # our next call, which reloads from the store before forcing anything.
        self._known: StoredToken | None = None

    # -- access token ---------------------------------------------------------------------

    async def access_token(self) -> str:
        """A token valid for at least another minute, refreshing it if needed."""
        token = await self._usable_stored_token()
        if token is not None:
            return token
        async with self._refresh_lock:
            # Another task may have refreshed while we waited for the lock.
            token = await self._usable_stored_token()
            if token is not None:
                return token
            return (await self._refresh(force=False)).token

    async def _usable_stored_token(self) -> str | None:
        known = self._known
        if known is None or known.expires_at - self._clock.now() <= TOKEN_MARGIN:
            known = self._remember(await self._store.load(self._appid))
        if known is None or known.expires_at - self._clock.now() <= TOKEN_MARGIN:
            return None
        return known.token

    def _remember(self, loaded: StoredToken | None) -> StoredToken | None:
        """Keep the newer of a token just read and the one already known. A read that began
        before a refresh ends after it with the old token; taken as is, it would put the
        token WeChat had just refused back into use (seen under load: a call failing twice
        on the token, the second time with no retry left)."""
        known = self._known
        if loaded is not None and (known is None or loaded.expires_at > known.expires_at):
            self._known = known = loaded
        return known

    async def _refresh(self, *, force: bool) -> StoredToken:
        payload = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
            "force_refresh": force,
        }
        answer = await self._request("POST", "stable_token", payload=payload)
        try:
            token = StoredToken(
                token=str(answer["access_token"]),
                expires_at=self._clock.now() + timedelta(seconds=int(answer["expires_in"])),
            )
        except (KeyError, TypeError, ValueError):
            raise WeChatAPIError(
                errcode=NETWORK_ERRCODE,
                errmsg="token answer without a token",
                endpoint="stable_token",
            ) from None
        await self._store.save(self._appid, token)
        self._known = token
        log.info("wechat access token refreshed", extra={"force_refresh": force})
        return token

    async def _recover_from_token_error(self, failed_token: str) -> None:
        async with self._refresh_lock:
            self._known = None
            stored = await self._store.load(self._appid)
            # Someone (another task or process) already replaced the failed token: a forced
            # refresh now would invalidate their fresh token and start a ping-pong.
            if stored is not None and stored.token != failed_token:
                return
            await self._refresh(force=True)

    # -- transport ------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._request(
                method, endpoint, payload=payload, params=params, token=token
            )
        except WeChatAPIError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
        await self._recover_from_token_error(token)
        # Exactly one retry: a second token error is reported, never looped on.
        token = await self.access_token()
        return await self._request(method, endpoint, payload=payload, params=params, token=token)

    async def _request(
        self,
        method: str,
        endpoint: str,
        *,
        payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        try:
            answer = await self._exchange(method, endpoint, payload, query)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # ValueError: bad JSON
            self._report(endpoint, NETWORK_ERRCODE)
            raise WeChatAPIError(
                errcode=NETWORK_ERRCODE, errmsg=f"network: {_describe(exc)}", endpoint=endpoint
            ) from exc
        errcode = _errcode_of(answer)
        self._report(endpoint, errcode)
        if errcode != 0:
            raise WeChatAPIError(
                errcode=errcode, errmsg=str(answer.get("errmsg", "")), endpoint=endpoint
            )
        return answer

    async def _exchange(
        self, method: str, endpoint: str, payload: dict[str, Any] | None, query: dict[str, str]
    ) -> dict[str, Any]:
        body = None
        headers = {}
        if payload is not None:
            # WeChat shows \uXXXX escapes literally to the user: send raw UTF-8 Chinese.
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        url = f"{self._api_base}/cgi-bin/{endpoint}"
        async with self._session.request(
            method, url, params=query, data=body, headers=headers, timeout=self._timeout
        ) as response:
            if response.status != 200:
                raise _HTTPStatusError(response.status)
            raw = await response.read()
        # Parsed by hand: the platform does not always label its JSON as application/json.
        answer = json.loads(raw.decode("utf-8"))
        if not isinstance(answer, dict):
            raise ValueError("answer is not a JSON object")
        return answer

    def _report(self, endpoint: str, errcode: int) -> None:
        if self._on_call is not None:
            self._on_call(endpoint, errcode)

    # -- customer-service and template messages -------------------------------------------

    async def send_text(self, *, openid: str, content: str) -> dict[str, Any]:
        """Send a customer-service text (客服消息); only works inside the user's window."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return await self._call("POST", "message/custom/send", payload=payload)

    async def send_template(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a template message (模板消息); the answer holds its `msgid`."""
        payload: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url is not None:
            payload["url"] = url
        if client_msg_id is not None:
            payload["client_msg_id"] = client_msg_id
        return await self._call("POST", "message/template/send", payload=payload)

    # -- mass send (群发) ----------------------------------------------------------------

    async def mass_send_by_tag(
        self, *, tag_id: int, content: str, clientmsgid: str
    ) -> dict[str, Any]:
        """Mass-send a text to the followers carrying a tag."""
        return await self._sendall({"is_to_all": False, "tag_id": tag_id}, content, clientmsgid)

    async def mass_send_to_all(self, *, content: str, clientmsgid: str) -> dict[str, Any]:
        """Mass-send a text to every follower."""
        return await self._sendall({"is_to_all": True}, content, clientmsgid)

    async def _sendall(
        self, audience: dict[str, Any], content: str, clientmsgid: str
    ) -> dict[str, Any]:
        payload = {
            "filter": audience,
            "msgtype": "text",
            "text": {"content": content},
            "clientmsgid": clientmsgid,
        }
        return await self._call("POST", "message/mass/sendall", payload=payload)

    async def mass_send_to_openids(
        self, *, openids: list[str], content: str, clientmsgid: str
    ) -> dict[str, Any]:
        """Mass-send a text to 2..10,000 openids (verified service accounts only)."""
        payload = {
            "touser": list(openids),
            "msgtype": "text",
            "text": {"content": content},
            "clientmsgid": clientmsgid,
        }
        return await self._call("POST", "message/mass/send", payload=payload)

    # -- tags (标签) ----------------------------------------------------------------------

    async def create_tag(self, *, name: str) -> int:
        """Create a tag and return its id."""
        answer = await self._call("POST", "tags/create", payload={"tag": {"name": name}})
        return int(answer["tag"]["id"])

    async def get_tags(self) -> list[dict[str, Any]]:
        """All tags of the account: dicts with id, name and count."""
        answer = await self._call("GET", "tags/get")
        return list(answer.get("tags", []))

    async def delete_tag(self, *, tag_id: int) -> None:
        """Delete a tag (it comes off every user carrying it)."""
        await self._call("POST", "tags/delete", payload={"tag": {"id": tag_id}})

    async def tag_users(self, *, tag_id: int, openids: list[str]) -> None:
        """Put a tag on users, 50 per call as the platform requires."""
        # Tagging is idempotent, so after a failure the whole list can simply be sent again.
        for start in range(0, len(openids), TAGGING_BATCH):
            await self.tag_batch(tag_id=tag_id, openids=openids[start : start + TAGGING_BATCH])

    async def tag_batch(self, *, tag_id: int, openids: list[str], untag: bool = False) -> None:
        """One tagging (or untagging) call: 1 to 50 users, all or none."""
        endpoint = "tags/members/batchuntagging" if untag else "tags/members/batchtagging"
        await self._call("POST", endpoint, payload={"openid_list": openids, "tagid": tag_id})

    async def tag_members(self, *, tag_id: int) -> list[str]:
        """The followers carrying a tag, read page by page (10,000 a page)."""
        members: list[str] = []
        next_openid = ""
        while True:
            answer = await self._call(
                "POST", "user/tag/get", payload={"tagid": tag_id, "next_openid": next_openid}
            )
            page = list((answer.get("data") or {}).get("openid") or [])
            members.extend(page)
            next_openid = str(answer.get("next_openid") or "")
            # The platform marks the end with an empty page (count 0), not an empty cursor.
            if not page or not next_openid:
                return members

    # -- menu, QR codes, users ------------------------------------------------------------

    async def create_menu(self, *, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu (自定义菜单)."""
        await self._call("POST", "menu/create", payload=menu)

    async def create_qrcode(
        self, *, scene_str: str, permanent: bool, expire_seconds: int = TEMPORARY_QR_MAX_SECONDS
    ) -> dict[str, Any]:
        """Create a parametric QR code (带参数二维码); the answer holds `ticket` and `url`."""
        payload: dict[str, Any] = {
            "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene_str}},
        }
        if not permanent:
            payload["expire_seconds"] = expire_seconds
        return await self._call("POST", "qrcode/create", payload=payload)

    async def user_info(self, *, openid: str) -> dict[str, Any]:
        """A user's basic information; `subscribe` is 0 once they unfollowed."""
        return await self._call("GET", "user/info", params={"openid": openid, "lang": "zh_CN"})


class _HTTPStatusError(aiohttp.ClientError):
    """A non-200 answer: WeChat itself always answers 200, so this is a gateway failing."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _errcode_of(answer: dict[str, Any]) -> int:
    # Successful answers often have no errcode at all (stable_token, tags/get, user/info).
    try:
        return int(answer.get("errcode", 0))
    except (TypeError, ValueError):
        return NETWORK_ERRCODE


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
