"""Signature checks and safe-mode encryption, around wechatpy's WeChatCrypto.

Adds what wechatpy lacks: the previous EncodingAESKey during a rotation, a clock-skew
window, and one exception type whose reason is safe to log (never the body).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from xml.etree import ElementTree

from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bangfu_bot.clock import Clock


class PushRejected(Exception):
    """A push that must not be handled; `status` is the HTTP answer, `reason` goes to the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted parts joined."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Opened:
    """A verified push: its XML text and the crypto to answer with (None = plain)."""

    xml: str
    crypto: WeChatCrypto | None
    fields: dict[str, Any]  # the parsed <xml> of the (decrypted) push
    mode: str = "safe"  # plain, compatible or safe: how it came


class PushVerifier:
    """Checks every push before anything else looks at it."""

    def __init__(
        self,
        *,
        token: str,
        appid: str,
        aes_key: str,
        aes_key_previous: str,
        max_clock_skew_s: int,
        clock: Clock,
        modes: frozenset[str] = frozenset({"plain", "compatible", "safe"}),
    ) -> None:
        self._modes = modes
        self._token = token
        self._clock = clock
        self._max_skew = max_clock_skew_s
        keys = [k for k in (aes_key, aes_key_previous) if k]
        self._cryptos = [WeChatCrypto(token, key, appid) for key in keys]

    def check_query(self, query: Mapping[str, str]) -> None:
        """Check signature, timestamp and nonce of a GET or POST; raise PushRejected."""
        signature = query.get("signature", "")
        timestamp = query.get("timestamp", "")
        nonce = query.get("nonce", "")
        if not (signature and timestamp and nonce):
            raise PushRejected(403, "missing signature, timestamp or nonce")
        if not hmac.compare_digest(sign(self._token, timestamp, nonce), signature):
            raise PushRejected(403, "invalid signature")
        self._check_skew(timestamp)

    def _check_skew(self, timestamp: str) -> None:
        if not self._max_skew:
            return
        try:
            sent = int(timestamp)
        except ValueError:
            raise PushRejected(403, "timestamp is not a number") from None
        skew = abs(self._clock.now().timestamp() - sent)
        if skew > self._max_skew:
            raise PushRejected(403, f"timestamp off by {int(skew)} s (limit {self._max_skew})")

    def open(self, query: Mapping[str, str], body: bytes) -> Opened:
        """Decode, parse the envelope and decrypt when `encrypt_type=aes`."""
        text = _decode(body)
        envelope = parse_xml(text)
        encrypted_type = query.get("encrypt_type", "raw").lower() == "aes"
        # Compatible mode carries the plain fields beside <Encrypt>; safe mode only the
        # envelope. A mode not configured is refused, whatever the body holds.
        mode = ("compatible" if "MsgType" in envelope else "safe") if encrypted_type else "plain"
        if mode not in self._modes:
            raise PushRejected(403, f"{mode} mode is not accepted (BANGFU_WECHAT_MODES)")
        if not encrypted_type:
            return Opened(text, None, envelope, "plain")
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise PushRejected(400, "encrypt_type=aes but no <Encrypt> element")
        msg_signature = query.get("msg_signature", "")
        expected = sign(self._token, query["timestamp"], query["nonce"], encrypted)
        if not hmac.compare_digest(expected, msg_signature):
            raise PushRejected(403, "invalid msg_signature")
        opened = self._decrypt(encrypted)
        return Opened(opened.xml, opened.crypto, opened.fields, mode)

    def _decrypt(self, encrypted: str) -> Opened:
        if not self._cryptos:
            raise PushRejected(400, "encrypted push but no EncodingAESKey configured")
        reason = "cannot decrypt"
        # During a key rotation WeChat may still use the previous key: try both.
        for crypto in self._cryptos:
            try:
                xml = PrpCrypto(crypto.key).decrypt(encrypted, crypto.app_id)
            except Exception as exc:  # noqa: BLE001 - any failure means "not this key"
                reason = f"cannot decrypt ({type(exc).__name__})"
                continue
            return Opened(xml, crypto, parse_xml(xml), "safe")
        raise PushRejected(400, reason)


def seal(crypto: WeChatCrypto, reply_xml: str, clock: Clock) -> str:
    """Encrypt and sign a reply for a safe-mode push."""
    nonce = secrets.token_hex(8)
    timestamp = str(int(clock.now().timestamp()))
    return crypto.encrypt_message(reply_xml, nonce, timestamp)


def _decode(body: bytes) -> str:
    if not body.strip():
        raise PushRejected(400, "empty body")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PushRejected(400, "body is not UTF-8") from None


# What nearly every push is: <xml> holding flat elements, each CDATA or plain text. The
# CDATA pattern is "unrolled" (runs of non-`]`, then a `]` not starting `]]>`): a lazy `.*?`
# backtracks per character, and a safe-mode envelope carries hundreds of them. Characters a
# parser would change or refuse (CR, which it turns into LF; control characters) are left
# out of both forms, so such a document goes to the parser; so do U+FFFE and U+FFFF, found
# by `in` (in the class they would cost a range check per character). A body decoded from
# UTF-8 holds no surrogates.
_ODD = "\x00-\x08\x0b-\x1f"
_CDATA_BODY = rf"[^\]{_ODD}]*(?:\](?!\]>)[^\]{_ODD}]*)*"
_PLAIN_BODY = rf"[^<&{_ODD}]*"
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"  # an XML name, ASCII only (others go to the parser)
_FLAT_FIELD = re.compile(rf"<({_NAME})>(?:<!\[CDATA\[({_CDATA_BODY})\]\]>|({_PLAIN_BODY}))</\1>")
_FLAT_DOC = re.compile(
    rf"[ \t\n]*<xml>((?:[ \t\n]*<({_NAME})>(?:<!\[CDATA\[{_CDATA_BODY}\]\]>"
    rf"|{_PLAIN_BODY})</\2>)*)[ \t\n]*</xml>[ \t\n]*"
)


def parse_xml(text: str) -> dict[str, Any]:
    """Parse a WeChat XML document into its <xml> dict; refuse DTDs and entities."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise PushRejected(400, "XML with a DTD or entity declaration")
    flat = _parse_flat(text)
    return flat if flat is not None else parse_tree(text)


# No push of the platform nests deeper than four (SendPicsInfo → PicList → item → PicMd5Sum)
# or holds more than a few dozen elements; limits far above that, checked while parsing and
# before anything recurses, turn a hostile document into a 400 instead of a RecursionError.
MAX_DEPTH = 16
MAX_ELEMENTS = 1000


def parse_tree(text: str) -> dict[str, Any]:
    """parse_xml with ElementTree, for any shape (DTDs and entities refused by the caller),
    within MAX_DEPTH and MAX_ELEMENTS."""
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(events=("start", "end"))
    depth = elements = 0
    element: ElementTree.Element | None = None
    try:
        parser.feed(text)
        parser.close()
        events = cast(Iterator[tuple[str, Any]], parser.read_events())
        for event, node in events:
            if event == "end":
                depth -= 1
                element = node if isinstance(node, ElementTree.Element) else element
                continue
            depth += 1
            elements += 1
            if depth > MAX_DEPTH or elements > MAX_ELEMENTS:
                raise PushRejected(
                    400, f"XML deeper than {MAX_DEPTH} or over {MAX_ELEMENTS} elements"
                )
    except (ElementTree.ParseError, ValueError) as exc:
        raise PushRejected(400, f"unparseable XML ({type(exc).__name__})") from None
    if element is None:
        raise PushRejected(400, "XML has no <xml> root element")
    root = _value(element)
    if element.tag != "xml" or not isinstance(root, dict):
        raise PushRejected(400, "XML has no <xml> root element")
    return root


def _parse_flat(text: str) -> dict[str, Any] | None:
    """The common shape without building a tree: a quarter of the parser's cost a push.
    Anything else (nesting, attributes, entities, repeated or mixed elements) returns None
    and goes to ElementTree; tests/wechat/test_crypto.py checks both give the same."""
    document = _FLAT_DOC.fullmatch(text)
    if document is None or "\ufffe" in text or "\uffff" in text:
        return None
    fields: dict[str, Any] = {}
    for tag, cdata, plain in _FLAT_FIELD.findall(document.group(1)):
        if tag in fields or "]]>" in cdata or "]]>" in plain:
            return None  # a repeated element is a list; a split CDATA section is two
        fields[tag] = (cdata or plain).strip() or None
    return fields or None  # <xml></xml> is refused by the parser's path


def _value(element: ElementTree.Element) -> Any:
    """An element as xmltodict gives it (the shape wechatpy's messages read): stripped text
    or None for a leaf, a dict of children otherwise, a list for a repeated child. Built on
    ElementTree's C parser: xmltodict's pure-Python handler cost a tenth of a message."""
    text = (element.text or "").strip() or None
    if len(element) == 0 and not element.attrib:
        return text
    node: dict[str, Any] = {f"@{name}": value for name, value in element.attrib.items()}
    for child in element:
        value = _value(child)
        if child.tag not in node:
            node[child.tag] = value
        elif isinstance(node[child.tag], list):
            node[child.tag].append(value)
        else:
            node[child.tag] = [node[child.tag], value]
    if text is not None:
        node["#text"] = text
    return node


def instant(create_time: str, clock: Clock) -> datetime:
    """The platform's CreateTime as an aware datetime (now, when missing or garbage)."""
    try:
        return datetime.fromtimestamp(int(create_time), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return clock.now()
