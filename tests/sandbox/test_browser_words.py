"""What each role reads on a phone (390×844) in the sandbox page: 帮助 for a member, a
branch secretary, a township officer and department staff, and 进度 for a member with a
loan. Screenshots go to the test's folder and to BANGFU_SCREENSHOTS when set (the ones in
docs/screenshots/ were taken so)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bangfu_bot.loans.models import loans
from bangfu_bot.members.models import people
from tests.sandbox.conftest import Page
from tests.sandbox.test_browser import CHROMIUM, Tab, answer, bind, shoot, tab_at  # noqa: F401

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


async def pick(tab: Any, name: str) -> None:
    """Find a person by name, tap them, and bind them."""
    await tab.locator("#search").fill(name)
    person = tab.locator("#groups button.person").filter(
        has=tab.locator("span.name", has_text=re.compile(f"^{re.escape(name)}$"))
    )
    await person.first.click()
    await playwright_api.expect(tab.locator("#who")).to_contain_text(name)
    await bind(tab, name)


@pytest.mark.parametrize(
    ("label", "shot", "offered", "withheld"),
    [
        ("党员", "help-member.png", ["申请", "借款", "进度", "人工"], ["待办", "基金"]),
        ("支部书记", "help-secretary.png", ["待办", "代办", "走访进度"], ["基金", "通知"]),
        ("党委委员", "help-township.png", ["待办", "走访进度"], ["代办", "还款登记"]),
        ("组织部", "help-department.png", ["通知", "还款登记", "基金", "批量备案"], ["申请"]),
    ],
)
async def test_each_role_reads_its_own_words_on_a_phone(
    demo_page: Page,
    tab_at: Tab,
    tmp_path: Path,
    label: str,
    shot: str,
    offered: list[str],
    withheld: list[str],
) -> None:
    groups = await demo_page.personas()
    person = groups[label][0]
    tab = await tab_at(390, 844)
    await pick(tab, person["name"])
    await answer(tab, "帮助", f"{person['name']}您好")
    text = await tab.locator("#messages .bubble.side-bot").last.inner_text()
    for word in offered:
        assert f"{word} —— " in text, (word, text)
    for word in withheld:
        assert f"{word} —— " not in text, (word, text)
    if label == "支部书记":
        assert "人工 —— " not in text
    await shoot(tab, tmp_path, shot)


async def test_a_member_reads_their_loan_on_a_phone(
    demo_page: Page, tab_at: Tab, tmp_path: Path
) -> None:
    async with demo_page.services.engine.connect() as conn:
        name = (
            await conn.execute(
                select(people.c.name)
                .join(loans, loans.c.person_id == people.c.id)
                .where(loans.c.status == "disbursed")
                .order_by(loans.c.disbursed_on)
            )
        ).scalar()
    assert name is not None
    tab = await tab_at(390, 844)
    await pick(tab, name)
    await answer(tab, "进度", "您的借款")
    # The reply itself: a reminder the dispatcher sends meanwhile may land after it.
    reply = tab.locator("#messages .bubble.side-bot", has_text="您的借款").last
    text = await reply.inner_text()
    assert "下一期：第" in text and "一共还欠" in text
    assert re.search(r"\d,\d{3}(\.\d\d)?元", text)
    await shoot(tab, tmp_path, "progress-loan.png")
