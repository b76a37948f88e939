"""Refusing a signed URL reused for another body.

A plain-mode signature covers the token, timestamp and nonce, not the body: a URL captured
within the clock-skew window (from a log, a proxy) could carry any forged push. WeChat's own
retries resend the same URL with the same body. So a signature seen before is accepted only
with the body it first came with; another body is refused (403). Safe mode needs none of
this: its msg_signature covers the encrypted body.

Each process remembers the window's signatures in memory; with a shared database that is
not the sandbox's, they are also written to `push_signatures`, so a URL captured from one
process cannot be replayed against another.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.dbutil import insert_ignore
from bangfu_bot.wechat.crypto import PushRejected
from bangfu_bot.wechat.models import push_signatures

log = logging.getLogger(__name__)


class ReplayGuard:
    """Signatures seen within the skew window, and the bodies they came with."""

    def __init__(
        self,
        *,
        window_s: int,
        clock: Clock,
        engine: AsyncEngine | None = None,
        purge_every: int = 500,
    ) -> None:
        self._window = timedelta(seconds=max(window_s, 60))
        self._clock = clock
        self._engine = engine
        self._seen: dict[str, str] = {}
        self._order: deque[tuple[float, str]] = deque()
        self._purge_every = purge_every
        self._checked = 0

    async def check(self, signature: str, body: bytes) -> None:
        """Refuse (PushRejected 403) a signature seen before with another body."""
        digest = hashlib.sha256(body).hexdigest()
        now = self._clock.now().timestamp()
        self._forget(now)
        known = self._seen.get(signature)
        if known is None and self._engine is not None:
            try:
                known = await self._shared(signature, digest)
            except Exception as error:  # noqa: BLE001 - the database is away: memory only
                # The push itself is journaled and answered; refusing it for want of the
                # shared record would lose a member's message to guard against a forgery.
                log.debug("replay guard without the database: %s", type(error).__name__)
        if known is not None and known != digest:
            raise PushRejected(403, "signature already used for another body (replayed URL)")
        if signature not in self._seen:
            self._seen[signature] = digest
            self._order.append((now, signature))

    def _forget(self, now: float) -> None:
        horizon = now - self._window.total_seconds()
        while self._order and self._order[0][0] < horizon:
            _, signature = self._order.popleft()
            self._seen.pop(signature, None)

    async def _shared(self, signature: str, digest: str) -> str | None:
        """Record the signature for every process; the body another one saw first, if any."""
        assert self._engine is not None
        now = self._clock.now()
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                insert_ignore(conn, push_signatures, ["signature"]).values(
                    signature=signature, body_sha256=digest, seen_at=now
                )
            )
            first = None
            if inserted.rowcount == 0:
                first = (
                    await conn.execute(
                        select(push_signatures.c.body_sha256).where(
                            push_signatures.c.signature == signature
                        )
                    )
                ).scalar()
            self._checked += 1
            if self._checked % self._purge_every == 0:
                await conn.execute(
                    delete(push_signatures).where(
                        push_signatures.c.seen_at < now - 2 * self._window
                    )
                )
        return first
