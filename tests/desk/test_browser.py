"""The desk in Debian's headless Chromium, on the sandbox bot: a township officer and the
department log in by a simulated scan (the sandbox's 「扫码」), visit the pages, the officer
approves a case and the member's WeChat (the fake) receives it, the department files it.

Screenshots (1366×768) go to the test's folder and to BANGFU_SCREENSHOTS when set; the
README's copies are docs/screenshots/desk-*.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.members.models import organisations, people
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures
from tests.sandbox.test_browser import ARGS, CHROMIUM, TIMEOUT_MS

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(tab: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    await tab.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 0
    keep = os.environ.get("BANGFU_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)


async def desk_tab(chromium: Any, demo_page: Page, persona: dict[str, Any]) -> Any:
    """A new browser (own cookies) logged in to the desk as the persona by 「扫码」."""
    context = await chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    tab = await context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    await tab.goto(demo_page.url("/desk"))
    assert tab.url.endswith("/desk/login")
    await tab.wait_for_selector(".qr svg")
    await demo_page.ok("/sandbox/api/bind", {"openid": persona["openid"]})
    entries = await demo_page.ok("/sandbox/api/scan", {"openid": persona["openid"]})
    assert any("工作台已登录" in e["text"] for e in entries["entries"]), entries
    await tab.wait_for_url("**/desk", timeout=TIMEOUT_MS)
    assert not problems, problems
    return tab


async def test_officer_and_department_on_the_desk(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    groups = await demo_page.personas()
    officer, staff = groups["党委委员"][0], groups["组织部"][0]
    engine = demo_page.services.engine
    async with engine.begin() as conn:
        township = (
            await conn.execute(
                select(organisations.c.parent_id)
                .select_from(people.join(organisations, organisations.c.id == people.c.branch_id))
                .where(people.c.id == officer["id"])
            )
        ).scalar_one()
        member = (
            await conn.execute(
                select(people.c.id, people.c.name, people.c.branch_id)
                .select_from(people.join(organisations, organisations.c.id == people.c.branch_id))
                .where(organisations.c.parent_id == township, people.c.id != officer["id"])
                .where(~people.c.id.in_(select(cases.c.person_id)))
                .order_by(people.c.id)
            )
        ).first()
        now = demo_page.services.clock.now()
        case_id = int(
            (
                await conn.execute(
                    insert(cases).values(
                        person_id=member.id,
                        branch_id=member.branch_id,
                        kind="hardship",
                        status=S.REPORTED,
                        category="缺资金",
                        help_wanted="资金",
                        household_size=3,
                        household_income_fen=1_200_000,
                        looks_above_line=False,
                        answers={
                            "household": [{"name": "刘桂兰", "relation": "妻子", "age": 61}],
                            "situation": "老伴去年做了手术，家里缺钱买种子化肥。",
                        },
                        filed_by=member.id,
                        consent_recorded=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            ).inserted_primary_key[0]
        )
    member_persona = {"openid": f"sandbox-{member.id}"}
    await demo_page.ok("/sandbox/api/bind", member_persona)

    login = await (
        await chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    ).new_page()
    await login.goto(demo_page.url("/desk/login"))
    await login.wait_for_selector(".qr svg")
    await shot(login, tmp_path, "desk-login.png")

    tab = await desk_tab(chromium, demo_page, officer)
    assert "数据截至" in await tab.inner_text("header")
    await shot(tab, tmp_path, "desk-home-township.png")
    await tab.click("text=案件")
    await tab.wait_for_url("**/desk/cases")
    await shot(tab, tmp_path, "desk-cases.png")
    await tab.goto(demo_page.url(f"/desk/cases/{case_id}"))
    assert member.name in await tab.inner_text("h1")
    await shot(tab, tmp_path, "desk-case.png")
    await tab.click("button.primary")  # 批准
    await tab.wait_for_selector(".flash.done")
    await shot(tab, tmp_path, "desk-case-approved.png")
    found = await demo_page.wait_for(member_persona, lambda entry: "党委批准了" in entry["text"])
    assert found
    async with engine.connect() as conn:
        channels = (
            (
                await conn.execute(
                    select(case_events.c.channel).where(case_events.c.case_id == case_id)
                )
            )
            .scalars()
            .all()
        )
    assert list(channels) == ["web"]

    desk = await desk_tab(chromium, demo_page, staff)
    await shot(desk, tmp_path, "desk-home-department.png")
    await desk.goto(demo_page.url(f"/desk/cases/{case_id}"))
    await desk.click("button.primary")  # 备案
    await desk.wait_for_selector(".flash.done")
    await shot(desk, tmp_path, "desk-case-filed.png")
    # Out of the officer's township: a Chinese 403.
    async with engine.connect() as conn:
        other = (
            await conn.execute(
                select(cases.c.id)
                .select_from(cases.join(organisations, organisations.c.id == cases.c.branch_id))
                .where(organisations.c.parent_id != township)
            )
        ).scalar()
    if other is not None:
        response = await tab.goto(demo_page.url(f"/desk/cases/{other}"))
        assert response is not None and response.status == 403
        assert "没有权限" in await tab.inner_text("h1")
        await shot(tab, tmp_path, "desk-forbidden.png")
