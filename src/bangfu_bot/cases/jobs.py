"""Scheduled work of the case procedure."""

from __future__ import annotations

from typing import Any

from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.cases.procedure import close_due_notices
from bangfu_bot.scheduler import Job


async def close_notices(services: Any) -> None:
    """Close public notices whose period ended with no open objection (restart-safe)."""
    async with services.engine.begin() as conn:
        await close_due_notices(conn, now=services.clock.now(),
                                rules=ProcedureRules.from_settings(services.settings))


JOBS = [Job(id="cases.close_due_notices", every_minutes=10, run=close_notices)]
