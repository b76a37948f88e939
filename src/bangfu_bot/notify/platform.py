"""The port to the messaging platform: what notify and the domains ask of it, and how its
failures read. `wechat.client.WeChatClient` implements it (and `wechat.fake_api` fakes the
platform behind it); nothing below the edges imports `wechat`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

NETWORK_ERRCODE = -2
"""Our own code for "no usable answer": timeout, connection error, HTTP 5xx, garbage body."""

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
UNDELIVERABLE_ERRCODES = frozenset({43004, 43101, 45015, 45047})
RETRY_ERRCODES = frozenset({-1, NETWORK_ERRCODE, 45009})

TAGGING_BATCH = 50
"""At most this many followers per tagging call."""


class ErrorKind(StrEnum):
    """What a caller should do about a failed call."""

    UNDELIVERABLE = "undeliverable"  # this user cannot be reached now; do not retry
    RETRY = "retry"  # transient; retry later with backoff
    FATAL = "fatal"  # configuration or request bug; retrying will not help


def classify(errcode: int) -> ErrorKind:
    """Map a platform errcode (or -2 for network failures) to what the caller should do."""
    if errcode in UNDELIVERABLE_ERRCODES:
        return ErrorKind.UNDELIVERABLE
    if errcode in RETRY_ERRCODES:
        return ErrorKind.RETRY
    return ErrorKind.FATAL


class WeChatAPIError(Exception):
    """A call answered with errcode != 0, or gave no usable answer (errcode -2)."""

    def __init__(self, *, errcode: int, errmsg: str, endpoint: str) -> None:
        super().__init__(f"{endpoint}: {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint
        self.kind = classify(errcode)


class Platform(Protocol):
    """The calls notify and broadcasts make; each raises WeChatAPIError on failure."""

    async def send_text(self, *, openid: str, content: str) -> dict[str, Any]: ...

    async def send_template(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]: ...

    async def mass_send_by_tag(
        self, *, tag_id: int, content: str, clientmsgid: str
    ) -> dict[str, Any]: ...

    async def mass_send_to_openids(
        self, *, openids: list[str], content: str, clientmsgid: str
    ) -> dict[str, Any]: ...

    async def create_tag(self, *, name: str) -> int: ...

    async def get_tags(self) -> list[dict[str, Any]]: ...

    async def delete_tag(self, *, tag_id: int) -> None: ...

    async def tag_batch(self, *, tag_id: int, openids: list[str], untag: bool = False) -> None: ...

    async def tag_members(self, *, tag_id: int) -> list[str]: ...
