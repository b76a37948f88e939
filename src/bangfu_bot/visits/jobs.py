"""Scheduled work of the visits."""

from __future__ import annotations

from bangfu_bot.scheduler import Job, JobContext
from bangfu_bot.visits.service import send_due


async def remind(context: JobContext) -> None:
    """Reminders to assignees and the township officers' lists, each once (restart-safe)."""
    async with context.engine.begin() as conn:
        await send_due(conn, now=context.now(), tz=context.tz)


def jobs() -> list[Job]:
    """The visits' jobs."""
    return [Job(id="visits.reminders", every_minutes=60, run=remind)]
