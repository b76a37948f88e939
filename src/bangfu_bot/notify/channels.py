"""Which way a message can reach a person now, within WeChat's rules (WECHAT.md).

- customer-service message: inside the window the user opened (5 messages within 48 h of
  their last message; 3 within a minute of a click, follow or scan);
- template message: verified service accounts, with a configured template;
- otherwise a person who can reach them: their branch secretary, as a to-do.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.notify.models import outbox, outbox_attempts, wechat_users

WROTE_WINDOW, WROTE_QUOTA = timedelta(hours=48), 5
CLICK_WINDOW, CLICK_QUOTA = timedelta(minutes=1), 3
TEMPLATE_FIELD_MAX = 20


async def window_room(
    conn: AsyncConnection, openids: Collection[str], now: datetime
) -> dict[str, int]:
    """How many customer-service messages each user may still get now, in one query for a
    whole batch; users missing from the answer have no open window (or do not follow)."""
    users = wechat_users.c
    rows = await conn.execute(
        select(
            users.openid,
            users.last_message_at,
            users.last_event_at,
            _custom_sent_since(users.last_message_at).label("wrote_used"),
            _custom_sent_since(users.last_event_at).label("click_used"),
        ).where(
            users.openid.in_(list(openids)),
            users.subscribed.is_(True),
            or_(
                users.last_message_at > now - WROTE_WINDOW, users.last_event_at > now - CLICK_WINDOW
            ),
        )
    )
    room: dict[str, int] = {}
    for user in rows:
        left = 0
        if user.last_message_at and now - user.last_message_at < WROTE_WINDOW:
            left = max(left, WROTE_QUOTA - user.wrote_used)
        if user.last_event_at and now - user.last_event_at < CLICK_WINDOW:
            left = max(left, CLICK_QUOTA - user.click_used)
        if left > 0:
            room[user.openid] = left
    return room


def _custom_sent_since(opened: Any) -> Any:
    # Counted from our own accepted sends since the window opened (see the README), per user
    # of the enclosing query.
    return (
        select(func.count())
        .select_from(outbox_attempts.join(outbox, outbox.c.id == outbox_attempts.c.outbox_id))
        .where(
            outbox.c.openid == wechat_users.c.openid,
            outbox_attempts.c.channel == "custom",
            outbox_attempts.c.errcode == 0,
            outbox_attempts.c.at >= opened,
        )
        .scalar_subquery()
    )


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
    """When quiet hours are on (outside the awake window start–end, local time), the instant
    they end: the next `start`. Either window may cross midnight: awake 08:00–21:00 is quiet
    from 21:00 to 08:00, awake 14:00–12:00 is quiet from 12:00 to 14:00 (start == end would
    leave no quiet hours; the settings refuse it)."""
    local = now.astimezone(tz)
    at = local.time()
    awake = start <= at < end if start < end else (at >= start or at < end)
    if awake:
        return None
    day = local.date() if at < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz)
