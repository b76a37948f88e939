"""The access token kept in the database, so every process of one account agrees on it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.dbutil import upsert
from bangfu_bot.wechat.client import StoredToken
from bangfu_bot.wechat.models import wechat_tokens


class DatabaseTokenStore:
    """TokenStore on the wechat_tokens table."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def load(self, appid: str) -> StoredToken | None:
        """The stored token of an account, if any."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(wechat_tokens.c.token, wechat_tokens.c.expires_at).where(
                        wechat_tokens.c.appid == appid
                    )
                )
            ).first()
        return StoredToken(token=row.token, expires_at=row.expires_at) if row else None

    async def save(self, appid: str, token: StoredToken) -> None:
        """Store (or replace) an account's token."""
        async with self._engine.begin() as conn:
            statement = upsert(
                conn, wechat_tokens, ["appid"], ["token", "expires_at", "updated_at"]
            )
            await conn.execute(
                statement.values(
                    appid=appid,
                    token=token.token,
                    expires_at=token.expires_at,
                    updated_at=self._clock.now(),
                )
            )
