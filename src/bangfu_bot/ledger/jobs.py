"""Scheduled work of the ledger."""

from __future__ import annotations

from typing import Any

from bangfu_bot.ledger.service import open_reviews
from bangfu_bot.scheduler import Job


async def yearly_review(services: Any) -> None:
    """From the review date on, hand out review to-dos (each entry once)."""
    settings = services.settings
    async with services.engine.begin() as conn:
        await open_reviews(conn, now=services.clock.now(), tz=settings.tz,
                           month_day=settings.review_opens)


JOBS = [Job(id="ledger.open_yearly_review", every_minutes=60, run=yearly_review)]
