"""借款与基金 in Debian's headless Chromium, on the sandbox's demo county: the department
logs in by a simulated scan, opens 借款与基金, records a repayment through the form (the
member's WeChat, the fake, hears of it), opens the fund's page and downloads the
supervisors' report.

A township officer approves the demo's applied loan on its page (the member hears of it).

Screenshots (1366×768): docs/screenshots/desk-loans.png, desk-loan.png, desk-fund.png,
desk-loan-review.png when BANGFU_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bangfu_bot.loans.models import loans, repayments
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.members.models import people
from bangfu_bot.members.service import people_able
from tests.desk.test_browser import chromium, desk_tab, shot  # noqa: F401 - fixtures
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures
from tests.sandbox.test_browser import CHROMIUM

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


async def test_department_records_a_repayment_and_takes_the_fund_report(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    groups = await demo_page.personas()
    staff = groups["组织部"][0]
    engine = demo_page.services.engine
    async with engine.connect() as conn:
        loan = (
            await conn.execute(
                select(loans.c.id, loans.c.person_id, people.c.name)
                .select_from(loans.join(people, people.c.id == loans.c.person_id))
                .where(loans.c.status == "disbursed", loans.c.person_id != staff["id"])
                .order_by(loans.c.id)
            )
        ).first()
    assert loan is not None
    member = {"openid": f"sandbox-{loan.person_id}"}
    await demo_page.ok("/sandbox/api/bind", member)

    tab = await desk_tab(chromium, demo_page, staff)
    await tab.click("nav >> text=借款与基金")
    await tab.wait_for_url("**/desk/loans")
    assert "按逾期分" in await tab.inner_text("main")
    await shot(tab, tmp_path, "desk-loans.png")

    await tab.goto(demo_page.url(f"/desk/loans/{loan.id}"))
    assert loan.name in await tab.inner_text("h1")
    await tab.fill("input[name=amount]", "100.50")
    await tab.fill("input[name=receipt]", "浏览器收据 001")
    await tab.click("#repay button.primary")
    await tab.wait_for_selector(".flash.done")
    assert "已记下还款 100.50元" in await tab.inner_text(".flash")
    await shot(tab, tmp_path, "desk-loan.png")
    async with engine.connect() as conn:
        paid = (
            await conn.execute(
                select(repayments.c.amount_fen).where(
                    repayments.c.loan_id == loan.id, repayments.c.receipt == "浏览器收据 001"
                )
            )
        ).scalar_one()
    assert paid == 10_050
    found = await demo_page.wait_for(member, lambda entry: "收到一笔还款" in entry["text"])
    assert "浏览器收据 001" in found["text"]

    await tab.click("nav >> text=借款与基金")
    await tab.wait_for_url("**/desk/loans")
    await tab.click("text=看帮扶基金的账")
    await tab.wait_for_url("**/desk/fund")
    main = await tab.inner_text("main")
    assert "对账" in main and "平（差 0）" in main
    assert await tab.locator("figure.chart svg").count() == 3
    await shot(tab, tmp_path, "desk-fund.png")
    async with tab.expect_download() as download_info:
        await tab.click("text=下载报告（Excel）")
    download = await download_info.value
    saved = tmp_path / "fund.xlsx"
    await download.save_as(str(saved))
    book = load_workbook(saved)
    cells = [cell for sheet in book for row in sheet.values for cell in row if cell is not None]
    assert any(isinstance(cell, str) and "帮扶基金报告" in cell for cell in cells)
    assert "浏览器收据 001" in cells


async def test_a_township_officer_approves_a_loan_on_its_page(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    engine = demo_page.services.engine
    async with engine.connect() as conn:
        loan_id = (
            await conn.execute(
                select(loans.c.id).where(loans.c.status == "applied").order_by(loans.c.id)
            )
        ).scalar_one()
        loan = await load_loan(conn, loan_id)
        officer_id = min(await people_able(conn, "loan.decide", loan_subject(loan)))
    member = {"openid": f"sandbox-{loan.person_id}"}
    await demo_page.ok("/sandbox/api/bind", member)

    tab = await desk_tab(chromium, demo_page, {"openid": f"sandbox-{officer_id}"})
    await tab.click(f'a[href="/desk/loans/{loan_id}"]')  # the to-do on 工作台
    await tab.wait_for_url(f"**/desk/loans/{loan_id}")
    assert "养蜂" in await tab.inner_text("main")
    await tab.check("#decide input[value=approve]")
    await shot(tab, tmp_path, "desk-loan-review.png")
    await tab.click("#decide button.primary")
    await tab.wait_for_selector(".flash.done")
    assert "党委已批准" in await tab.inner_text(".flash")
    assert await tab.locator("#decide").count() == 0  # decided: the form is gone
    found = await demo_page.wait_for(member, lambda entry: "批准了" in entry["text"])
    assert "组织部会来实地看看" in found["text"]
