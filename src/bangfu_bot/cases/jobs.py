"""Scheduled work of the case procedure."""

from __future__ import annotations

from functools import partial

from bangfu_bot.cases.procedure import Rules, close_due_notices
from bangfu_bot.scheduler import Job, JobContext


async def close_notices(context: JobContext, *, rules: Rules) -> None:
    """Close public notices whose period ended with no open objection (restart-safe)."""
    async with context.engine.begin() as conn:
        await close_due_notices(conn, now=context.now(), rules=rules)


def jobs(rules: Rules) -> list[Job]:
    """The procedure's jobs, run under these rules."""
    return [
        Job(id="cases.close_due_notices", every_minutes=10, run=partial(close_notices, rules=rules))
    ]
