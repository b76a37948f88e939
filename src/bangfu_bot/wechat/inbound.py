"""A push, reduced to the plain values the rest of the bot works with (no wechatpy types)."""

from __future__ import annotations

from typing import Any

from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage

from bangfu_bot.clock import Clock
from bangfu_bot.conversation.bot import Inbound
from bangfu_bot.wechat.crypto import PushRejected, instant, parse_xml


def metric_kind(message: Inbound) -> str:
    """A short label for metrics: the message type or the event name when WeChat documents
    it (wechatpy's tables), else `other`, so that made-up types and events cannot add
    series to /metrics."""
    if message.is_event:
        return f"event:{message.event}" if message.event in EVENT_TYPES else "other"
    return message.msg_type if message.msg_type in MESSAGE_TYPES else "other"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def dedupe_key(fields: dict[str, Any]) -> str:
    """MsgId for messages; FromUserName+CreateTime+Event+EventKey for events (WECHAT.md)."""
    sender = _text(fields.get("FromUserName"))
    created = _text(fields.get("CreateTime"))
    msg_type = _text(fields.get("MsgType")).lower()
    if msg_type != "event":
        msg_id = _text(fields.get("MsgId"))
        if msg_id:
            return f"msg:{msg_id}"
        return f"msg:{sender}|{created}|{msg_type}"
    event = _text(fields.get("Event"))
    return f"evt:{sender}|{created}|{event}|{_text(fields.get('EventKey'))}"[:200]


def read_inbound(xml: str, clock: Clock, fields: dict[str, Any] | None = None) -> Inbound:
    """Build an Inbound from decrypted push XML (and its parsed fields, when the verifier
    has them already); raise PushRejected if it is not a push."""
    if fields is None:
        fields = parse_xml(xml)
    openid = _text(fields.get("FromUserName"))
    msg_type = _text(fields.get("MsgType")).lower()
    if not openid or not msg_type:
        raise PushRejected(400, "push without FromUserName or MsgType")
    try:
        message = wechatpy_message(fields)
    except Exception as exc:  # noqa: BLE001 - wechatpy raises on odd field values
        raise PushRejected(400, f"unparseable push ({type(exc).__name__})") from None
    known = not isinstance(message, UnknownMessage)
    event = _text(fields.get("Event")).lower() or None
    event_key = _text(fields.get("EventKey"))
    if event == "subscribe" and event_key.startswith("qrscene_"):
        event_key = event_key.removeprefix("qrscene_")
    content = _text(fields.get("Content")) or _text(fields.get("Recognition"))
    return Inbound(
        dedupe_key=dedupe_key(fields),
        openid=openid[:64],
        account=_text(fields.get("ToUserName")),
        msg_type=msg_type[:32],
        event=event[:64] if event else None,
        event_key=event_key,
        content=content,
        media_id=_text(fields.get("MediaId")),
        created_at=instant(_text(fields.get("CreateTime")), clock),
        xml=xml,
        known=known,
        fields=fields,
    )


def wechatpy_message(fields: dict[str, Any]) -> Any:
    """wechatpy's message or event object for parsed push fields: what `parse_message` does,
    without parsing the XML a second time (parsing is a tenth of a message's CPU)."""
    message = dict(fields)
    message_type = str(message["MsgType"]).lower()
    if message_type != "event" and not message_type.startswith("device_"):
        return MESSAGE_TYPES.get(message_type, UnknownMessage)(message)
    event_type = str(message["Event"]).lower() if "Event" in message else None
    if event_type is None and message_type.startswith("device_"):
        event_type = message_type
    elif message_type.startswith("device_"):
        event_type = f"device_{event_type}"
    event_key = message.get("EventKey")
    if event_type == "subscribe" and isinstance(event_key, str) and event_key:
        if event_key.startswith(("scanbarcode|", "scanimage|")):
            event_type = message["Event"] = "subscribe_scan_product"
        elif event_key.startswith("qrscene_"):
            event_type = message["Event"] = "subscribe_scan"
            message["EventKey"] = event_key.removeprefix("qrscene_")
    return EVENT_TYPES.get(event_type, UnknownMessage)(message)
