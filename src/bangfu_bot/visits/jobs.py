"""Scheduled work of the visits."""

from __future__ import annotations

from typing import Any

from bangfu_bot.scheduler import Job
from bangfu_bot.visits.service import send_due


async def remind(services: Any) -> None:
    """Reminders to assignees and the township officers' lists, each once (restart-safe)."""
    async with services.engine.begin() as conn:
        await send_due(conn, now=services.clock.now(), tz=services.settings.tz)


JOBS = [Job(id="visits.reminders", every_minutes=60, run=remind)]
