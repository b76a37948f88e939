"""The scheduler runs the jobs its caller hands it: each under its id in every log line, a
failure or an outage never stops the others, and it knows no domain."""

from __future__ import annotations

import ast
import dataclasses
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import bangfu_bot.scheduler
from bangfu_bot.clock import FrozenClock
from bangfu_bot.scheduler import Job, JobContext, run_all, start_scheduler
from bangfu_bot.scheduler_models import job_runs

DOMAINS = {
    "authority",
    "broadcasts",
    "cases",
    "conversation",
    "demo",
    "fund",
    "ledger",
    "loans",
    "members",
    "notify",
    "sandbox",
    "todos",
    "visits",
    "wechat",
    "app",
    "cli",
    "jobs",
    "bot",
}


@pytest.fixture
def context(engine: Any, clock: FrozenClock) -> JobContext:
    return JobContext(engine=engine, clock=clock, tz=ZoneInfo("Asia/Shanghai"))


def recorder(ran: list[str], job_id: str) -> Job:
    async def run(context: JobContext) -> None:
        ran.append(job_id)

    return Job(id=job_id, every_minutes=60, run=run)


async def runs(context: JobContext) -> dict[str, Any]:
    async with context.engine.connect() as conn:
        return {row.job_id: row for row in (await conn.execute(select(job_runs))).all()}


async def test_every_job_runs_in_order_with_the_context_and_its_run_is_recorded(
    context: JobContext,
) -> None:
    seen: list[tuple[str, JobContext]] = []

    def job(job_id: str) -> Job:
        async def run(given: JobContext) -> None:
            seen.append((job_id, given))

        return Job(id=job_id, every_minutes=10, run=run)

    await run_all([job("a.first"), job("b.second")], context)
    assert seen == [("a.first", context), ("b.second", context)]
    recorded = await runs(context)
    assert recorded["a.first"].last_success_at == context.now()
    assert recorded["b.second"].last_started_at == context.now()


async def test_the_start_up_catch_up_leaves_out_jobs_not_at_start(context: JobContext) -> None:
    ran: list[str] = []
    later = dataclasses.replace(recorder(ran, "later.job"), at_start=False)
    jobs = [recorder(ran, "now.first"), later, recorder(ran, "now.second")]
    await run_all(jobs, context, starting=True)
    assert ran == ["now.first", "now.second"]
    assert "later.job" not in await runs(context)
    await run_all(jobs, context)  # a run by hand (the sandbox's clock) runs them all
    assert ran == ["now.first", "now.second", "now.first", "later.job", "now.second"]


async def test_a_failing_job_is_logged_by_its_id_and_the_others_still_run(
    context: JobContext, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def broken(context: JobContext) -> None:
        raise ValueError("a bug")

    caplog.set_level(logging.INFO, logger="bangfu_bot.scheduler")
    await run_all(
        [Job(id="cases.broken", every_minutes=10, run=broken), recorder(ran, "ledger.fine")],
        context,
    )
    assert ran == ["ledger.fine"]
    [line] = [r for r in caplog.records if r.name == "bangfu_bot.scheduler"]
    assert line.levelno == logging.ERROR and line.getMessage() == "job cases.broken failed"
    assert line.exc_info is not None and "_safely" not in line.getMessage()
    recorded = await runs(context)
    assert recorded["cases.broken"].last_started_at == context.now()
    assert recorded["cases.broken"].last_success_at is None


async def test_an_outage_is_one_line_naming_the_job_without_a_traceback(
    context: JobContext, caplog: pytest.LogCaptureFixture
) -> None:
    async def away(context: JobContext) -> None:
        raise ConnectionRefusedError("the database is away")

    caplog.set_level(logging.INFO, logger="bangfu_bot.scheduler")
    await run_all([Job(id="loans.reminders", every_minutes=60, run=away)], context)
    [line] = [r for r in caplog.records if r.name == "bangfu_bot.scheduler"]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert (
        line.getMessage() == "job loans.reminders waits for the database (ConnectionRefusedError)"
    )
    assert await runs(context) == {}  # nothing recorded: the job catches up next time


async def test_apscheduler_names_each_job_by_its_id(context: JobContext) -> None:
    jobs = [
        recorder([], "cases.close_due_notices"),
        dataclasses.replace(recorder([], "broadcasts.tags"), at_start=False),
    ]
    scheduler = start_scheduler(jobs, context)
    try:
        planned = {job.id: job for job in scheduler.get_jobs()}
        assert list(planned) == ["cases.close_due_notices", "broadcasts.tags"]
        for job_id, job in planned.items():
            assert job.name == job_id
            # What APScheduler's "Running job ..." and "... executed successfully" lines show.
            assert str(job).startswith(f"{job_id} (trigger: interval")
            assert job.args[1] is context
    finally:
        scheduler.shutdown(wait=False)


def test_the_context_is_frozen(context: JobContext) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.tz = ZoneInfo("UTC")  # type: ignore[misc]


def _imported_modules(path: Path) -> set[str]:
    """Every module scheduler.py imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in scheduler.py"
            module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_the_scheduler_imports_no_domain_package() -> None:
    assert bangfu_bot.scheduler.__file__ is not None
    imported = _imported_modules(Path(bangfu_bot.scheduler.__file__))
    ours = {
        name.split(".")[1]
        for name in imported
        if name.startswith("bangfu_bot.") and name.count(".") >= 1
    }
    assert ours, "the check found none of our imports: is it reading the right file?"
    assert not ours & DOMAINS, sorted(ours & DOMAINS)


def test_importing_the_scheduler_loads_no_domain_package() -> None:
    script = (
        "import sys, bangfu_bot.scheduler\n"
        "print(' '.join(name for name in sys.modules if name.startswith('bangfu_bot')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "bangfu_bot.scheduler" in loaded
    assert not {name.split(".")[1] for name in loaded if name.count(".")} & DOMAINS
