"""The edge's assembly of every domain's jobs: today's order, stable ids, and each bound to
what its domain needs, read from the settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.jobs import all_jobs
from bangfu_bot.settings import Settings


def test_every_domain_job_in_order_with_what_it_needs(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(review_opens="11-15", guarantor_call_days="45", notice_days="5")
    client: Any = object()  # only bound, never called here
    jobs = all_jobs(settings, client)
    assert [(job.id, job.every_minutes, job.at_start) for job in jobs] == [
        ("cases.close_due_notices", 10, True),
        ("ledger.open_yearly_review", 60, True),
        ("loans.reminders", 60, True),
        ("visits.reminders", 60, True),
        ("outcomes.loan_follow_ups", 60, True),
        ("reports.clear_roster_files", 1440, True),
        ("broadcasts.tags", 60, False),
    ]
    bound = {job.id: job.run.keywords for job in jobs if isinstance(job.run, partial)}
    assert bound["cases.close_due_notices"]["rules"] == ProcedureRules.from_settings(settings)
    assert bound["cases.close_due_notices"]["rules"].notice_days == 5
    assert bound["ledger.open_yearly_review"] == {"review_opens": "11-15"}
    assert bound["loans.reminders"] == {"call_days": 45}
    assert bound["broadcasts.tags"] == {"client": client}


async def test_the_running_bot_runs_them_with_one_context(bot: Any) -> None:
    services = bot.services
    await services.caught_up.wait()
    assert [job.id for job in services.jobs] == [
        job.id for job in all_jobs(services.settings, services.client)
    ]
    context = services.job_context
    assert context.engine is services.engine and context.clock is services.clock
    assert context.tz == services.settings.tz
