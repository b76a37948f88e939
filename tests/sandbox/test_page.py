"""The sandbox page is served, labelled, and only to this machine."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bangfu_bot.app import create_app
from bangfu_bot.sandbox.views import is_loopback, refusal
from bangfu_bot.settings import load_settings
from tests.conftest import APPID, SECRET, TOKEN
from tests.sandbox.conftest import Page


async def test_the_page_says_it_is_the_sandbox(page: Page) -> None:
    async with page.session.get(page.url("/sandbox")) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
    assert "沙盒·演练" in html and "不会发到任何人的手机上" in html
    for asset, kind in [("sandbox.js", "text/javascript"), ("sandbox.css", "text/css")]:
        assert f"/sandbox/static/{asset}" in html
        async with page.session.get(page.url(f"/sandbox/static/{asset}")) as response:
            assert response.status == 200 and response.content_type == kind
    async with page.session.get(page.url("/sandbox/static/index.html")) as response:
        assert response.status == 404


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "10.0.0.5",
        "192.168.1.20",
        "::ffff:8.8.8.8",
        "2001:db8::1",
        "localhost",
        "not an address",
    ],
)
def test_other_addresses(address: str | None) -> None:
    assert not is_loopback(address)


def _request(
    method: str = "GET",
    path: str = "/sandbox/api/state",
    *,
    remote: str,
    host: str = "127.0.0.1:8080",
    **headers: str,
) -> web.Request:
    request = make_mocked_request(method, path, headers={"Host": host, **headers})
    return request.clone(remote=remote)


def test_the_guard() -> None:
    assert refusal(_request(remote="127.0.0.1")) is None
    assert refusal(_request(remote="::1", host="localhost:8080")) is None
    for request in [
        _request(remote="203.0.113.9"),  # another machine
        _request(remote="127.0.0.1", host="evil.example"),  # a rebound DNS name
        _request("POST", remote="127.0.0.1", **{"Content-Type": "text/plain"}),
        _request(
            "POST",
            remote="127.0.0.1",
            **{"Content-Type": "application/json", "Origin": "http://evil.example"},
        ),
    ]:
        refused = refusal(request)
        assert refused is not None and refused.status == 403
    assert (
        refusal(
            _request(
                "POST",
                remote="127.0.0.1",
                **{"Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"},
            )
        )
        is None
    )


async def test_every_sandbox_route_refuses_another_machine(page: Page) -> None:
    routes = [
        r
        for r in page.app.router.routes()
        if (r.resource is not None and r.resource.canonical.startswith("/sandbox"))
    ]
    assert len(routes) >= 9
    for route in routes:
        request = make_mocked_request(
            route.method, route.resource.canonical, headers={"Host": "127.0.0.1:8080"}, app=page.app
        )
        response: Any = await route.handler(request.clone(remote="192.168.1.20"))
        assert response.status == 403, route.resource.canonical
        assert "只能在这台电脑上打开" in response.text


async def test_other_pages_cannot_drive_the_bot(page: Page) -> None:
    status, data = await page.post(
        "/sandbox/api/clock", {"days": 7}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403 and "别的网页" in data["error"]
    async with page.session.get(
        page.url("/sandbox/api/state"), headers={"Host": "evil.example"}
    ) as response:
        assert response.status == 403
    async with page.session.post(page.url("/sandbox/api/demo"), data="{}") as response:
        assert response.status == 403  # a form post, not JSON


def test_no_sandbox_with_real_credentials(tmp_path: Any) -> None:
    settings = load_settings(
        {
            "BANGFU_WECHAT_APPID": APPID,
            "BANGFU_WECHAT_SECRET": SECRET,
            "BANGFU_WECHAT_TOKEN": TOKEN,
            "BANGFU_STORAGE_DIR": str(tmp_path),
        }
    )
    app = create_app(settings)
    paths = [r.resource.canonical for r in app.router.routes() if r.resource is not None]
    assert "/wechat" in paths
    assert not [path for path in paths if path.startswith("/sandbox")]
