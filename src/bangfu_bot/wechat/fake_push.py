"""The push half of the fake WeChat: builds, signs and encrypts pushes like the platform.

It POSTs to the bot, waits 5 s, tries three times in all, then decrypts and checks the
answer as WeChat would. Anything WeChat would refuse (a non-XML answer, a bad signature, a
timeout on the third try) is reported as `shown_error`: the member would see
「该公众号暂时无法提供服务，请稍后再试」.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from wechatpy.crypto import WeChatCrypto

from bangfu_bot.clock import Clock
from bangfu_bot.texts import texts
from bangfu_bot.wechat.crypto import PushRejected, parse_xml, sign
from bangfu_bot.wechat.fake_api import FakeWeChatAPI

PLATFORM_ERROR = texts("bangfu_bot.wechat")["platform_error"]
MODES = ("plain", "compatible", "safe")


@dataclass
class Delivery:
    """What the platform saw: each try's HTTP status and the checked reply."""

    statuses: list[int | str] = field(default_factory=list)
    body: str = ""
    reply: dict[str, Any] | None = None
    shown_error: bool = False

    @property
    def tries(self) -> int:
        """How many times the push was sent."""
        return len(self.statuses)

    @property
    def text(self) -> str | None:
        """The text the member sees, or None when the bot answered `success`."""
        if self.shown_error:
            return PLATFORM_ERROR
        if self.reply is None:
            return None
        content = self.reply.get("Content")
        return content if isinstance(content, str) else None


class PushDriver:
    """Sends pushes to the bot's webhook as WeChat does."""

    _msg_ids = itertools.count(24_000_000_000_000_000 + secrets.randbelow(10**9))

    def __init__(
        self,
        *,
        url: str,
        token: str,
        appid: str,
        clock: Clock,
        session: aiohttp.ClientSession,
        aes_key: str = "",
        mode: str = "plain",
        api: FakeWeChatAPI | None = None,
        account: str = "gh_bangfu0000001",
        timeout_s: float = 5.0,
        tries: int = 3,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.url = url
        self.token = token
        self.appid = appid
        self.clock = clock
        self.session = session
        self.mode = mode
        self.api = api
        self.account = account
        self.timeout_s = timeout_s
        self.tries = tries
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None

    # --- building pushes -------------------------------------------------------------

    def message_xml(
        self, openid: str, msg_type: str, body: dict[str, str], msg_id: int | None = None
    ) -> str:
        """XML of a user message (text, image, voice, location...)."""
        fields = {"MsgType": msg_type, **body, "MsgId": str(msg_id or next(self._msg_ids))}
        return self._xml(openid, fields)

    def event_xml(self, openid: str, event: str, event_key: str | None = None, **extra: str) -> str:
        """XML of an event (subscribe, CLICK, TEMPLATESENDJOBFINISH...)."""
        fields = {"MsgType": "event", "Event": event}
        if event_key is not None:
            fields["EventKey"] = event_key
        fields.update(extra)
        return self._xml(openid, fields)

    def _xml(self, openid: str, fields: dict[str, str]) -> str:
        created = str(int(self.clock.now().timestamp()))
        parts = [
            f"<ToUserName><![CDATA[{self.account}]]></ToUserName>",
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
            f"<CreateTime>{created}</CreateTime>",
        ]
        for name, value in fields.items():
            # As the platform does: a "]]>" the user typed is split across two sections.
            value = value.replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
        return "<xml>" + "".join(parts) + "</xml>"

    # --- sending ---------------------------------------------------------------------

    async def text(self, openid: str, content: str, msg_id: int | None = None) -> Delivery:
        """A member types a text message."""
        return await self.send(
            openid, self.message_xml(openid, "text", {"Content": content}, msg_id)
        )

    async def image(self, openid: str, media_id: str = "media-photo-1") -> Delivery:
        """A member sends a photo."""
        body = {"PicUrl": "http://mmbiz.qpic.cn/fake.jpg", "MediaId": media_id}
        return await self.send(openid, self.message_xml(openid, "image", body))

    async def voice(self, openid: str, recognition: str = "") -> Delivery:
        """A member sends a voice message (Recognition holds the transcript, often empty)."""
        body = {"MediaId": "media-voice-1", "Format": "amr", "Recognition": recognition}
        return await self.send(openid, self.message_xml(openid, "voice", body))

    async def location(self, openid: str) -> Delivery:
        """A member shares a location."""
        body = {"Location_X": "27.5", "Location_Y": "106.9", "Scale": "15", "Label": "村委会"}
        return await self.send(openid, self.message_xml(openid, "location", body))

    async def event(
        self, openid: str, event: str, event_key: str | None = None, **extra: str
    ) -> Delivery:
        """The platform reports an event caused by a member (or a delivery receipt)."""
        return await self.send(openid, self.event_xml(openid, event, event_key, **extra))

    async def scan(self, openid: str, ticket: str) -> Delivery | None:
        """The user scans a parametric QR code, as WeChat reports it: SCAN with the scene
        for a follower, subscribe with `qrscene_<scene>` for someone who follows by scanning.
        None when the code is unknown or expired (WeChat shows nothing to the bot)."""
        assert self.api is not None, "scanning needs the fake API that made the code"
        scene = self.api.qr_scene(ticket)
        if scene is None:
            return None
        if self.api.is_following(openid):
            return await self.event(openid, "SCAN", scene, Ticket=ticket)
        return await self.event(openid, "subscribe", f"qrscene_{scene}", Ticket=ticket)

    async def send(self, openid: str, xml: str) -> Delivery:
        """Deliver a push as WeChat does: up to three tries of 5 s, then check the answer."""
        self._tell_api(xml, openid)
        query, body = self.envelope(xml, openid)
        return await self.post(query, body, openid)

    def envelope(self, xml: str, openid: str) -> tuple[dict[str, str], bytes]:
        """The query string and body of a push in this driver's mode."""
        timestamp = str(int(self.clock.now().timestamp()))
        nonce = secrets.token_hex(5)
        query = {
            "signature": sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        if self.mode == "plain":
            return query, xml.encode("utf-8")
        assert self.crypto is not None, "compatible and safe mode need an aes_key"
        encrypted = self.crypto.encrypt_message(xml, nonce, timestamp)
        cipher = parse_xml(encrypted)["Encrypt"]
        assert isinstance(cipher, str)
        query.update(encrypt_type="aes", msg_signature=sign(self.token, timestamp, nonce, cipher))
        if self.mode == "safe":
            body = (
                f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                f"<Encrypt><![CDATA[{cipher}]]></Encrypt></xml>"
            )
        else:
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{cipher}]]></Encrypt></xml>")
        return query, body.encode("utf-8")

    async def post(self, query: dict[str, str], body: bytes, openid: str = "") -> Delivery:
        """POST a prepared push with the platform's timeout and retries."""
        delivery = Delivery()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        for _ in range(self.tries):
            try:
                async with self.session.post(
                    self.url, params=query, data=body, timeout=timeout
                ) as response:
                    delivery.statuses.append(response.status)
                    delivery.body = await response.text(errors="replace")
                    if response.status != 200:
                        delivery.shown_error = True
                        return delivery
            except (TimeoutError, aiohttp.ClientError) as error:
                delivery.statuses.append(type(error).__name__)
                continue
            self._check_reply(delivery, query, openid)
            return delivery
        delivery.shown_error = True
        return delivery

    def _check_reply(self, delivery: Delivery, query: dict[str, str], openid: str) -> None:
        body = delivery.body.strip()
        if body in ("", "success"):
            return
        try:
            document = parse_xml(body)
            if query.get("encrypt_type") == "aes":
                document = self._open_reply(document)
        except (PushRejected, ValueError, KeyError):
            delivery.shown_error = True
            return
        if document.get("ToUserName") != openid or not document.get("MsgType"):
            delivery.shown_error = True
            return
        delivery.reply = document

    def _open_reply(self, envelope: dict[str, Any]) -> dict[str, Any]:
        assert self.crypto is not None
        cipher = envelope["Encrypt"]
        expected = sign(self.token, envelope["TimeStamp"], envelope["Nonce"], cipher)
        if expected != envelope.get("MsgSignature"):
            raise ValueError("reply signature does not match")
        xml = self.crypto.decrypt_message(
            {"Encrypt": cipher}, expected, envelope["TimeStamp"], envelope["Nonce"]
        )
        return parse_xml(xml)

    def _tell_api(self, xml: str, openid: str) -> None:
        # The fake API tracks customer-service windows from what users do, like WeChat.
        if self.api is None:
            return
        try:
            fields = parse_xml(xml)
        except PushRejected:
            return
        if fields.get("MsgType") != "event":
            self.api.user_wrote(openid)
            return
        event = str(fields.get("Event", "")).lower()
        if event == "subscribe":
            self.api.follow(openid)
            self.api.user_clicked(openid)
        elif event == "unsubscribe":
            self.api.unfollow(openid)
        elif event in {"click", "scan", "view"}:
            self.api.user_clicked(openid)
