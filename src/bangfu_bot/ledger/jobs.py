"""Scheduled work of the ledger."""

from __future__ import annotations

from functools import partial

from bangfu_bot.ledger.service import open_reviews
from bangfu_bot.scheduler import Job, JobContext


async def yearly_review(context: JobContext, *, review_opens: str) -> None:
    """From the review date on (`review_opens`, MM-DD), hand out review to-dos (each entry
    once)."""
    async with context.engine.begin() as conn:
        await open_reviews(conn, now=context.now(), tz=context.tz, month_day=review_opens)


def jobs(review_opens: str) -> list[Job]:
    """The ledger's jobs; the yearly review opens on `review_opens` (MM-DD)."""
    return [
        Job(
            id="ledger.open_yearly_review",
            every_minutes=60,
            run=partial(yearly_review, review_opens=review_opens),
        )
    ]
