"""What the running application holds, and the key it is kept under on the aiohttp app.

Below `app` (which fills it in) so that the sandbox page and the demo, which `app` mounts or
runs, can reach the running services without importing the app factory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.changes import Changes
from bangfu_bot.clock import Clock
from bangfu_bot.conversation.bot import Bot
from bangfu_bot.metrics import Metrics
from bangfu_bot.notify.outbox import Dispatcher
from bangfu_bot.scheduler import Job, JobContext, run_all
from bangfu_bot.settings import Settings
from bangfu_bot.wechat.client import WeChatClient
from bangfu_bot.wechat.fake_api import FakeWeChatAPI
from bangfu_bot.wechat.inbox import Inbox
from bangfu_bot.wechat.spool import Spool


@dataclass
class Services:
    """What the running application holds; filled in by the cleanup contexts."""

    settings: Settings
    clock: Clock
    bot: Bot
    metrics: Metrics = field(default_factory=Metrics)
    # This process's committed writes per table (the desk's kept readings look at them).
    changes: Changes = field(default_factory=Changes)
    engine: AsyncEngine | None = None
    fake: FakeWeChatAPI | None = None
    client: WeChatClient | None = None
    inbox: Inbox | None = None
    spool: Spool | None = None
    dispatcher: Dispatcher | None = None
    spool_retry_s: float = 5.0
    shutdown_grace_s: float = 5.0
    leader_retry_s: float = 15.0
    leadership: Any = None
    # The scheduled jobs and what they run with, built once the store and the client exist.
    jobs: list[Job] = field(default_factory=list)
    job_context: JobContext | None = None
    # Set once the leader's start-up run of every job has ended (tests wait for it).
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)


SERVICES = web.AppKey("services", Services)


async def run_jobs(services: Services, *, starting: bool = False) -> None:
    """Run every scheduled job once now (tests, the sandbox's clock control, the demo);
    `starting`: the start-up catch-up, which leaves out the jobs that are not `at_start`."""
    assert services.job_context is not None, "the application has not started"
    await run_all(services.jobs, services.job_context, starting=starting)
