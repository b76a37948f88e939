"""Scheduled work of broadcasts: keeping our WeChat tags in step with the roster."""

from __future__ import annotations

from typing import Any

from bangfu_bot.broadcasts import tags
from bangfu_bot.scheduler import Job


async def sync_tags(services: Any) -> None:
    """Tag and untag the difference between the roster and the platform (idempotent: a
    second run in step changes nothing, and a run cut short is finished by the next)."""
    await tags.sync(services.engine, services.client)


# Not at start: a fresh deployment's first sync makes thousands of tagging calls, and a
# notice brings its own audience's tag in step before it goes anyway.
JOBS = [Job(id="broadcasts.tags", every_minutes=60, run=sync_tags, at_start=False)]
