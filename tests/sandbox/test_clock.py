"""The sandbox clock: its offset is kept in the database, so a restart does not take the
page back to today while the data stays ahead; steps of 1, 7 and 30 days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
from aiohttp.test_utils import TestServer

from bangfu_bot.app import SERVICES, create_app
from bangfu_bot.clock import OffsetClock
from bangfu_bot.sandbox.clock import stored_offset
from bangfu_bot.settings import load_settings
from tests.sandbox.conftest import Page


@asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[Page]:
    """The sandbox bot on `env`'s database, started and then stopped, as by a restart."""
    app = create_app(load_settings({**env, "BANGFU_SHUTDOWN_GRACE_S": "1"}), migrate=True)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Page(server, app, session)
    finally:
        await server.close()


async def test_the_clock_survives_a_restart(sandbox_env: dict[str, str]) -> None:
    async with serving(sandbox_env) as first:
        fresh = await first.ok("/sandbox/api/state")
        assert fresh["days_ahead"] == 0
        assert await stored_offset(first.services.engine) is None  # never moved: real time
        await first.ok("/sandbox/api/demo", {})
        moved = await first.ok("/sandbox/api/clock", {"days": 30})
        moved = await first.ok("/sandbox/api/clock", {"days": 7})
        assert moved["days_ahead"] == 37
        offset = first.services.clock.offset
        assert await stored_offset(first.services.engine) == offset
    async with serving(sandbox_env) as second:
        clock = second.app[SERVICES].clock
        assert isinstance(clock, OffsetClock) and clock.offset == offset
        again = await second.ok("/sandbox/api/state")
        assert again["days_ahead"] == 37 and again["date"] == moved["date"]
        # And it goes on from there.
        later = await second.ok("/sandbox/api/clock", {"hours": 1})
        assert second.services.clock.offset == offset + timedelta(hours=1)
        assert later["days_ahead"] == 37
    async with serving(sandbox_env) as third:
        assert third.services.clock.offset == offset + timedelta(hours=1)


async def test_steps_of_one_seven_and_thirty_days(demo_page: Page) -> None:
    start = (await demo_page.ok("/sandbox/api/state"))["days_ahead"]
    for days, total in ((1, 1), (7, 8), (30, 38)):
        moved = await demo_page.ok("/sandbox/api/clock", {"days": days})
        assert moved["days_ahead"] == start + total
    for wrong in ({"days": 31}, {"days": -1}, {"days": 1, "hours": 1}, {"next": "yes"}, {}):
        status, data = await demo_page.post("/sandbox/api/clock", wrong)
        assert status == 400 and "1 到 30 天" in data["error"], wrong
    assert (await demo_page.ok("/sandbox/api/state"))["days_ahead"] == start + 38
