"""The scheduler: APScheduler's AsyncIOScheduler running the jobs its caller hands it.

Every job is idempotent and computes what is due from the database, so running it late,
twice, or after a day of downtime only catches up. Jobs run once at start-up (unless they
say otherwise), then at their interval. (Choosing one scheduler among several processes is issue 5.)

This module is a base module: it imports no domain package. Each domain declares its jobs in
its `jobs.py`; the edge that starts the scheduler (bangfu_bot.app) assembles the list, binds
to each job what only its domain knows (its rules, the WeChat client) and builds the
`JobContext` every job receives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.db import unavailable
from bangfu_bot.dbutil import upsert
from bangfu_bot.scheduler_models import job_runs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What every job runs with: the store, the clock and the county's time zone. Built
    once by the edge; what a single domain needs is bound to its jobs by the edge."""

    engine: AsyncEngine
    clock: Clock
    tz: ZoneInfo

    def now(self) -> datetime:
        """The current instant (timezone-aware UTC), read from the clock at each call."""
        return self.clock.now()


@dataclass(frozen=True)
class Job:
    """A domain's scheduled job, with a stable id (its name in every log line)."""

    id: str
    every_minutes: float
    run: Callable[[JobContext], Awaitable[None]]
    # Run in the start-up catch-up too. Work that nothing waits for (bringing WeChat tags
    # in step) first runs an interval after start, so a restart does not do it at once.
    at_start: bool = True


async def run_all(jobs: Sequence[Job], context: JobContext, *, starting: bool = False) -> None:
    """Run every job once now, in order (tests, the sandbox's clock control); `starting`:
    the start-up catch-up, which leaves out the jobs that are not `at_start`."""
    for job in jobs:
        if job.at_start or not starting:
            await _safely(job, context)


async def _safely(job: Job, context: JobContext) -> None:
    """Run one job, logging under its id, and record the run in job_runs; never raises."""
    started = context.now()
    try:
        await job.run(context)
    except Exception as error:  # one failing job must not stop the others
        cause = unavailable(error)
        if cause is not None:
            # An outage, not a bug: one line, no traceback; the job catches up next time.
            log.warning("job %s waits for the database (%s)", job.id, cause)
            return
        log.exception("job %s failed", job.id)
        await _record(context.engine, job.id, last_started_at=started)
        return
    await _record(context.engine, job.id, last_started_at=started, last_success_at=started)


async def _record(engine: AsyncEngine, job_id: str, **values: Any) -> None:
    try:
        async with engine.begin() as conn:
            statement = upsert(conn, job_runs, ["job_id"], list(values))
            await conn.execute(statement.values(job_id=job_id, **values))
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not fail the job
        log.warning("could not record run of %s: %s", job_id, type(exc).__name__)


def start_scheduler(jobs: Sequence[Job], context: JobContext) -> AsyncIOScheduler:
    """Start the interval jobs (the caller runs the start-up catch-up with `run_all`).
    APScheduler's own log lines name each job by its id."""
    scheduler = AsyncIOScheduler(timezone=context.tz)
    for job in jobs:
        scheduler.add_job(
            _safely,
            "interval",
            minutes=job.every_minutes,
            args=[job, context],
            id=job.id,
            name=job.id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
    scheduler.start()
    return scheduler
