"""名册 and 年度 in Debian's headless Chromium, on the sandbox's demo county: the department
uploads a roster with a bad row and reads its line (nothing written), uploads a good one and
confirms it, searches the roster, opens 年度 and downloads the annual report as PDF.

Screenshots (1366×768): desk-roster.png, desk-roster-search.png, desk-year.png, to the
test's folder and to BANGFU_SCREENSHOTS when set (the README's are docs/screenshots/).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select

from bangfu_bot.members.models import organisations, people
from tests.desk.test_browser import chromium, desk_tab, pytestmark, shot  # noqa: F401
from tests.factories import id_number
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "性别", "身份证号", "手机号", "党委", "支部", "角色"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_department_uploads_confirms_and_downloads_the_year(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    engine = demo_page.services.engine
    async with engine.connect() as conn:
        branch = (
            await conn.execute(
                select(organisations.c.name, organisations.c.parent_id)
                .where(organisations.c.kind == "branch")
                .order_by(organisations.c.id)
            )
        ).first()
        township = await conn.scalar(
            select(organisations.c.name).where(organisations.c.id == branch.parent_id)
        )
        before = int(await conn.scalar(select(func.count()).select_from(people)) or 0)
    newcomers = [
        [
            "欧阳春",
            "女",
            id_number("522601", serial=731),
            "13985001234",
            township,
            branch.name,
            "党员",
        ],
        ["石开明", "", id_number("522601", serial=733), "", township, branch.name, "党员"],
    ]
    bad = workbook(
        [*newcomers, ["杨错", "男", "52260119560314000X", "", township, branch.name, "党员"]]
    )
    staff = (await demo_page.personas())["组织部"][0]
    tab = await desk_tab(chromium, demo_page, staff)
    await tab.click("nav >> text=名册")
    await tab.wait_for_url("**/desk/roster")
    await tab.set_input_files(
        "input[type=file]", files=[{"name": "花名册.xlsx", "mimeType": XLSX, "buffer": bad}]
    )
    await tab.click("text=上传并检查")
    await tab.wait_for_url("**/desk/roster/uploads/*")
    rejected = await tab.inner_text("table.rejected")
    assert "第 4 行" in rejected and "身份证号" in rejected
    assert "只导入通过检查的 2 行" in await tab.inner_text("main")
    await shot(tab, tmp_path, "desk-roster.png")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(people)) == before

    await tab.click("main a:text-is('重新上传')")
    await tab.wait_for_url("**/desk/roster")
    await tab.set_input_files(
        "input[type=file]",
        files=[{"name": "花名册-改好.xlsx", "mimeType": XLSX, "buffer": workbook(newcomers)}],
    )
    await tab.click("text=上传并检查")
    await tab.wait_for_url("**/desk/roster/uploads/*")
    await tab.click("text=确认导入这 2 人")
    await tab.wait_for_selector(".flash.done")
    assert "新增 2 人" in await tab.inner_text(".flash.done")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(people)) == before + 2

    await tab.click("nav >> text=名册")
    await tab.fill("input[name=q]", "欧阳")
    await tab.click("text=查找")
    await tab.wait_for_url("**/desk/roster?*")
    found = await tab.inner_text("table.list")
    assert "欧阳春" in found and branch.name in found and "党员" in found
    await tab.fill("input[name=q]", "")
    await tab.select_option("select[name=role]", "secretary")
    await tab.click("text=查找")
    await tab.wait_for_url("**role=secretary*")
    await shot(tab, tmp_path, "desk-roster-search.png")

    await tab.click("nav >> text=年度")
    await tab.wait_for_url("**/desk/year")
    assert "计划与完成" in await tab.inner_text("main")
    await shot(tab, tmp_path, "desk-year.png")
    async with tab.expect_download(timeout=60_000) as info:
        await tab.click("text=PDF（打印）")
    download = await info.value
    saved = tmp_path / "annual.pdf"
    await download.save_as(str(saved))
    assert saved.read_bytes().startswith(b"%PDF") and saved.stat().st_size > 20_000
