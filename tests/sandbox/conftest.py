"""A bot in sandbox mode (no credentials), served over HTTP, and a client for its page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bangfu_bot.app import SERVICES, create_app
from bangfu_bot.settings import load_settings
from tests.conftest import BUSY_TIMEOUT_MS, CONVERSATIONS


class Page:
    """What the sandbox page's script does: GET and POST JSON to /sandbox/api/."""

    def __init__(
        self, server: TestServer, app: web.Application, session: aiohttp.ClientSession
    ) -> None:
        self.server = server
        self.app = app
        self.session = session

    @property
    def services(self) -> Any:
        return self.app[SERVICES]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        async with self.session.get(self.url(path), params=params) as response:
            return response.status, await response.json()

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.post(self.url(path), json=body, headers=headers) as response:
            return response.status, await response.json()

    async def ok(self, path: str, body: dict[str, Any] | None = None, **params: str) -> Any:
        """GET (or POST when a body is given) and insist on 200."""
        status, data = (
            await self.post(path, body) if body is not None else await self.get(path, **params)
        )
        assert status == 200, data
        return data

    async def personas(self, q: str = "") -> dict[str, list[dict[str, Any]]]:
        """Personas by role label."""
        data = await self.ok("/sandbox/api/personas", q=q)
        return {group["label"]: group["people"] for group in data["groups"]}

    async def say(self, persona: dict[str, Any], text: str, **extra: Any) -> list[dict[str, Any]]:
        """Type a line as the persona; the new chat entries."""
        data = await self.ok(
            "/sandbox/api/send",
            {"openid": persona["openid"], "kind": "text", "text": text, **extra},
        )
        return list(data["entries"])

    async def chat(self, persona: dict[str, Any]) -> list[dict[str, Any]]:
        """The persona's whole chat."""
        data = await self.ok("/sandbox/api/chat", openid=persona["openid"], after="0")
        return list(data["entries"])

    async def wait_for(
        self, persona: dict[str, Any], found: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """Poll the persona's chat, as the page does, until an entry matches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for entry in await self.chat(persona):
                if found(entry):
                    return entry
            assert loop.time() < deadline, await self.chat(persona)
            await self.services.dispatcher.send_due()
            await asyncio.sleep(0.05)


@pytest.fixture
def sandbox_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a bot with no WeChat credentials: the sandbox."""
    return {
        "BANGFU_DATABASE_URL": database_url,
        "BANGFU_STORAGE_DIR": str(tmp_path / "storage"),
        "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
        "BANGFU_DB_BUSY_TIMEOUT_MS": BUSY_TIMEOUT_MS,
    }


@pytest.fixture
async def page(sandbox_env: dict[str, str]) -> AsyncIterator[Page]:
    """The sandbox bot, started, with a client for its page."""
    settings = load_settings(
        {**sandbox_env, "BANGFU_SPOOL_RETRY_S": "0.2", "BANGFU_SHUTDOWN_GRACE_S": "1"}
    )
    assert settings.sandbox
    app = create_app(settings, migrate=True)
    # Pushes wait out the night (21:00-08:00); the tests play at 10:00, whatever the real time.
    clock = app[SERVICES].clock
    local = clock.now().astimezone(settings.tz)
    morning = local.replace(hour=10, minute=0, second=0, microsecond=0)
    clock.advance(
        seconds=(
            (morning if morning > local else morning + timedelta(days=1)) - local
        ).total_seconds()
    )
    server = TestServer(app)
    await server.start_server()
    session = aiohttp.ClientSession()
    yield Page(server, app, session)
    await session.close()
    await server.close()


@pytest.fixture
async def demo_page(page: Page) -> Page:
    """The sandbox with the demo county created through its button."""
    data = await page.ok("/sandbox/api/demo", {})
    assert "示范县建好了" in data["lines"][0]
    return page
