"""The sandbox page in a real headless Chromium, used as a person would: make the demo
county, play a member who binds and applies through the menu, then play their branch
secretary and see the application's prompt arrive; on a phone (390×844) and a laptop
(1366×768), choose a person and see their chat at once.

Needs Debian's `chromium` (installed by .ci/run) and Playwright for Python, driven with
`executable_path`; Playwright's own browser download is never used. The screenshots go to
the test's temporary folder, and also to BANGFU_SCREENSHOTS when that names a folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.sandbox.conftest import Page
from tests.sandbox.test_api import APPLY

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A ceiling, not a speed assertion: CI's shared machines have kept the first bind of a
# freshly seeded county past expect()'s own 5 s default, so every wait and every
# expect() here (and in the desk's browser tests) waits up to this long.
TIMEOUT_MS = 30_000
playwright_api.expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture
async def browser_page(page: Page) -> AsyncIterator[playwright_api.Page]:
    """A Chromium tab on the sandbox page (served by `page` on a real port of 127.0.0.1)."""
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="zh-CN"
            )
            tab = await context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            problems: list[str] = []
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.on("dialog", lambda dialog: problems.append(f"alert: {dialog.message}"))
            await tab.goto(page.url("/sandbox"))
            yield tab
            assert not problems, problems
            await context.close()
        finally:
            await browser.close()


Tab = Callable[[int, int], Awaitable[playwright_api.Page]]


@pytest.fixture
async def tab_at(page: Page) -> AsyncIterator[Tab]:
    """Opens the sandbox page in a Chromium tab of a given viewport (width, height)."""
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        problems: list[str] = []

        async def open_tab(width: int, height: int) -> playwright_api.Page:
            context = await browser.new_context(
                viewport={"width": width, "height": height}, locale="zh-CN"
            )
            tab = await context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.on("dialog", lambda dialog: problems.append(f"alert: {dialog.message}"))
            await tab.goto(page.url("/sandbox"))
            return tab

        try:
            yield open_tab
            assert not problems, problems
        finally:
            await browser.close()


async def shoot(tab: playwright_api.Page, tmp_path: Path, name: str) -> Path:
    """A screenshot of the viewport as a person sees it; kept in BANGFU_SCREENSHOTS too."""
    shot = tmp_path / name
    await tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    keep = os.environ.get("BANGFU_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / name)
    print(f"screenshot: {shot}")
    return shot


async def in_view(tab: playwright_api.Page, selector: str) -> bool:
    """Whether the element is wholly inside the viewport, as it stands (no scrolling)."""
    box = await tab.locator(selector).bounding_box()
    size = tab.viewport_size
    assert box is not None and size is not None, selector
    return (
        box["y"] >= 0
        and box["x"] >= 0
        and box["y"] + box["height"] <= size["height"] + 1
        and box["x"] + box["width"] <= size["width"] + 1
    )


async def choose(tab: playwright_api.Page, name: str, role: str) -> None:
    """Tap a person in the picker and wait for the phone to show them."""
    person = tab.locator("#groups button.person").filter(
        has=tab.locator("span.name", has_text=re.compile(f"^{re.escape(name)}$"))
    )
    await person.first.click()
    await playwright_api.expect(tab.locator("#who")).to_have_text(f"{name}（{role}）")


async def bind(tab: playwright_api.Page, name: str) -> None:
    """Tap 一键绑定 and wait for the bot to confirm."""
    await tab.locator("#bind").click()
    await playwright_api.expect(tab.locator("#messages .bubble.side-bot").last).to_contain_text(
        f"绑定好了！{name}"
    )
    await playwright_api.expect(tab.locator("#bind")).to_be_hidden()


async def answer(tab: playwright_api.Page, said: str, expected: str) -> None:
    """Type a line in the composer, send it, and wait for the bot's reply to show."""
    bot = tab.locator("#messages .bubble.side-bot")
    before = await bot.count()
    await tab.locator("#text").fill(said)
    await tab.locator("#send").click()
    await playwright_api.expect(bot).to_have_count(before + 1)
    await playwright_api.expect(bot.last).to_contain_text(expected)
    await playwright_api.expect(tab.locator("#typing")).to_have_count(0)


async def test_apply_as_a_member_and_the_secretary_sees_it(
    page: Page, browser_page: playwright_api.Page, tmp_path: Path
) -> None:
    tab = browser_page
    expect = playwright_api.expect

    # An empty roster offers the demo county; a person taps the button.
    await expect(tab.locator("#demo")).to_be_visible()
    await tab.locator("#make-demo").click()
    await expect(tab.locator("#demo-result")).to_contain_text("示范县建好了")
    await expect(tab.locator("#groups h3").first).to_contain_text("党员")

    # The cast: a branch secretary as the picker lists them, and a member of that branch
    # with no case yet (the same lists the page's script reads).
    groups = await page.personas()
    secretary = groups["支部书记"][0]
    member = next(
        p for p in groups["党员"] if p["where"] == secretary["where"] and p["case"] is None
    )

    # The secretary binds first, so the prompt has somewhere to go.
    await choose(tab, secretary["name"], "支部书记")
    await bind(tab, secretary["name"])

    # The member binds, then taps 申请帮扶 in the menu and answers the questions.
    await choose(tab, member["name"], "党员")
    await bind(tab, member["name"])
    await tab.locator("#menu button.top", has_text=re.compile("^申请帮扶$")).click()
    await expect(tab.locator("#messages .bubble.side-bot").last).to_contain_text("困难主要是哪一种")
    for said, expected in APPLY[:3]:
        await answer(tab, said, expected)
    mine = tab.locator("#messages .bubble.side-me")
    for said, _ in APPLY[:3]:
        await expect(mine.filter(has_text=re.compile(f"^{re.escape(said)}"))).not_to_have_count(0)
    # ... and goes on to hand the application in.
    for said, expected in APPLY[3:]:
        await answer(tab, said, expected)
    await tab.screenshot(path=str(tmp_path / "member.png"))

    # Now play the secretary: the prompt about the new application arrives in their chat.
    await choose(tab, secretary["name"], "支部书记")
    prompt = tab.locator("#messages .bubble.side-push.kind-cs").filter(
        has_text=f"新的帮扶申请：{member['name']}"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_MS / 1000
    while not await prompt.count():
        assert loop.time() < deadline, await tab.locator("#messages").inner_text()
        await page.services.dispatcher.send_due()
        await asyncio.sleep(0.2)
    await expect(prompt.first).to_be_visible()
    await expect(prompt.first.locator(".label")).to_have_text("客服消息")

    # Replying 待办 lists the member's application.
    await answer(tab, "待办", member["name"])

    shot = tmp_path / "sandbox.png"
    await tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    print(f"screenshot: {shot}")


async def test_on_a_phone_choosing_a_person_shows_their_chat_at_once(
    demo_page: Page, tab_at: Tab, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    tab = await tab_at(390, 844)
    member = (await demo_page.personas())["党员"][0]
    # The list of people first, the chat out of the way.
    await expect(tab.locator("#groups h3").first).to_contain_text("党员")
    await expect(tab.locator(".phone")).to_be_hidden()
    await shoot(tab, tmp_path, "phone-list.png")

    # Tapping a person shows their chat at once: the list gives way, the chat, the composer
    # and the menu are on the screen without scrolling.
    await choose(tab, member["name"], "党员")
    await expect(tab.locator(".people")).to_be_hidden()
    await bind(tab, member["name"])
    for part in ("#who", "#messages", "#text", "#send", "#menu", "#next"):
        assert await in_view(tab, part), part
    await expect(tab.locator("#messages .bubble.side-bot").last).to_be_in_viewport()
    await shoot(tab, tmp_path, "phone-390x844.png")

    # 「到下一件事」 from the phone: the line in the chat, and what it was, under the banner.
    await tab.locator("#next").click()
    await expect(tab.locator("#notice")).to_contain_text("到下一件事：")
    await expect(tab.locator("#messages .bubble.side-note").last).to_contain_text("到下一件事")
    await expect(tab.locator("#next")).to_be_enabled()
    await shoot(tab, tmp_path, "phone-next.png")

    # 「换人」 brings the list back, the person still marked.
    await tab.locator("#switch").click()
    await expect(tab.locator(".phone")).to_be_hidden()
    await expect(tab.locator("#groups .person.current")).to_be_in_viewport()


async def test_on_a_laptop_the_list_and_the_chat_are_side_by_side(
    demo_page: Page, tab_at: Tab, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    tab = await tab_at(1366, 768)
    member = (await demo_page.personas())["党员"][1]
    await choose(tab, member["name"], "党员")
    await bind(tab, member["name"])
    await expect(tab.locator(".people")).to_be_visible()
    for part in ("#search", "#who", "#messages", "#text", "#send", "#menu", "#plus30", "#next"):
        assert await in_view(tab, part), part
    await shoot(tab, tmp_path, "laptop-1366x768.png")
    # +30 天 moves a month, the jobs run, and the page says how far ahead it is.
    await tab.locator("#plus30").click()
    await expect(tab.locator("#date")).to_contain_text("往前拨了 30 天")
    await expect(tab.locator("#messages .bubble.side-note").last).to_contain_text("过了 30 天")


async def test_a_reminder_template_reads_as_a_phone_shows_it(
    demo_page: Page, tab_at: Tab, tmp_path: Path
) -> None:
    """A repayment reminder outside the 48-hour window arrives as the reminder template:
    its title, then amount and due date, field by field (docs/screenshots)."""
    from datetime import date

    from sqlalchemy import select

    from bangfu_bot.loans.jobs import reminder_facts
    from bangfu_bot.loans.service import say
    from bangfu_bot.members.models import bindings
    from bangfu_bot.notify.intents import tell

    expect = playwright_api.expect
    tab = await tab_at(390, 844)
    member = (await demo_page.personas())["党员"][0]
    await choose(tab, member["name"], "党员")
    await bind(tab, member["name"])
    for _ in range(3):  # three days on: the window the binding opened has closed
        await tab.locator("#plus1").click()
        await expect(tab.locator("#plus1")).to_be_enabled()
    services = demo_page.services
    due = services.clock.now().astimezone(services.settings.tz).date()
    due = date.fromordinal(due.toordinal() + 7)
    async with services.engine.begin() as conn:
        (person_id,) = (
            await conn.execute(
                select(bindings.c.person_id).where(
                    bindings.c.openid == member["openid"], bindings.c.unbound_at.is_(None)
                )
            )
        ).one()
        await tell(
            conn,
            person_id,
            say("reminder_before", name=member["name"], n=1, day=str(due), amount="2174元"),
            key="loan:browser:1:-7",
            now=services.clock.now(),
            reason="repayment reminder",
            urgent=True,  # the page's clock may stand in quiet hours; not what is shown here
            facts=reminder_facts(1, 217_400, due, "即将到期"),
        )
    template = tab.locator("#messages .bubble.side-push.kind-template").filter(
        has_text="应还金额：2174元"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_MS / 1000
    while not await template.count():
        assert loop.time() < deadline, await tab.locator("#messages").inner_text()
        await services.dispatcher.send_due()
        await asyncio.sleep(0.2)
    shown = template.first
    await expect(shown).to_be_in_viewport()
    await expect(shown).to_contain_text("还款提醒")
    await expect(shown).to_contain_text("还款事项：第1期")
    await expect(shown).to_contain_text(f"到期日期：{due.year}年{due.month}月{due.day}日")
    await expect(shown).to_contain_text("还款状态：即将到期")
    await expect(shown).not_to_contain_text("您好")
    shot = await shoot(tab, tmp_path, "reminder-template.png")
    docs = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, docs / "reminder-template.png")


async def test_an_approval_prompt_shows_the_case_on_a_phone(
    demo_page: Page, tab_at: Tab, tmp_path: Path
) -> None:
    """A township officer opens the demo's reported case: the prompt carries its summary
    on one phone screen (docs/screenshots/approval-prompt.png)."""
    expect = playwright_api.expect
    tab = await tab_at(390, 844)
    groups = await demo_page.personas()
    officers = next(people for label, people in groups.items() if "党委" in label)
    bot = tab.locator("#messages .bubble.side-bot")
    for officer in officers:
        await choose(tab, officer["name"], next(k for k, v in groups.items() if officer in v))
        await bind(tab, officer["name"])
        await answer(tab, "待办", "")
        listing = await bot.last.inner_text()
        days = [(int(m), int(d)) for m, d in re.findall(r"（(\d+)月(\d+)日）", listing)]
        assert days == sorted(days), listing  # oldest first
        found = re.search(r"(\d+)\. [^\n]*帮扶申请[^\n]*请审批", listing)
        if found:
            break
        await tab.locator("#switch").click()
    assert found, listing
    await answer(tab, found.group(1), "批准还是退回")
    prompt = bot.last
    for part in ("口人", "标准每人每年", "评议", "看全部情况回复“详情”"):
        await expect(prompt).to_contain_text(part)
    await prompt.scroll_into_view_if_needed()
    shot = await shoot(tab, tmp_path, "approval-prompt.png")
    docs = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, docs / "approval-prompt.png")
    # 详情 then shows the whole record, and the question again.
    await answer(tab, "详情", "经过：")
