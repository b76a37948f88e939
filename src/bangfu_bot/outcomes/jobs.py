"""Scheduled work of the outcomes: loan follow-up to-dos."""

from __future__ import annotations

from bangfu_bot.outcomes.service import open_follow_ups_batched
from bangfu_bot.scheduler import Job, JobContext


async def follow_ups(context: JobContext) -> None:
    """Hand out a follow-up to-do for each loan repaid, written off or past its term."""
    now = context.now()
    await open_follow_ups_batched(context.engine, today=now.astimezone(context.tz).date(), now=now)


def jobs() -> list[Job]:
    """The outcomes' jobs."""
    return [Job(id="outcomes.loan_follow_ups", every_minutes=60, run=follow_ups)]
