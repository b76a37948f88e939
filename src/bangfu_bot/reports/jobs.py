"""Scheduled work of the read side: uploaded rosters' files cleared after their keeping."""

from __future__ import annotations

import logging

from bangfu_bot.reports.roster import clear_old_uploads
from bangfu_bot.scheduler import Job, JobContext

log = logging.getLogger(__name__)


async def roster_files(context: JobContext) -> None:
    """Clear the bytes of roster files uploaded more than FILES_KEPT ago."""
    async with context.engine.begin() as conn:
        cleared = await clear_old_uploads(conn, now=context.now())
    if cleared:
        log.info("cleared the files of %d roster uploads past their keeping", cleared)


def jobs() -> list[Job]:
    """The read side's jobs."""
    return [Job(id="reports.clear_roster_files", every_minutes=24 * 60, run=roster_files)]
