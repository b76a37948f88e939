"""台账 and 审计 in Debian's headless Chromium, on the sandbox's demo county: the department
logs in by a simulated scan, reads both pages, and takes the ledger away with the page's
button; the workbook opens in openpyxl as the CLI's does.

Screenshots (1366×768) go to the test's folder and to BANGFU_SCREENSHOTS when set; the
README's copies are docs/screenshots/desk-ledger.png and desk-audit.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.desk.test_browser import chromium, desk_tab, shot  # noqa: F401 - fixtures
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures
from tests.sandbox.test_browser import CHROMIUM

pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


async def test_the_department_reads_the_ledger_and_the_audit_and_downloads(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    groups = await demo_page.personas()
    tab = await desk_tab(chromium, demo_page, groups["组织部"][0])

    await tab.click("nav >> text=台账")
    await tab.wait_for_url("**/desk/ledger")
    heading = await tab.inner_text("h1")
    assert "困难党员台账" in heading and "全县" in heading
    table = await tab.inner_text("table.ledger")
    assert "合计" in table and "待复核" in table
    assert "年度复核进度" in await tab.inner_text("main")
    await shot(tab, tmp_path, "desk-ledger.png")
    # On paper: no navigation, no buttons, the table whole.
    await tab.emulate_media(media="print")
    assert not await tab.locator("nav.nav").is_visible()
    assert not await tab.locator("a.download").is_visible()
    assert await tab.locator("table.ledger").is_visible()
    await tab.screenshot(path=str(tmp_path / "ledger-print.png"), full_page=True)
    await tab.emulate_media(media="screen")

    async with tab.expect_download() as downloading:
        await tab.click("a.download")
    download = await downloading.value
    assert download.suggested_filename.endswith(".xlsx")
    assert "台账" in download.suggested_filename
    saved = tmp_path / "ledger.xlsx"
    await download.save_as(str(saved))
    book = load_workbook(saved)
    assert book.sheetnames[0] == "汇总"
    assert book["汇总"]["A1"].value.endswith("困难党员台账汇总")
    assert len(book.sheetnames) > 1

    await tab.click("nav >> text=审计")
    await tab.wait_for_url("**/desk/audit")
    assert "审计" in await tab.inner_text("h1")
    rows = await tab.locator("table.audit tbody tr").count()
    assert rows > 0
    await tab.select_option("select[name=channel]", "chat")
    await tab.click("form.filters button[type=submit]")
    await tab.wait_for_url("**/desk/audit?**channel=chat**")
    channels = await tab.locator("table.audit tbody tr td:nth-child(6)").all_inner_texts()
    assert channels and set(channels) == {"微信"}
    await tab.goto(demo_page.url("/desk/audit"))
    await shot(tab, tmp_path, "desk-audit.png")
    await tab.emulate_media(media="print")
    assert not await tab.locator("form.filters").is_visible()
    assert "筛选条件：全部" in await tab.inner_text("main")
    assert await tab.locator("table.audit").is_visible()
    await tab.screenshot(path=str(tmp_path / "audit-print.png"))
    await tab.emulate_media(media="screen")
    async with tab.expect_download() as downloading:
        await tab.click("a.download")
    saved = tmp_path / "audit.xlsx"
    await (await downloading.value).save_as(str(saved))
    audit = load_workbook(saved)
    assert audit.sheetnames == ["审计记录"] and audit["审计记录"].max_row > 1
