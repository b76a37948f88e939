"""Every desk page as every desk role, in Debian's headless Chromium on the sandbox bot.

Each official logs in by the sandbox's 「扫码」 and follows every link of the navigation: a
page either opens (200, its heading, 「数据截至」) or says in Chinese why not (403); no page
errors and no console errors (a blocked style or script under the page's CSP is one). Each
page is screenshotted into the test's folder (not the README's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.desk.test_browser import chromium, desk_tab  # noqa: F401 - fixtures
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures
from tests.sandbox.test_browser import CHROMIUM

pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)

NAVIGATION = ("工作台", "案件", "台账", "借款与基金", "走访", "通知", "名册", "审计", "年度")
OFFICIALS = ("组织部", "党委委员", "支部书记", "监督小组")


@pytest.mark.parametrize("label", OFFICIALS)
async def test_every_page_opens_or_says_why_for_every_official(
    demo_page: Page,
    chromium: Any,
    tmp_path: Path,
    label: str,
) -> None:
    groups = await demo_page.personas()
    official = groups[label][0]
    tab = await desk_tab(chromium, demo_page, official)
    console: list[str] = []
    # A refused page is a 403 document; Chromium logs that as a console error, which is not one.
    tab.on(
        "console",
        lambda message: (
            console.append(message.text)
            if message.type == "error" and "status of 403" not in message.text
            else None
        ),
    )
    tab.on("pageerror", lambda error: console.append(str(error)))
    links = await tab.eval_on_selector_all(
        "nav.nav a", "links => links.map(a => [a.textContent.trim(), a.getAttribute('href')])"
    )
    assert tuple(name for name, _ in links) == NAVIGATION
    opened = []
    for name, href in links:
        response = await tab.goto(demo_page.url(href))
        assert response is not None
        heading = await tab.inner_text("h1")
        assert response.status in (200, 403), (label, name, response.status)
        assert heading.strip(), (label, name)
        if response.status == 200:
            assert "数据截至" in await tab.inner_text("header"), (label, name)
            assert name in await tab.inner_text("nav.nav a.here"), (label, name)
            opened.append(name)
        else:
            # The refusal page: a Chinese heading and a sentence saying who may, or what to do.
            reason = await tab.inner_text("section.refused p")
            assert reason.strip() and reason.isascii() is False, (label, name, reason)
        await tab.screenshot(path=str(tmp_path / f"{label}-{name}.png"))
    assert not console, (label, console)
    # Every official has at least their desk, the cases and the audit trail in sight.
    assert {"工作台", "案件", "审计"} <= set(opened), (label, opened)
