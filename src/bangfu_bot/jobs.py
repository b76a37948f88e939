"""Every domain's scheduled jobs, assembled for the scheduler.

An edge module, like app.py which imports it: the scheduler (a base module) knows no domain,
and each domain's `jobs.py` declares its jobs with stable ids. Here each domain's jobs are
bound to what only that domain needs, read once from the settings: the procedure's rules,
the yearly review's date, the guarantor call's delay, the WeChat client.
"""

from __future__ import annotations

from bangfu_bot.broadcasts import jobs as broadcasts
from bangfu_bot.cases import jobs as cases
from bangfu_bot.cases.procedure import Rules
from bangfu_bot.ledger import jobs as ledger
from bangfu_bot.loans import jobs as loans
from bangfu_bot.notify.platform import Platform
from bangfu_bot.outcomes import jobs as outcomes
from bangfu_bot.reports import jobs as reports
from bangfu_bot.scheduler import Job
from bangfu_bot.settings import Settings
from bangfu_bot.visits import jobs as visits


def all_jobs(settings: Settings, client: Platform) -> list[Job]:
    """Every domain's jobs, in the order the scheduler runs them."""
    procedure = Rules.from_settings(settings)
    return [
        *cases.jobs(procedure),
        *ledger.jobs(review_opens=settings.review_opens),
        *loans.jobs(call_days=settings.guarantor_call_days),
        *visits.jobs(),
        *outcomes.jobs(),
        *reports.jobs(),
        *broadcasts.jobs(client),
    ]
