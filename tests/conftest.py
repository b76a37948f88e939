"""Fixtures: a database per test (SQLite, or PostgreSQL when BANGFU_TEST_DATABASE_URL is set),
the fake WeChat API on a local port, the bot served over HTTP, and a push driver."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bangfu_bot import db
from bangfu_bot.app import SERVICES, create_app
from bangfu_bot.clock import FrozenClock
from bangfu_bot.models import metadata
from bangfu_bot.settings import Settings, load_settings
from bangfu_bot.wechat.fake import FakeWeChatAPI, PushDriver

APPID = "wx1234567890abcdef"
SECRET = "s3cret-of-the-county"
TOKEN = "countytoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AES_KEY_OLD = "OLDdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

pytest_plugins = ["tests.county"]

CONVERSATIONS = Path(__file__).resolve().parents[1] / "conversations"
PG_URL = os.environ.get("BANGFU_TEST_DATABASE_URL", "")
BUSY_TIMEOUT_MS = "10000"  # SQLite's wait for another writer's lock (see make_settings)


def pytest_report_header(config: Any) -> str:
    return f"store: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (per-test file)'}"


@pytest.fixture(scope="session")
def _pg_schema_reset() -> None:
    """Start the PostgreSQL run from an empty schema, once."""
    if not PG_URL:
        return

    async def reset() -> None:
        engine = db.make_engine(load_settings({"BANGFU_DATABASE_URL": PG_URL}).database_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.migrate(engine)
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture
async def database_url(tmp_path: Path, _pg_schema_reset: None) -> AsyncIterator[str]:
    """A clean database for one test."""
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path}/bangfu.db"
        return
    url = load_settings({"BANGFU_DATABASE_URL": PG_URL}).database_url
    engine = db.make_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[Any]:
    """The test database, migrated, for tests that call the services without a bot."""
    engine = db.make_engine(database_url, busy_timeout_ms=int(BUSY_TIMEOUT_MS))
    await db.migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    """10:00 on 10 November 2026 in the county, moved only by hand (everything, the pushes'
    timestamps included, reads this clock, so tests never depend on the real date)."""
    return FrozenClock(datetime(2026, 11, 10, 2, 0, tzinfo=UTC))


@pytest.fixture
async def _fake_api_started(clock: FrozenClock) -> AsyncIterator[tuple[FakeWeChatAPI, str]]:
    api = FakeWeChatAPI(appid=APPID, secret=SECRET, clock=clock)
    url = await api.start()
    yield api, url
    await api.stop()


@pytest.fixture
def fake_api(_fake_api_started: tuple[FakeWeChatAPI, str]) -> FakeWeChatAPI:
    """The fake WeChat API, listening on a local port."""
    return _fake_api_started[0]


@pytest.fixture
def fake_api_url(_fake_api_started: tuple[FakeWeChatAPI, str]) -> str:
    """Where the fake WeChat API listens."""
    return _fake_api_started[1]


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path, fake_api_url: str) -> Callable[..., Settings]:
    """Settings for a bot wired to the fake API; keyword arguments override env values."""

    def make(**env: str) -> Settings:
        base = {
            "BANGFU_DATABASE_URL": database_url,
            "BANGFU_WECHAT_APPID": APPID,
            "BANGFU_WECHAT_SECRET": SECRET,
            "BANGFU_WECHAT_TOKEN": TOKEN,
            "BANGFU_WECHAT_AES_KEY": AES_KEY,
            "BANGFU_WECHAT_API_BASE": fake_api_url,
            "BANGFU_STORAGE_DIR": str(tmp_path / "storage"),
            "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
            # The tests push in every mode; the default (safe only with a key) has its own.
            "BANGFU_WECHAT_MODES": "plain,compatible,safe",
            # A ceiling for a busy machine: with two suites at once on two cores, a writer
            # (a test's bot catching up on its jobs) held SQLite's lock past the 2 s default.
            "BANGFU_DB_BUSY_TIMEOUT_MS": BUSY_TIMEOUT_MS,
        }
        base.update({f"BANGFU_{key.upper()}": value for key, value in env.items()})
        return load_settings(base)

    return make


class Bot:
    """A running bot: its HTTP server, its services, and drivers that push to it."""

    def __init__(
        self,
        server: TestServer,
        app: web.Application,
        session: aiohttp.ClientSession,
        clock: FrozenClock,
        api: FakeWeChatAPI,
    ) -> None:
        self.server = server
        self.app = app
        self.session = session
        self.clock = clock
        self.api = api

    @property
    def services(self) -> Any:
        return self.app[SERVICES]

    async def stop_dispatcher(self) -> None:
        """Stop this process's dispatcher for good: it stops trying to lead first, since a
        dispatcher closed before the lead is won starts with the lead (seen on a busy
        machine, on PostgreSQL: it sent what a test meant for another dispatcher)."""
        await self.services.leadership.close()
        await self.services.dispatcher.close()

    async def flush_outbox(self, timeout: float = 10) -> None:
        """Send every due outbox row, waiting for any the background dispatcher holds."""
        await self.services.dispatcher.flush(timeout)

    def url(self, path: str = "/wechat") -> str:
        return str(self.server.make_url(path))

    def driver(self, mode: str = "plain", **kwargs: Any) -> PushDriver:
        settings = self.services.settings
        options: dict[str, Any] = dict(
            url=self.url(),
            token=settings.wechat_token,
            appid=settings.wechat_appid,
            aes_key=settings.wechat_aes_key,
            clock=self.clock,
            session=self.session,
            mode=mode,
            api=self.api,
        )
        options.update(kwargs)
        return PushDriver(**options)


@pytest.fixture
async def start_bot(
    make_settings: Callable[..., Settings], clock: FrozenClock, fake_api: FakeWeChatAPI
) -> AsyncIterator[Callable[..., Any]]:
    """Start a bot over HTTP (call again to start a second process on the same store)."""
    servers: list[TestServer] = []
    session = aiohttp.ClientSession()

    async def start(*, bot: Any = None, spool_retry_s: float = 0.2, **env: str) -> Bot:
        """A test's first bot (its leader) is returned once its start-up jobs are done. On a
        loaded machine they competed with the test's first pushes for the database and the
        reply budget: a soak saw a welcome come late (as a customer-service message) and a
        held push's time limit run out while it waited for their SQLite lock."""
        first = not servers
        settings = make_settings(
            spool_retry_s=str(spool_retry_s),
            shutdown_grace_s="1",
            leader_retry_s="0.2",
            **env,
        )
        app = create_app(settings, clock=clock, bot=bot, migrate=True)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        started = Bot(server, app, session, clock, fake_api)
        if first:
            await asyncio.wait_for(started.services.caught_up.wait(), 60)
        return started

    yield start
    for server in reversed(servers):
        await server.close()
    await session.close()


@pytest.fixture
async def bot(start_bot: Callable[..., Any]) -> Bot:
    """One bot on a clean store."""
    return await start_bot()
