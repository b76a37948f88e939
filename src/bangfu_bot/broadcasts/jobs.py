"""Scheduled work of broadcasts: keeping our WeChat tags in step with the roster."""

from __future__ import annotations

from functools import partial

from bangfu_bot.broadcasts import tags
from bangfu_bot.notify.platform import Platform
from bangfu_bot.scheduler import Job, JobContext


async def sync_tags(context: JobContext, *, client: Platform) -> None:
    """Tag and untag the difference between the roster and the platform (idempotent: a
    second run in step changes nothing, and a run cut short is finished by the next)."""
    await tags.sync(context.engine, client)


def jobs(client: Platform) -> list[Job]:
    """The broadcasts' jobs, calling the platform through `client`."""
    # Not at start: a fresh deployment's first sync makes thousands of tagging calls, and a
    # notice brings its own audience's tag in step before it goes anyway.
    return [
        Job(
            id="broadcasts.tags",
            every_minutes=60,
            run=partial(sync_tags, client=client),
            at_start=False,
        )
    ]
