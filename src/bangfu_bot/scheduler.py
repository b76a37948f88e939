"""The scheduler: APScheduler's AsyncIOScheduler running the jobs each domain declares.

Every job is idempotent and computes what is due from the database, so running it late,
twice, or after a day of downtime only catches up. Jobs run once at start-up (unless they
say otherwise), then at their interval. (Choosing one scheduler among several processes is issue 5.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bangfu_bot.db import unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A domain's scheduled job, with a stable id."""

    id: str
    every_minutes: float
    run: Callable[[Any], Awaitable[None]]
    # Run in the start-up catch-up too. Work that nothing waits for (bringing WeChat tags
    # in step) first runs an interval after start, so a restart does not do it at once.
    at_start: bool = True


def all_jobs() -> list[Job]:
    """Every domain's jobs."""
    from bangfu_bot.broadcasts.jobs import JOBS as broadcast_jobs
    from bangfu_bot.cases.jobs import JOBS as case_jobs
    from bangfu_bot.ledger.jobs import JOBS as ledger_jobs
    from bangfu_bot.loans.jobs import JOBS as loan_jobs
    from bangfu_bot.visits.jobs import JOBS as visit_jobs

    return [*case_jobs, *ledger_jobs, *loan_jobs, *visit_jobs, *broadcast_jobs]


async def run_all(services: Any, *, starting: bool = False) -> None:
    """Run every job once now (tests, the sandbox's clock control); `starting`: the
    start-up catch-up, which leaves out the jobs that are not `at_start`."""
    for job in all_jobs():
        if job.at_start or not starting:
            await _safely(job, services)


async def _safely(job: Job, services: Any) -> None:
    started = services.clock.now()
    try:
        await job.run(services)
    except Exception as error:  # noqa: BLE001 - one failing job must not stop the others
        cause = unavailable(error)
        if cause is not None:
            # An outage, not a bug: one line, no traceback; the job catches up next time.
            log.warning("job %s waits for the database (%s)", job.id, cause)
            return
        log.exception("job %s failed", job.id)
        await _record(services, job.id, last_started_at=started)
        return
    await _record(services, job.id, last_started_at=started, last_success_at=started)


async def _record(services: Any, job_id: str, **values: Any) -> None:
    from bangfu_bot.dbutil import upsert
    from bangfu_bot.scheduler_models import job_runs

    try:
        async with services.engine.begin() as conn:
            statement = upsert(conn, job_runs, ["job_id"], list(values))
            await conn.execute(statement.values(job_id=job_id, **values))
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not fail the job
        log.warning("could not record run of %s: %s", job_id, type(exc).__name__)


def start_scheduler(services: Any) -> AsyncIOScheduler:
    """Start the interval jobs (they also run once right away)."""
    scheduler = AsyncIOScheduler(timezone=services.settings.timezone)
    for job in all_jobs():
        scheduler.add_job(_safely, "interval", minutes=job.every_minutes, args=[job, services],
                          id=job.id, replace_existing=True, coalesce=True, max_instances=1)
    scheduler.start()
    return scheduler
