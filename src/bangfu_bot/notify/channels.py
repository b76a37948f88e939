"""Which way a message can reach a person now, within WeChat's rules (WECHAT.md).

- customer-service message: inside the window the user opened (5 messages within 48 h of
  their last message; 3 within a minute of a click, follow or scan);
- template message: verified service accounts, with a configured template;
- otherwise a person who can reach them: their branch secretary, as a to-do.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.wechat.models import wechat_users

WROTE_WINDOW, WROTE_QUOTA = timedelta(hours=48), 5
CLICK_WINDOW, CLICK_QUOTA = timedelta(minutes=1), 3
TEMPLATE_FIELD_MAX = 20


async def window_allows(conn: AsyncConnection, openid: str, now: datetime) -> bool:
    """Whether a customer-service message may go now (window open, quota left)."""
    user = (await conn.execute(select(wechat_users).where(wechat_users.c.openid == openid))
            ).first()
    if user is None or not user.subscribed:
        return False
    windows = []
    if user.last_message_at and now - user.last_message_at < WROTE_WINDOW:
        windows.append((user.last_message_at, WROTE_QUOTA))
    if user.last_event_at and now - user.last_event_at < CLICK_WINDOW:
        windows.append((user.last_event_at, CLICK_QUOTA))
    for opened, quota in windows:
        used = (await conn.execute(
            select(func.count()).select_from(outbox_attempts.join(
                outbox, outbox.c.id == outbox_attempts.c.outbox_id))
            .where(outbox.c.openid == openid, outbox_attempts.c.channel == "custom",
                   outbox_attempts.c.errcode == 0, outbox_attempts.c.at >= opened))
        ).scalar_one()
        if used < quota:
            return True
    return False


def shorten(text: str, limit: int = TEMPLATE_FIELD_MAX) -> str:
    """Fit a template field (≤ 20 characters, no line breaks) on purpose, ending with …,
    rather than letting the platform refuse it (47003)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    for mark in "。，；！？、 ":
        at = cut.rfind(mark)
        if at >= limit // 2:
            cut = cut[:at]
            break
    return cut + "…"


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When quiet hours are on (outside start–end local time), the instant they end."""
    local = now.astimezone(tz)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz)
