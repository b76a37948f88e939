"""The scheduler: APScheduler's AsyncIOScheduler running the jobs each domain declares.

Every job is idempotent and computes what is due from the database, so running it late,
twice, or after a day of downtime only catches up. Jobs run once at start-up, then at
their interval. (Choosing one scheduler among several processes is issue 5.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A domain's scheduled job, with a stable id."""

    id: str
    every_minutes: float
    run: Callable[[Any], Awaitable[None]]


def all_jobs() -> list[Job]:
    """Every domain's jobs."""
    from bangfu_bot.cases.jobs import JOBS as case_jobs
    from bangfu_bot.ledger.jobs import JOBS as ledger_jobs

    return [*case_jobs, *ledger_jobs]


async def run_all(services: Any) -> None:
    """Run every job once now (start-up, tests, the sandbox's clock control)."""
    for job in all_jobs():
        await _safely(job, services)


async def _safely(job: Job, services: Any) -> None:
    try:
        await job.run(services)
    except Exception:  # noqa: BLE001 - one failing job must not stop the others
        log.exception("job %s failed", job.id)


def start_scheduler(services: Any) -> AsyncIOScheduler:
    """Start the interval jobs (they also run once right away)."""
    scheduler = AsyncIOScheduler(timezone=services.settings.timezone)
    for job in all_jobs():
        scheduler.add_job(_safely, "interval", minutes=job.every_minutes, args=[job, services],
                          id=job.id, replace_existing=True, coalesce=True, max_instances=1)
    scheduler.start()
    return scheduler
