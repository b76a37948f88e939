"""Exactly one process runs the scheduler and the dispatcher; another takes over."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import PG_URL


async def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_the_only_process_leads(bot: Any) -> None:
    assert await wait_until(lambda: bot.services.leadership.leading)


@pytest.mark.skipif(not PG_URL, reason="leader hand-over needs PostgreSQL (several processes)")
async def test_one_of_two_leads_and_the_other_takes_over(start_bot: Any) -> None:
    first = await start_bot()
    assert await wait_until(lambda: first.services.leadership.leading)
    second = await start_bot()
    await asyncio.sleep(0.6)  # several campaign rounds
    assert not second.services.leadership.leading
    await first.server.close()  # the leader dies; PostgreSQL drops its lock
    assert await wait_until(lambda: second.services.leadership.leading)
    # The new leader's dispatcher sends what is queued.
    await second.driver().text("o-late", "你好")
    from bangfu_bot.notify.queue import queue_message

    async with second.services.engine.begin() as conn:
        await queue_message(
            conn,
            key="after-handover",
            openid="o-late",
            kind="notice",
            content="交接后照常发送",
            reason="test",
            now=second.clock.now(),
            urgent=True,
        )
    second.services.dispatcher.wake()
    assert await wait_until(lambda: second.api.sent_texts("o-late") == ["交接后照常发送"])
