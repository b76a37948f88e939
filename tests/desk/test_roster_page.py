"""名册 on the desk: the department uploads a roster and reads every rejected line before
anything is written, then confirms exactly the file it checked (kept in the store, through
the importer and the authority act `roster.import`); hostile uploads are refused in
Chinese; everyone searches the people in their sight, masked as their role says."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import aiohttp
from openpyxl import Workbook
from sqlalchemy import func, select, update
from yarl import URL

from bangfu_bot.members.models import people, person_roles
from bangfu_bot.reports.models import roster_uploads
from tests.desk.test_login import Browser, browsers, csrf_of, signed_in  # noqa: F401
from tests.factories import id_number, make_person

HEADERS = ["姓名", "身份证号", "手机号", "党委", "支部", "角色"]


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def new_member(serial: int, name: str = "周新民") -> list[object]:
    return [name, id_number(serial=serial), "13912345678", "青山镇党委", "桃源村党支部", "党员"]


async def upload(browser: Browser, csrf: str, filename: str, data: Any) -> tuple[int, str, str]:
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    if isinstance(data, bytes):
        data = io.BytesIO(data)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    async with browser.session.post(browser.bot.url("/desk/roster/check"), data=form) as response:
        return response.status, str(response.url.path), await response.text()


async def counts(bot: Any) -> tuple[int, int]:
    """People on the roster, uploads kept."""
    async with bot.services.engine.connect() as conn:
        persons = await conn.scalar(select(func.count()).select_from(people))
        uploads = await conn.scalar(select(func.count()).select_from(roster_uploads))
    return int(persons or 0), int(uploads or 0)


async def department(bot: Any, county: Any, chat: Any, browsers: Any) -> tuple[Browser, str]:
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    status, _, html = await browser.get("/desk/roster")
    assert status == 200 and "上传名册" in html
    return browser, csrf_of(html)


def upload_id(path: str) -> int:
    found = re.fullmatch(r"/desk/roster/uploads/(\d+)", path)
    assert found, path
    return int(found.group(1))


async def test_every_rejected_line_is_shown_before_anything_is_written_then_confirmed(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before, _ = await counts(bot)
    bad = workbook(
        [
            new_member(501),
            ["王德福", county.wang_number, "13700001111", "青山镇党委", "桃源村党支部", "党员"],
            ["李错", "52010219560314999X", "", "青山镇党委", "桃源村党支部", "党员"],
            ["刘某", id_number(serial=502), "", "青山镇党委", "桃源村党支部", "村长"],
        ]
    )
    status, path, html = await upload(browser, csrf, "花名册.xlsx", bad)
    assert status == 200 and upload_id(path)
    assert "共 <strong>4</strong> 行" in html and "新增 1 人，已在名册 1 人" in html
    assert "第 4 行" in html and "身份证号" in html
    assert "第 5 行" in html and "「村长」不认识" in html
    assert "只导入通过检查的 2 行" in html and "什么也没有写入" in html
    assert (await counts(bot))[0] == before  # nothing written by the check

    good = workbook(
        [
            new_member(501),
            ["王德福", county.wang_number, "13700001111", "青山镇党委", "桃源村党支部", "党员"],
        ]
    )
    status, path, html = await upload(browser, csrf, "花名册-改好.xlsx", good)
    checked = upload_id(path)
    assert '有问题 <strong class="">0</strong> 行' in html and "确认导入这 2 人" in html
    assert (await counts(bot))[0] == before
    _, path, html = await browser.post(
        f"/desk/roster/uploads/{checked}/import", {"csrf": csrf_of(html)}
    )
    assert path == f"/desk/roster/uploads/{checked}"
    assert "导入完成：新增 1 人，更新 1 人" in html and "已于" in html
    async with bot.services.engine.connect() as conn:
        zhou = (await conn.execute(select(people).where(people.c.name == "周新民"))).one()
        wang_phone = await conn.scalar(select(people.c.phone).where(people.c.id == county.wang_id))
        row = (
            await conn.execute(select(roster_uploads).where(roster_uploads.c.id == checked))
        ).one()
    assert zhou.branch_id == county.tree.branch and wang_phone == "13700001111"
    assert row.imported_at is not None and row.skipped_invalid == 0
    # Once: a second confirm (a double click, a replayed form) imports nothing again.
    _, _, html = await browser.post(f"/desk/roster/uploads/{checked}/import", {"csrf": csrf})
    assert "已经导入过" in html
    assert (await counts(bot))[0] == before + 1


async def test_the_bad_rows_may_be_left_out_on_purpose(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before, _ = await counts(bot)
    data = workbook([new_member(503), ["李错", "123", "", "青山镇党委", "桃源村党支部", "党员"]])
    _, path, html = await upload(browser, csrf, "r.xlsx", data)
    checked = upload_id(path)
    # Without saying so, the bad row stops the whole file, as on the command line.
    _, _, html = await browser.post(f"/desk/roster/uploads/{checked}/import", {"csrf": csrf})
    assert "1 行有错，没有导入" in html
    assert (await counts(bot))[0] == before
    _, _, html = await browser.post(
        f"/desk/roster/uploads/{checked}/import", {"csrf": csrf, "skip_invalid": "1"}
    )
    assert "新增 1 人" in html and "跳过 1 行" in html
    assert (await counts(bot))[0] == before + 1


async def test_the_confirm_imports_the_stored_file_and_only_its_uploader_within_the_hour(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before, _ = await counts(bot)
    _, path, _ = await upload(
        browser,
        csrf,
        "r.csv",
        "姓名,身份证号,党委,支部\n".encode()
        + (f"吴甲,{id_number(serial=504)},青山镇党委,桃源村党支部\n".encode()),
    )
    checked = upload_id(path)
    # A file posted with the confirm is not read: the stored bytes are imported.
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", workbook([new_member(505, "冒名")]), filename="other.xlsx")
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱进",
        branch=None,
        roles=("department",),
        serial=885,
    )
    other, _ = await signed_in(bot, chat, browsers, "o-qian", "钱进", number)
    before += 1
    _, _, other_html = await other.get("/desk/roster")
    status, _, html = await other.get(f"/desk/roster/uploads/{checked}")
    assert status == 404 and "没有这份名册" in html  # another's upload is not theirs to see
    status, _, html = await other.post(
        f"/desk/roster/uploads/{checked}/import", {"csrf": csrf_of(other_html)}
    )
    assert status == 404 and "没有这份名册" in html
    assert (await counts(bot))[0] == before
    async with browser.session.post(
        bot.url(f"/desk/roster/uploads/{checked}/import"), data=form
    ) as response:
        html = await response.text()
    assert "新增 1 人" in html
    async with bot.services.engine.connect() as conn:
        names = set((await conn.execute(select(people.c.name))).scalars())
    assert "吴甲" in names and "冒名" not in names
    # An upload left for more than an hour must be checked again.
    _, path, _ = await upload(browser, csrf, "r.xlsx", workbook([new_member(506, "郑乙")]))
    late = upload_id(path)
    bot.clock.advance(minutes=61)
    browser, _ = await signed_in(bot, chat, browsers, "o-sun2", "孙丽", county.staff_number)
    _, _, html = await browser.get(f"/desk/roster/uploads/{late}")
    assert "超过 1 小时" in html and "确认导入" not in html
    _, _, html = await browser.post(f"/desk/roster/uploads/{late}/import", {"csrf": csrf_of(html)})
    assert "超过 1 小时" in html
    assert (await counts(bot))[0] == before + 1


async def test_a_roster_over_20_mb_is_refused_in_chinese_and_nothing_is_kept(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before = await counts(bot)
    # Its size declared: refused before a byte of it is read.
    status, _, html = await upload(browser, csrf, "big.xlsx", b"\0" * (21 * 1024 * 1024))
    assert status == 413 and "不能超过 20 MB" in html
    # Sent in chunks, size unknown: refused once the limit is passed.

    async def chunks() -> Any:
        for _ in range(21):
            yield b"\0" * (1024 * 1024)

    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", chunks(), filename="big.xlsx")
    async with browser.session.post(bot.url("/desk/roster/check"), data=form) as response:
        status, html = response.status, await response.text()
    assert status == 413 and "不能超过 20 MB" in html
    # Just over 20 MB of file in a form under the limit: the check refuses it unread.
    status, path, html = await upload(browser, csrf, "big.xlsx", b"\0" * (20 * 1024 * 1024 + 1))
    assert path == "/desk/roster" and "文件超过 20 MB" in html
    assert await counts(bot) == before
    # Still signed in, and the page still works.
    assert "上传名册" in (await browser.get("/desk/roster"))[2]


async def test_not_a_spreadsheet_formulas_and_no_file_are_refused_plainly(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before = await counts(bot)
    _, path, html = await upload(browser, csrf, "roster.exe", b"MZ\x90\x00")
    assert path == "/desk/roster" and "只能上传 Excel" in html
    _, path, html = await upload(browser, csrf, "花名册.xlsx", b"%PDF-1.4 not a workbook")
    assert path == "/desk/roster" and 'class="flash refused"' in html
    _, path, html = await browser.post("/desk/roster/check", {"csrf": csrf})
    assert path == "/desk/roster" and "请先选一个名册文件" in html
    assert await counts(bot) == before
    # Formula cells are read as their text, never as the value Excel cached for them.
    data = workbook(
        [
            [
                '=HYPERLINK("http://evil.example","周")',
                id_number(serial=507),
                "",
                "青山镇党委",
                "桃源村党支部",
                "党员",
            ],
            ["吴丙", id_number(serial=508), "=1+13912345677", "青山镇党委", "桃源村党支部", "党员"],
            ["陈丁", '="' + id_number(serial=509) + '"', "", "青山镇党委", "桃源村党支部", "党员"],
        ]
    )
    _, path, html = await upload(browser, csrf, "公式.xlsx", data)
    assert [f"第 {n} 行" in html for n in (2, 3, 4)] == [True, True, True]
    assert "通过检查 <strong>0</strong> 行" in html and "不能导入" in html
    assert "evil.example" not in html  # the cell's text is not echoed, not a link
    assert (await counts(bot))[0] == before[0]


async def test_only_the_department_uploads(bot: Any, county: Any, chat: Any, browsers: Any) -> None:
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await browser.get("/desk/roster")
    assert "上传名册" not in html
    status, path, html = await upload(browser, csrf_of(html), "r.xlsx", workbook([new_member(510)]))
    assert path == "/desk/roster" and "「导入名册」不归您办" in html
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    watcher, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)
    _, _, html = await watcher.get("/desk/roster")
    status, _, html = await upload(watcher, csrf_of(html), "r.xlsx", workbook([new_member(510)]))
    assert status == 403 and "只能查看" in html
    status, _, html = await upload(browsers(), "x", "r.xlsx", workbook([new_member(510)]))
    assert status == 403 and "请先登录" in html
    status, _, html = await browsers().post("/desk/roster/uploads/1/import", {"csrf": "x"})
    assert status == 403
    assert (await counts(bot))[1] == 0


async def test_people_are_searched_within_sight_masked_by_role_and_taken_literally(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    wang = county.wang_number
    masked = wang[:3] + "*" * 13 + wang[-2:]
    officer, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await officer.get("/desk/roster", q="王德福")
    assert "王德福" in html and masked in html and wang not in html
    assert "13800138000" in html  # the township calls its members
    _, _, html = await officer.get("/desk/roster", role="secretary")
    assert "张建国" in html and "王德福" not in html and "支部书记" in html
    for hostile in ("' OR 1=1 --", "%", "_", "\\", "王%"):
        _, _, html = await officer.get("/desk/roster", q=hostile)
        assert "没有找到符合条件的人" in html, hostile
    _, _, html = await officer.get("/desk/roster", role="member' OR '1'='1", page="1 OR 1")
    assert "王德福" in html  # an unknown role or page is no filter at all
    secretary, _ = await signed_in(
        bot, chat, browsers, "o-zhang", "张建国", county.secretary_number
    )
    _, _, html = await secretary.get("/desk/roster", township=str(county.tree.committee))
    assert "王德福" in html and "李大山" not in html  # their branch only
    staff, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await staff.get("/desk/roster", q=wang)
    assert wang in html and "已绑定" not in html
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    watcher, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)
    _, _, html = await watcher.get("/desk/roster", q="王德福")
    assert masked in html and "138****8000" in html and "13800138000" not in html
    async with bot.services.engine.connect() as conn:
        secretaries = await conn.scalar(
            select(func.count()).select_from(person_roles).where(person_roles.c.role == "secretary")
        )
    _, _, html = await staff.get("/desk/roster")
    assert f'role=secretary">{secretaries} 人' in html


async def test_nobody_is_sent_to_the_login_page(bot: Any, browsers: Any) -> None:
    for path in ("/desk/roster", "/desk/roster/uploads/1"):
        status, where, _ = await browsers().get(path)
        assert (status, where) == (200, "/desk/login")


async def test_the_stored_bytes_are_the_checked_ones(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    """A row changed in the store after the check (its hash no longer matches) is refused."""
    browser, csrf = await department(bot, county, chat, browsers)
    _, path, _ = await upload(browser, csrf, "r.xlsx", workbook([new_member(511)]))
    checked = upload_id(path)
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            update(roster_uploads)
            .where(roster_uploads.c.id == checked)
            .values(data=workbook([new_member(512, "换人")]))
        )
    before, _ = await counts(bot)
    _, _, html = await browser.post(f"/desk/roster/uploads/{checked}/import", {"csrf": csrf})
    assert 'class="flash refused"' in html and (await counts(bot))[0] == before


async def test_two_confirms_at_once_import_once(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, csrf = await department(bot, county, chat, browsers)
    before, _ = await counts(bot)
    _, path, _ = await upload(browser, csrf, "r.xlsx", workbook([new_member(513, "双击")]))
    checked = upload_id(path)
    second = Browser(bot)
    second.session.cookie_jar.update_cookies(
        {c.key: c.value for c in browser.session.cookie_jar}, response_url=URL(bot.url("/desk"))
    )
    try:
        answers = await asyncio.gather(
            browser.post(f"/desk/roster/uploads/{checked}/import", {"csrf": csrf}),
            second.post(f"/desk/roster/uploads/{checked}/import", {"csrf": csrf}),
        )
    finally:
        await second.close()
    texts = [html for _, _, html in answers]
    done = [t for t in texts if 'class="flash done"' in t]
    refused = [t for t in texts if 'class="flash refused"' in t]
    assert len(done) == len(refused) == 1 and "已经导入过" in refused[0]
    assert (await counts(bot))[0] == before + 1
