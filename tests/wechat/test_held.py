"""`success` only for what is held: committed, or journaled and fsync'ed. A journal that
cannot be written never hides behind a `success`; /healthz says so; start-up names the path
and the cause."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bangfu_bot.app import StartupError, create_app
from tests.wechat.test_webhook import (
    OPENID,
    CountingBot,
    _lock_store,
    metric,
    stored_pushes,
    until,
)


def break_journal(bot: Any) -> Any:
    """The journal's file can no longer be written (as a full disk or a revoked mount
    would do); returns the function that mends it."""
    spool = bot.services.spool
    good = spool._file
    spool._file = open(good.name, "rb")  # noqa: SIM115 - writes now raise an OSError

    def mend() -> None:
        spool._file.close()
        spool._file = good

    return mend


async def health(bot: Any) -> tuple[int, dict[str, Any]]:
    async with bot.session.get(bot.url("/healthz")) as response:
        return response.status, await response.json()


async def test_an_unwritable_journal_never_answers_success_for_what_is_not_stored(
    start_bot: Any,
) -> None:
    counting = CountingBot(held=True)
    bot = await start_bot(bot=counting, reply_budget_s="0.1")
    mend = break_journal(bot)
    driver = bot.driver("safe", tries=1)
    # The answers are held past the budget: they cannot be journaled, so the webhook waits
    # for the commit (well inside WeChat's 5 s) and answers them passively.
    pushes = [
        driver.envelope(driver.message_xml(f"o-{n}", "text", {"Content": f"第{n}条"}), f"o-{n}")
        for n in range(5)
    ]
    sending = [asyncio.create_task(driver.post(*push)) for push in pushes]
    await until(lambda: metric(bot, "bangfu_shed_pushes_total", reason="unheld") == 5)
    counting.release.set()
    deliveries = await asyncio.gather(*sending)
    # On a loaded machine a push may pass the hard deadline before the others are held:
    # it gets a 503 (never `success`), and WeChat's next try is answered.
    for push, delivery in zip(pushes, deliveries, strict=True):
        assert delivery.body != "success"
        if delivery.statuses == [503]:
            delivery = await driver.post(*push)
        assert delivery.statuses == [200] and delivery.body != "success"
    assert await stored_pushes(bot) == 5
    status, body = await health(bot)
    assert status == 503 and "journal" in body["journal"]
    mend()
    assert (await driver.text(OPENID, "好了")).statuses == [200]


async def test_no_journal_and_no_database_is_no_success_and_wechat_retries(start_bot: Any) -> None:
    bot = await start_bot(reply_budget_s="0.1", db_busy_timeout_ms="100")
    mend = break_journal(bot)
    driver = bot.driver("safe", tries=1, timeout_s=6)
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "帮助"}, 9), OPENID
    )
    locker = await _lock_store(bot)
    try:
        delivery = await driver.post(query, body, OPENID)
        assert delivery.statuses == [503] and delivery.body != "success"
    finally:
        await locker()
        mend()
    # WeChat's next try finds the journal and the database back: answered and stored once.
    delivery = await driver.post(query, body, OPENID)
    assert delivery.statuses == [200] and "帮助" not in delivery.body
    assert await stored_pushes(bot) == 1


async def test_start_up_names_an_unwritable_journal_directory(
    start_bot: Any, tmp_path: Path
) -> None:
    bot = await start_bot()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = dataclasses.replace(bot.services.settings, spool_dir=str(blocker / "spool"))
    server = TestServer(create_app(settings, clock=bot.clock, migrate=False))
    with pytest.raises(StartupError, match=f"cannot write the journal in {blocker}/spool"):
        await server.start_server()
    await server.close()


async def test_start_up_names_a_database_that_cannot_be_written(
    start_bot: Any, tmp_path: Path
) -> None:
    bot = await start_bot()
    if not bot.services.settings.is_sqlite:
        pytest.skip("the embedded store's file")
    path = bot.services.engine.url.database
    read_only = dataclasses.replace(
        bot.services.settings,
        spool_dir=str(tmp_path / "spool2"),
        database_url=f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true",
    )
    server = TestServer(create_app(read_only, clock=bot.clock, migrate=False))
    with pytest.raises(StartupError, match=r"cannot be written: .*readonly database"):
        await server.start_server()
    await server.close()


async def test_healthz_is_ok_when_both_can_be_written(bot: Any) -> None:
    assert await health(bot) == (200, {"ok": True, "database": "ok", "journal": "ok"})


async def test_healthz_is_503_while_the_database_takes_no_write_and_ok_again_after(
    start_bot: Any,
) -> None:
    """Reachable is not enough: a store that answers but takes no write (PostgreSQL made
    read-only, SQLite's write lock held elsewhere) is named, and healthz recovers by itself."""
    bot = await start_bot(db_busy_timeout_ms="100")
    engine = bot.services.engine
    if engine.dialect.name == "sqlite":
        release = await _lock_store(bot)
        cause = "database is locked"
    else:
        await read_only(engine, "on")

        async def release() -> None:
            await read_only(engine, "off")

        cause = "SQLSTATE 25006"
    try:
        status, body = await health(bot)
        assert (status, body["ok"], body["database"], body["journal"]) == (503, False, cause, "ok")
    finally:
        await release()
    assert await until_healthy(bot)


async def until_healthy(bot: Any, tries: int = 50) -> bool:
    for _ in range(tries):
        if (await health(bot))[0] == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def read_only(engine: Any, on_or_off: str) -> None:
    """Make the test database read-only (or writable) for new sessions, and end the
    current ones, as an operator or a failover would (as `make faults` does)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = engine.url.database
    admin = create_async_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(f"ALTER DATABASE {name} SET default_transaction_read_only = {on_or_off}")
            )
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    finally:
        await admin.dispose()
