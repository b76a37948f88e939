"""A faithful local fake of WeChat's outbound API (https://api.weixin.qq.com/cgi-bin/...).

A real aiohttp server with the platform's request and answer shapes, error codes and limits
(customer-service windows, template field rules, 4 mass messages a month, one mass send a day
on a subscription account, tag limits),
used by the tests, the sandbox page and the demo. Errors and slow answers can be injected
per endpoint (or a call held until a test releases it), every call can be given the
platform's round-trip time (`latency_s`, for the bench), and everything it was sent is
recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from aiohttp import web

from bangfu_bot.clock import Clock

SHANGHAI = ZoneInfo("Asia/Shanghai")

TOKEN_LIFETIME = timedelta(seconds=7200)
TOKEN_OVERLAP = timedelta(minutes=5)
WROTE_WINDOW, WROTE_QUOTA = timedelta(hours=48), 5
CLICK_WINDOW, CLICK_QUOTA = timedelta(minutes=1), 3
MASS_PER_MONTH = 4
MASS_OPENIDS_MIN, MASS_OPENIDS_MAX = 2, 10_000
CLIENTMSGID_MEMORY = timedelta(hours=24)
MAX_TAGS, MAX_TAGS_PER_USER, TAGGING_BATCH = 100, 20, 50
TAG_FOLLOWERS_PAGE = 10_000
TAG_NAME_MAX_BYTES = 30
FIRST_TAG_ID = 100  # ids 0-2 are the platform's own tags
MENU_BUTTONS, MENU_SUB_BUTTONS = 3, 5
MENU_NAME_MAX_BYTES, MENU_SUB_NAME_MAX_BYTES = 16, 60
MENU_KEY_MAX_BYTES, MENU_URL_MAX_BYTES = 128, 1024
QR_DEFAULT_SECONDS, QR_MAX_SECONDS = 60, 2_592_000
QR_SCENE_STR_MAX = 64

# Since May 2023 a template field holds at most this many characters, by field type, and
# only what its type allows (TEMPLATE_FIELD_RULES); anything else is refused with 47003.
TEMPLATE_FIELD_LIMITS = {
    "thing": 20,
    "phrase": 5,
    "name": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phone_number": 17,
    "car_number": 8,
    "amount": 14,
}
TEMPLATE_DEFAULT_LIMIT = 20
_HAN = "\u3400-\u9fff"
_DAY = (
    r"(\d{4}年\d{1,2}月\d{1,2}日|\d{4}年\d{1,2}月|\d{1,2}月\d{1,2}日"
    r"|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{4}-\d{1,2}|\d{1,2}-\d{1,2})"
)
_CLOCK = r"\d{1,2}:\d{2}(:\d{2})?"
_ONE_TIME = rf"({_DAY} ?)?{_CLOCK}"
_ONE_DATE = rf"{_DAY}( {_CLOCK})?"
# What each typed field may hold (the platform's table of 参数类型; `thing` any text).
TEMPLATE_FIELD_RULES: dict[str, re.Pattern[str]] = {
    "thing": re.compile(r"[^\x00-\x1f]*"),
    "phrase": re.compile(rf"[{_HAN}]+"),
    "name": re.compile(rf"[{_HAN}·]{{1,10}}|[A-Za-z .'-]+"),
    "amount": re.compile(r"[¥￥$€]?\d{1,10}(\.\d{1,2})?元?"),
    "number": re.compile(r"-?\d+(\.\d+)?"),
    "letter": re.compile(r"[A-Za-z]+"),
    "symbol": re.compile(rf"[^A-Za-z0-9{_HAN}\s]+"),
    "character_string": re.compile(r"[!-~]+"),
    "phone_number": re.compile(r"[0-9+\-() ]+"),
    "car_number": re.compile(rf"[{_HAN}A-Za-z0-9][A-Za-z0-9]{{0,6}}[{_HAN}A-Za-z0-9]?"),
    "time": re.compile(rf"{_ONE_TIME}(~{_ONE_TIME})?"),
    "date": re.compile(rf"{_ONE_DATE}(~{_ONE_DATE})?"),
}
TEMPLATE_RETIRED_KEYS = frozenset({"first", "remark"})

CUSTOM_MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "music",
        "news",
        "mpnews",
        "msgmenu",
        "wxcard",
        "miniprogrampage",
    }
)
KEYED_BUTTON_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
OTHER_BUTTON_TYPES = frozenset(
    {"view", "media_id", "article_id", "article_view_limited", "miniprogram"}
)

# An unescaped "\u" inside a JSON string: an even run of backslashes, then one more and "u".
_UNICODE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u")

_dumps = partial(json.dumps, ensure_ascii=False)


@dataclass
class Call:
    """One request the fake received and the errcode it answered."""

    endpoint: str
    payload: dict[str, Any]
    errcode: int
    at: datetime


@dataclass
class Follower:
    """A user of the account, as the platform sees them."""

    openid: str
    nickname: str = ""
    subscribed: bool = True
    subscribe_time: datetime | None = None
    blocked: bool = False
    tags: set[int] = field(default_factory=set)
    window_until: datetime | None = None
    window_quota: int = 0


@dataclass
class MassJob:
    """A submitted mass send (群发) and who it reached."""

    msg_id: int
    clientmsgid: str | None
    content: str
    at: datetime
    attempted: list[str]
    delivered: list[str]
    filtered: list[str]


@dataclass
class QRCode:
    """A parametric QR code and the scene it carries."""

    ticket: str
    scene: str
    permanent: bool
    expires_at: datetime | None


@dataclass
class Hold:
    """Calls held by `hold_next` until `release()`: a test acts while they are under way,
    with no race against a timer. `arrived` is set once all of them are held."""

    times: int
    held: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let the held calls (and any later ones this hold would take) be answered."""
        self.released.set()


@dataclass
class _Token:
    value: str
    expires_at: datetime
    family: str  # "stable" or "basic": the two token kinds do not invalidate each other


class _Reject(Exception):
    """Answer the request with an errcode (and optional extra fields)."""

    def __init__(self, errcode: int, errmsg: str, **extra: Any) -> None:
        super().__init__(errcode, errmsg)
        self.answer = {"errcode": errcode, "errmsg": errmsg, **extra}


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class FakeWeChatAPI:
    """The outbound WeChat API of one official account, served locally."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        clock: Clock,
        account_type: str = "service",
        latency_s: float = 0.0,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.account_type = account_type
        # Real seconds every call takes before it is answered (0: answer at once).
        self.latency_s = latency_s
        self.calls: list[Call] = []
        self.menu: dict[str, Any] | None = None
        self.base_url: str | None = None
        self._clock = clock
        self._ids = itertools.count(1_000_001)
        self._tokens: dict[str, _Token] = {}
        self._stable: _Token | None = None
        self._users: dict[str, Follower] = {}
        self._templates: dict[str, dict[str, str]] = {}
        self._template_by_client_id: dict[str, int] = {}
        self._template_looks: dict[str, tuple[str, dict[str, str]]] = {}
        self._texts: list[tuple[str, dict[str, Any]]] = []
        self._sent_templates: list[dict[str, Any]] = []
        self._jobs: dict[int, MassJob] = {}
        self._mass_received: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._tag_names: dict[int, str] = {}
        self._tag_ids = itertools.count(FIRST_TAG_ID)
        self._qrcodes: dict[str, QRCode] = {}
        self._failures: defaultdict[str, deque[tuple[int, str]]] = defaultdict(deque)
        # Failures by time (until an instant of the fake's clock) and by chance (a rate).
        self._failing_until: dict[str, tuple[datetime, int]] = {}
        self._failing_at_random: dict[str, tuple[float, int, random.Random]] = {}
        self._delays: defaultdict[str, deque[float | Hold]] = defaultdict(deque)
        self._holds: list[Hold] = []
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes: dict[str, tuple[str, Handler, bool]] = {
            "stable_token": ("POST", self._stable_token, False),
            "token": ("GET", self._basic_token, False),
            "message/custom/send": ("POST", self._custom_send, True),
            "message/template/send": ("POST", self._template_send, True),
            "message/mass/sendall": ("POST", self._mass_sendall, True),
            "message/mass/send": ("POST", self._mass_send, True),
            "tags/create": ("POST", self._tags_create, True),
            "tags/get": ("GET", self._tags_get, True),
            "tags/delete": ("POST", self._tags_delete, True),
            "tags/members/batchtagging": ("POST", self._batchtagging, True),
            "tags/members/batchuntagging": ("POST", self._batchuntagging, True),
            "user/tag/get": ("POST", self._tag_followers, True),
            "menu/create": ("POST", self._menu_create, True),
            "qrcode/create": ("POST", self._qrcode_create, True),
            "user/info": ("GET", self._user_info, True),
        }

    # -- serving --------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """An aiohttp application serving the endpoints under /cgi-bin/."""
        app = web.Application(client_max_size=4 * 1024 * 1024)  # 10,000 openids fit
        for endpoint, (method, handler, needs_token) in self._routes.items():
            app.router.add_route(
                method, f"/cgi-bin/{endpoint}", self._view(endpoint, handler, needs_token)
            )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a local port and return the base URL (also kept in `base_url`)."""
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; requests still held by `delay_next` or `hold_next` are released
        first."""
        self._stopping.set()
        for hold in self._holds:
            hold.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _view(
        self, endpoint: str, handler: Handler, needs_token: bool
    ) -> Callable[[web.Request], Any]:
        async def view(request: web.Request) -> web.Response:
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            await self._hold_if_delayed(endpoint)
            payload, parse_error = await _read_payload(request)
            try:
                self._raise_injected(endpoint)
                if needs_token:
                    self._check_token(request.query.get("access_token"))
                if parse_error is not None:
                    raise parse_error
                answer = handler(payload)
            except _Reject as rejection:
                answer = rejection.answer
            self._record(endpoint, payload, answer)
            return web.json_response(answer, dumps=_dumps)

        return view

    def _record(self, endpoint: str, payload: dict[str, Any], answer: dict[str, Any]) -> None:
        shown = {**payload, "secret": "***"} if "secret" in payload else payload
        errcode = int(answer.get("errcode", 0))
        self.calls.append(Call(endpoint, shown, errcode, self._clock.now()))

    # -- error injection ------------------------------------------------------------------

    def fail_next(
        self, endpoint: str, errcode: int, times: int = 1, errmsg: str = "injected"
    ) -> None:
        """Make the next `times` calls to an endpoint (e.g. "message/custom/send") fail."""
        self._failures[self._known(endpoint)].extend([(errcode, errmsg)] * times)

    def fail_until(self, endpoint: str, errcode: int, until: datetime) -> None:
        """Fail every call to an endpoint until the fake's clock reaches `until` (e.g. 45009
        for a minute: the platform's rate limit)."""
        self._failing_until[self._known(endpoint)] = (until, errcode)

    def fail_at_random(self, endpoint: str, errcode: int, rate: float, seed: int = 0) -> None:
        """Fail a share `rate` of the calls to an endpoint, repeatably (e.g. -1, busy)."""
        self._failing_at_random[self._known(endpoint)] = (rate, errcode, random.Random(seed))

    def delay_next(self, endpoint: str, seconds: float, times: int = 1) -> None:
        """Hold the next `times` calls to an endpoint for `seconds` of real time."""
        self._delays[self._known(endpoint)].extend([seconds] * times)

    def hold_next(self, endpoint: str, times: int = 1) -> Hold:
        """Hold the next `times` calls to an endpoint until the returned hold is released."""
        hold = Hold(times)
        self._delays[self._known(endpoint)].extend([hold] * times)
        self._holds.append(hold)
        return hold

    def _known(self, endpoint: str) -> str:
        endpoint = endpoint.removeprefix("/").removeprefix("cgi-bin/")
        if endpoint not in self._routes:
            raise ValueError(f"the fake does not serve {endpoint!r}")
        return endpoint

    def _raise_injected(self, endpoint: str) -> None:
        queue = self._failures[endpoint]
        if queue:
            errcode, errmsg = queue.popleft()
            raise _Reject(errcode, errmsg)
        until, errcode = self._failing_until.get(endpoint, (None, 0))
        if until is not None and self._clock.now() < until:
            raise _Reject(errcode, "injected until a time")
        rate, errcode, chance = self._failing_at_random.get(endpoint, (0.0, 0, None))
        if chance is not None and chance.random() < rate:
            raise _Reject(errcode, "injected at random")

    async def _hold_if_delayed(self, endpoint: str) -> None:
        queue = self._delays[endpoint]
        if not queue:
            return
        seconds = queue.popleft()
        if isinstance(seconds, Hold):  # held until the test releases it, not for a time
            hold = seconds
            hold.held += 1
            if hold.held == hold.times:
                hold.arrived.set()
            await hold.released.wait()
            return
        # Waiting on the stop event lets stop() release held requests instead of the
        # server waiting for them; the request is then handled like any other.
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # -- access tokens --------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Make every token issued so far expire now (the next use answers 42001)."""
        now = self._clock.now()
        for token in self._tokens.values():
            token.expires_at = min(token.expires_at, now)

    def _stable_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_credentials(payload)
        now = self._clock.now()
        current = self._stable
        forced = payload.get("force_refresh") is True
        if forced and current is not None:
            # A forced refresh invalidates the previous stable token at once.
            self._tokens.pop(current.value, None)
        # Normal mode hands out a new token in the last 5 minutes; the old one lives on
        # until its own expiry, so instances that still hold it keep working.
        if forced or current is None or current.expires_at - now <= TOKEN_OVERLAP:
            current = self._issue_token("stable")
            self._stable = current
        remaining = int((current.expires_at - now).total_seconds())
        return {"access_token": current.value, "expires_in": remaining}

    def _basic_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_credentials(payload)
        grace = self._clock.now() + TOKEN_OVERLAP
        for token in self._tokens.values():
            if token.family == "basic":
                token.expires_at = min(token.expires_at, grace)
        token = self._issue_token("basic")
        return {"access_token": token.value, "expires_in": int(TOKEN_LIFETIME.total_seconds())}

    def _check_credentials(self, payload: dict[str, Any]) -> None:
        if payload.get("grant_type") != "client_credential":
            raise _Reject(40002, "invalid grant_type")
        if not payload.get("appid"):
            raise _Reject(41002, "appid missing")
        if payload["appid"] != self.appid:
            raise _Reject(40013, "invalid appid")
        if not payload.get("secret"):
            raise _Reject(41004, "appsecret missing")
        if payload["secret"] != self.secret:
            raise _Reject(40125, "invalid appsecret")

    def _issue_token(self, family: str) -> _Token:
        token = _Token(
            value=f"{family[:2]}_{secrets.token_urlsafe(48)}",
            expires_at=self._clock.now() + TOKEN_LIFETIME,
            family=family,
        )
        self._tokens[token.value] = token
        return token

    def _check_token(self, value: str | None) -> None:
        if not value:
            raise _Reject(41001, "access_token missing")
        token = self._tokens.get(value)
        if token is None:
            raise _Reject(40001, "invalid credential, access_token is invalid or not latest")
        if token.expires_at <= self._clock.now():
            raise _Reject(42001, "access_token expired")

    # -- users ----------------------------------------------------------------------------

    def follow(self, openid: str, nickname: str = "") -> None:
        """The user follows (关注) the account."""
        user = self._users.setdefault(openid, Follower(openid))
        user.subscribed = True
        user.subscribe_time = self._clock.now()
        user.nickname = nickname or user.nickname

    def unfollow(self, openid: str) -> None:
        """The user unfollows; any open customer-service window closes."""
        user = self._users.setdefault(openid, Follower(openid))
        user.subscribed = False
        user.window_until = None
        user.window_quota = 0

    def block(self, openid: str) -> None:
        """The user refused messages from the account (拒收)."""
        self._users.setdefault(openid, Follower(openid)).blocked = True

    def user_wrote(self, openid: str) -> None:
        """The user sent a message: a 48 h window with 5 customer-service messages opens."""
        user = self._active_user(openid)
        user.window_until = self._clock.now() + WROTE_WINDOW
        user.window_quota = WROTE_QUOTA

    def user_clicked(self, openid: str) -> None:
        """Menu click, follow or scan: 3 messages in 1 minute, unless a longer window is open."""
        user = self._active_user(openid)
        until = self._clock.now() + CLICK_WINDOW
        if user.window_until is not None and user.window_until > until:
            return
        user.window_until = until
        user.window_quota = CLICK_QUOTA

    def _active_user(self, openid: str) -> Follower:
        # Only followers can write or click, so an unknown user is one who just followed.
        if openid not in self._users:
            self.follow(openid)
        return self._users[openid]

    def _known_user(self, openid: Any) -> Follower:
        user = self._users.get(openid) if isinstance(openid, str) else None
        if user is None:
            raise _Reject(40003, "invalid openid")
        return user

    # -- customer-service messages (客服消息) -------------------------------------------------

    def sent_texts(self, openid: str | None = None) -> list[str]:
        """Delivered customer-service texts, in order (to one user, or to everyone)."""
        return [
            message["text"]["content"]
            for to, message in self._texts
            if message.get("msgtype") == "text" and openid in (None, to)
        ]

    def _custom_send(self, payload: dict[str, Any]) -> dict[str, Any]:
        user = self._known_user(payload.get("touser"))
        msgtype = payload.get("msgtype")
        if msgtype not in CUSTOM_MSGTYPES:
            raise _Reject(40008, "invalid message type")
        if msgtype == "text":
            _text_content(payload)
        if not user.subscribed:
            raise _Reject(43004, "require subscribe")
        if user.blocked:
            raise _Reject(43101, "user refuse to accept the msg")
        if user.window_until is None or user.window_until <= self._clock.now():
            raise _Reject(45015, "response out of time limit or subscription is canceled")
        if user.window_quota <= 0:
            raise _Reject(45047, "out of response count limit")
        user.window_quota -= 1
        self._texts.append((user.openid, payload))
        return {"errcode": 0, "errmsg": "ok"}

    # -- template messages (模板消息) --------------------------------------------------------

    def add_template(
        self,
        template_id: str,
        keys: dict[str, str],
        *,
        title: str = "",
        labels: dict[str, str] | None = None,
    ) -> None:
        """Register a template: its keys and their types, e.g. {"thing1": "thing"}, and
        what the phone shows with them: the title and each key's label."""
        self._templates[template_id] = dict(keys)
        self._template_looks[template_id] = (title, dict(labels or {}))

    def template_look(self, template_id: str) -> tuple[str, dict[str, str]]:
        """A template's title and its keys' labels, as the phone shows them."""
        return self._template_looks.get(template_id, ("", {}))

    def shown_template(self, sent: dict[str, Any]) -> list[str]:
        """A delivered template as the member's phone shows it: the title, then one line
        per field, 「label：value」 (the value alone when the label is not known)."""
        title, labels = self.template_look(sent["template_id"])
        lines = [title] if title else []
        for key, value in sent["data"].items():
            lines.append(f"{labels[key]}：{value}" if labels.get(key) else value)
        return lines

    def sent_templates(self, openid: str | None = None) -> list[dict[str, Any]]:
        """Delivered templates: msgid, touser, template_id, url, client_msg_id, data (key→value)."""
        return [t for t in self._sent_templates if openid in (None, t["touser"])]

    def _template_send(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._require_service_account()
        template_id = payload.get("template_id")
        keys = self._templates.get(template_id) if isinstance(template_id, str) else None
        if keys is None:
            raise _Reject(40037, "invalid template_id")
        client_msg_id = payload.get("client_msg_id")
        if client_msg_id and client_msg_id in self._template_by_client_id:
            msgid = self._template_by_client_id[client_msg_id]
            return {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        user = self._known_user(payload.get("touser"))
        data = _check_template_data(keys, payload.get("data"))
        if not user.subscribed:
            raise _Reject(43004, "require subscribe")
        if user.blocked:
            raise _Reject(43101, "user refuse to accept the msg")
        msgid = next(self._ids)
        if client_msg_id:
            self._template_by_client_id[client_msg_id] = msgid
        self._sent_templates.append(
            {
                "msgid": msgid,
                "touser": user.openid,
                "template_id": template_id,
                "url": payload.get("url"),
                "client_msg_id": client_msg_id,
                "data": data,
            }
        )
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def _require_service_account(self) -> None:
        if self.account_type != "service":
            raise _Reject(48001, "api unauthorized")

    # -- mass send (群发) ------------------------------------------------------------------

    def mass_jobs(self) -> list[MassJob]:
        """Every accepted mass send, oldest first."""
        return list(self._jobs.values())

    def mass_job(self, msg_id: int) -> dict[str, Any]:
        """The counts a MASSSENDJOBFINISH event reports for a job."""
        job = self._jobs[msg_id]
        # As on the platform, FilterCount is the number left *after* filtering
        # (= SentCount + ErrorCount), not the number filtered out.
        return {
            "MsgID": job.msg_id,
            "Status": "send success" if job.delivered else "send fail",
            "TotalCount": len(job.attempted),
            "FilterCount": len(job.delivered),
            "SentCount": len(job.delivered),
            "ErrorCount": 0,
        }

    def _mass_sendall(self, payload: dict[str, Any]) -> dict[str, Any]:
        audience = payload.get("filter")
        if not isinstance(audience, dict):
            raise _Reject(40097, "invalid args: filter")
        content = _mass_text(payload)
        if audience.get("is_to_all") is True:
            recipients = [u.openid for u in self._users.values() if u.subscribed]
        else:
            tag_id = audience.get("tag_id")
            if not self._is_tag(tag_id):
                raise _Reject(40050, "invalid tag_id")
            recipients = [
                u.openid for u in self._users.values() if u.subscribed and tag_id in u.tags
            ]
        return self._submit_mass(recipients, content, payload.get("clientmsgid"))

    def _mass_send(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._require_service_account()
        touser = payload.get("touser")
        if not isinstance(touser, list) or len(touser) < MASS_OPENIDS_MIN:
            raise _Reject(40130, "invalid openid list size, at least two openid")
        if len(touser) > MASS_OPENIDS_MAX:
            raise _Reject(40130, "invalid openid list size, at most 10000 openid")
        if not all(isinstance(openid, str) for openid in touser):
            raise _Reject(40003, "invalid openid")
        content = _mass_text(payload)
        return self._submit_mass(list(dict.fromkeys(touser)), content, payload.get("clientmsgid"))

    def _submit_mass(
        self, attempted: list[str], content: str, clientmsgid: str | None
    ) -> dict[str, Any]:
        now = self._clock.now()
        self._reject_duplicate_mass(clientmsgid, now)
        today = now.astimezone(SHANGHAI).date()
        if self.account_type != "service" and any(
            job.at.astimezone(SHANGHAI).date() == today for job in self._jobs.values()
        ):
            # A subscription account may mass-send once a day.
            raise _Reject(45028, "has no masssend quota")
        month = now.astimezone(SHANGHAI).strftime("%Y-%m")
        delivered, filtered = [], []
        for openid in attempted:
            user = self._users.get(openid)
            reachable = user is not None and user.subscribed and not user.blocked
            if reachable and self._mass_received[(openid, month)] < MASS_PER_MONTH:
                self._mass_received[(openid, month)] += 1
                delivered.append(openid)
            else:
                filtered.append(openid)
        msg_id = next(self._ids)
        self._jobs[msg_id] = MassJob(
            msg_id, clientmsgid, content, now, attempted, delivered, filtered
        )
        return {
            "errcode": 0,
            "errmsg": "send job submission success",
            "msg_id": msg_id,
            "msg_data_id": msg_id,
        }

    def _reject_duplicate_mass(self, clientmsgid: str | None, now: datetime) -> None:
        if not clientmsgid:
            return
        for job in self._jobs.values():
            if job.clientmsgid == clientmsgid and now - job.at < CLIENTMSGID_MEMORY:
                # The platform names the earlier job, so a caller can follow it instead.
                raise _Reject(45065, "clientmsgid exist", msg_id=job.msg_id)

    # -- tags (标签) -----------------------------------------------------------------------

    def _tags_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag = payload.get("tag")
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str) or not name:
            raise _Reject(45157, "invalid tag name")
        if len(name.encode("utf-8")) > TAG_NAME_MAX_BYTES:
            raise _Reject(45158, "tag name too long")
        if name in self._tag_names.values():
            raise _Reject(45157, "invalid tag name: duplicate")
        if len(self._tag_names) >= MAX_TAGS:
            raise _Reject(45056, "too many tags now, no need to add new")
        tag_id = next(self._tag_ids)
        self._tag_names[tag_id] = name
        return {"tag": {"id": tag_id, "name": name}}

    def _tags_get(self, payload: dict[str, Any]) -> dict[str, Any]:
        tags = [
            {"id": tag_id, "name": name, "count": self._tag_count(tag_id)}
            for tag_id, name in self._tag_names.items()
        ]
        return {"tags": tags}

    def _is_tag(self, tag_id: Any) -> TypeGuard[int]:
        return isinstance(tag_id, int) and tag_id in self._tag_names

    def _tag_count(self, tag_id: int) -> int:
        return sum(1 for u in self._users.values() if u.subscribed and tag_id in u.tags)

    def tag_named(self, name: str) -> int | None:
        """The id of the tag called `name`, if there is one."""
        return next((tag_id for tag_id, known in self._tag_names.items() if known == name), None)

    def tagged(self, name: str) -> set[str]:
        """The followers carrying the tag called `name` (empty when there is no such tag)."""
        tag_id = self.tag_named(name)
        return {u.openid for u in self._users.values() if u.subscribed and tag_id in u.tags}

    def add_tag(self, name: str, openids: Sequence[str] = ()) -> int:
        """A tag someone made by hand in the platform's console, on some users."""
        tag_id = next(self._tag_ids)
        self._tag_names[tag_id] = name
        for openid in openids:
            self._users[openid].tags.add(tag_id)  # users the fake knows (followed once)
        return tag_id

    def _tags_delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag = payload.get("tag")
        tag_id = tag.get("id") if isinstance(tag, dict) else None
        if isinstance(tag_id, int) and 0 <= tag_id < FIRST_TAG_ID:
            raise _Reject(45058, "can't modify sys tag")
        if not self._is_tag(tag_id):
            raise _Reject(45159, "invalid tag id")
        del self._tag_names[tag_id]
        for user in self._users.values():
            user.tags.discard(tag_id)
        return {"errcode": 0, "errmsg": "ok"}

    def _tagging_request(self, payload: dict[str, Any]) -> tuple[int, list[Follower]]:
        openids = payload.get("openid_list")
        if not isinstance(openids, list) or not 0 < len(openids) <= TAGGING_BATCH:
            raise _Reject(40032, "invalid openid list size, 1 to 50 openids per call")
        tag_id = payload.get("tagid")
        if not self._is_tag(tag_id):
            raise _Reject(45159, "invalid tag id")
        users = [self._known_user(openid) for openid in openids]
        return tag_id, users

    def _batchtagging(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag_id, users = self._tagging_request(payload)
        # All or nothing: check every user before tagging anyone.
        for user in users:
            if not user.subscribed:
                raise _Reject(40003, "invalid openid: not following")
            if tag_id not in user.tags and len(user.tags) >= MAX_TAGS_PER_USER:
                raise _Reject(45059, "user tag count exceeds limit")
        for user in users:
            user.tags.add(tag_id)
        return {"errcode": 0, "errmsg": "ok"}

    def _batchuntagging(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag_id, users = self._tagging_request(payload)
        for user in users:
            user.tags.discard(tag_id)
        return {"errcode": 0, "errmsg": "ok"}

    def _tag_followers(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag_id = payload.get("tagid")
        if not self._is_tag(tag_id):
            raise _Reject(45159, "invalid tag id")
        after = str(payload.get("next_openid") or "")
        followers = sorted(
            u.openid
            for u in self._users.values()
            if u.subscribed and tag_id in u.tags and u.openid > after
        )
        page = followers[:TAG_FOLLOWERS_PAGE]
        # As on the platform: the cursor is the page's last openid, and an empty page ends.
        return {
            "count": len(page),
            "data": {"openid": page},
            "next_openid": page[-1] if page else "",
        }

    # -- menu (自定义菜单) -------------------------------------------------------------------

    def _menu_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        buttons = payload.get("button")
        if not isinstance(buttons, list) or not 0 < len(buttons) <= MENU_BUTTONS:
            raise _Reject(40016, "invalid button size")
        for button in buttons:
            _check_top_button(button)
        self.menu = payload
        return {"errcode": 0, "errmsg": "ok"}

    # -- parametric QR codes (带参数二维码) ------------------------------------------------

    def qr_scene(self, ticket: str) -> str | None:
        """The scene a QR ticket carries, or None if unknown or expired."""
        code = self._qrcodes.get(ticket)
        if code is None or (code.expires_at is not None and code.expires_at <= self._clock.now()):
            return None
        return code.scene

    def latest_qr(self, prefix: str) -> str | None:
        """The ticket of the newest unexpired QR code whose scene starts with `prefix` (the
        sandbox's 「扫码」 scans the login page's code on the screen)."""
        now = self._clock.now()
        for code in reversed(self._qrcodes.values()):
            live = code.expires_at is None or code.expires_at > now
            if live and code.scene.startswith(prefix):
                return code.ticket
        return None

    def is_following(self, openid: str) -> bool:
        """Whether the user follows the account now."""
        user = self._users.get(openid)
        return user is not None and user.subscribed

    def _qrcode_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._require_service_account()
        action = payload.get("action_name")
        scene = (payload.get("action_info") or {}).get("scene") or {}
        scene_value = _qr_scene_value(action, scene)
        permanent = action in ("QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
        code = QRCode(secrets.token_urlsafe(32), scene_value, permanent, None)
        answer: dict[str, Any] = {"ticket": code.ticket}
        if not permanent:
            seconds = _qr_lifetime(payload.get("expire_seconds"))
            code.expires_at = self._clock.now() + timedelta(seconds=seconds)
            answer["expire_seconds"] = seconds
        answer["url"] = f"http://weixin.qq.com/q/{secrets.token_urlsafe(18)}"
        self._qrcodes[code.ticket] = code
        return answer

    # -- user information -----------------------------------------------------------------

    def _user_info(self, payload: dict[str, Any]) -> dict[str, Any]:
        user = self._known_user(payload.get("openid"))
        if not user.subscribed:
            return {"subscribe": 0, "openid": user.openid}
        subscribed_at = user.subscribe_time or self._clock.now()
        return {
            "subscribe": 1,
            "openid": user.openid,
            "nickname": user.nickname,
            "language": "zh_CN",
            "subscribe_time": int(subscribed_at.timestamp()),
            "remark": "",
            "tagid_list": sorted(user.tags),
            "subscribe_scene": "ADD_SCENE_OTHERS",
        }


async def _read_payload(request: web.Request) -> tuple[dict[str, Any], _Reject | None]:
    """The request's arguments: the query for GET, the JSON body for POST."""
    if request.method == "GET":
        query = {k: v for k, v in request.query.items() if k != "access_token"}
        return query, None
    raw = await request.read()
    if not raw.strip():
        return {}, _Reject(44002, "empty post data")
    try:
        payload = _parse_platform_json(raw)
    except ValueError:
        return {}, _Reject(47001, "data format error")
    if not isinstance(payload, dict):
        return {}, _Reject(47001, "data format error")
    return payload, None


def _parse_platform_json(raw: bytes) -> Any:
    """Parse a body as the platform does: UTF-8 JSON, \\uXXXX escapes left as they are."""
    text = raw.decode("utf-8")
    # The platform shows "\u4f60\u597d" to the user instead of 你好: keep escapes literal.
    text = _UNICODE_ESCAPE.sub(lambda m: m.group(1) + "\\\\u", text)
    return json.loads(text)


def _text_content(payload: dict[str, Any]) -> str:
    text = payload.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str) or not content:
        raise _Reject(44004, "empty content")
    return content


def _mass_text(payload: dict[str, Any]) -> str:
    if payload.get("msgtype") != "text":
        raise _Reject(40008, "invalid message type")
    return _text_content(payload)


def _check_template_data(keys: dict[str, str], data: Any) -> dict[str, str]:
    """The template's values by key, or 47003 naming the first field that breaks a rule."""
    if not isinstance(data, dict):
        raise _Reject(47003, "argument invalid! data")
    values = {}
    for key, entry in data.items():
        if key in TEMPLATE_RETIRED_KEYS:
            raise _Reject(47003, f"argument invalid! data.{key} is no longer supported")
        if key not in keys:
            raise _Reject(47003, f"argument invalid! data.{key} is not in the template")
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str):
            raise _Reject(47003, f"argument invalid! data.{key}.value")
        if "\n" in value or "\r" in value:
            raise _Reject(47003, f"argument invalid! data.{key}.value has a line break")
        limit = TEMPLATE_FIELD_LIMITS.get(keys[key], TEMPLATE_DEFAULT_LIMIT)
        if len(value) > limit:
            raise _Reject(47003, f"argument invalid! data.{key}.value exceeds limit {limit}")
        rule = TEMPLATE_FIELD_RULES.get(keys[key])
        if (rule is not None and not rule.fullmatch(value)) or (not value and keys[key] != "thing"):
            raise _Reject(47003, f"argument invalid! data.{key}.value is not a {keys[key]}")
        values[key] = value
    return values


def _check_top_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise _Reject(40016, "invalid button size")
    _check_name(button, MENU_NAME_MAX_BYTES, 40018, "invalid button name size")
    subs = button.get("sub_button")
    if not subs:
        _check_button_action(button, type_code=40017, key_code=40019, url_code=40020)
        return
    if not isinstance(subs, list) or len(subs) > MENU_SUB_BUTTONS:
        raise _Reject(40023, "invalid sub button size")
    for sub in subs:
        if not isinstance(sub, dict):
            raise _Reject(40023, "invalid sub button size")
        _check_name(sub, MENU_SUB_NAME_MAX_BYTES, 40025, "invalid sub button name size")
        _check_button_action(sub, type_code=40024, key_code=40026, url_code=40027)


def _check_name(button: dict[str, Any], max_bytes: int, errcode: int, errmsg: str) -> None:
    name = button.get("name")
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > max_bytes:
        raise _Reject(errcode, errmsg)


def _check_button_action(
    button: dict[str, Any], *, type_code: int, key_code: int, url_code: int
) -> None:
    kind = button.get("type")
    if kind in KEYED_BUTTON_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MENU_KEY_MAX_BYTES:
            raise _Reject(key_code, "invalid button key size")
    elif kind == "view":
        url = button.get("url")
        if not isinstance(url, str) or not url or len(url.encode("utf-8")) > MENU_URL_MAX_BYTES:
            raise _Reject(url_code, "invalid button url size")
    elif kind not in OTHER_BUTTON_TYPES:
        raise _Reject(type_code, "invalid button type")


def _qr_scene_value(action: Any, scene: dict[str, Any]) -> str:
    if action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
        value = scene.get("scene_str")
        if isinstance(value, str) and 0 < len(value) <= QR_SCENE_STR_MAX:
            return value
    elif action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        number = scene.get("scene_id")
        if isinstance(number, int) and number > 0:
            return str(number)
    else:
        raise _Reject(40097, "invalid args: action_name")
    raise _Reject(40097, "invalid args: scene")


def _qr_lifetime(expire_seconds: Any) -> int:
    # The platform defaults to 60 s and caps temporary codes at 30 days.
    if not isinstance(expire_seconds, int) or expire_seconds <= 0:
        return QR_DEFAULT_SECONDS
    return min(expire_seconds, QR_MAX_SECONDS)
