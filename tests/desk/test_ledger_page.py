"""台账 on the desk: the year's ledger by township and category with the review's progress,
as each role sees it, and the download — the same workbook as `bangfu-bot export ledger`."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from bangfu_bot.ledger.export import export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations
from tests.desk.test_login import Browser, browsers, signed_in  # noqa: F401 - fixtures
from tests.factories import make_person
from tests.ledger.test_export import add_committee, add_entry, values


@dataclass
class Ledger:
    """2026's ledger: 王德福 (桃源村, 因病, reviewed), 李大山 (李家村, 三老, review opened),
    张三 (桃源村, 因病, exited) in 青山镇; 刘德明 (白水村, 企业下岗) in 白水镇; 2025 has
    王德福 alone."""

    baishui_branch: int
    baishui: int
    liu: int


@pytest.fixture
async def ledger(bot: Any, county: Any) -> Ledger:
    engine, now = bot.services.engine, bot.clock.now()
    branch = await add_committee(engine, county.tree.county, "白水镇党委", "白水村党支部")
    async with engine.connect() as conn:
        baishui = int(
            await conn.scalar(
                organisations.select()
                .with_only_columns(organisations.c.parent_id)
                .where(organisations.c.id == branch)
            )
        )
    liu, _ = await make_person(engine, now, name="刘德明", branch=branch, serial=104)
    zhang, _ = await make_person(engine, now, name="张三", branch=county.tree.branch, serial=105)
    await add_entry(engine, county.wang_id, year=2026, category="因病")
    await add_entry(engine, county.li_id, year=2026, category="三老")
    await add_entry(engine, zhang, year=2026, category="因病", status="exited", exit_reason="去世")
    await add_entry(engine, liu, year=2026, category="企业下岗")
    await add_entry(engine, county.wang_id, year=2025, category="三老")
    async with engine.begin() as conn:
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.year == 2026, ledger_entries.c.status == "active")
            .where(ledger_entries.c.person_id != liu)
            .values(review_opened_at=now)
        )
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.year == 2026, ledger_entries.c.person_id == county.wang_id)
            .values(reviewed_at=now)
        )
    return Ledger(branch, baishui, liu)


async def as_role(bot: Any, county: Any, chat: Any, browsers: Any, role: str) -> Browser:
    """A browser signed in as the department, the township officer, the secretary or the
    supervision group."""
    if role == "supervisor":
        _, number = await make_person(
            bot.services.engine,
            bot.clock.now(),
            name="钱监督",
            branch=None,
            roles=("supervisor",),
            serial=901,
        )
        who = ("o-qian", "钱监督", number)
    else:
        who = {
            "department": ("o-sun", "孙丽", county.staff_number),
            "committee": ("o-zhao", "赵明", county.officer_number),
            "secretary": ("o-zhang", "张建国", county.secretary_number),
        }[role]
    browser, _ = await signed_in(bot, chat, browsers, *who)
    return browser


def cells(html: str) -> str:
    """The page's text, tags dropped and spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def download(browser: Browser, path: str, **params: str) -> tuple[int, bytes, str]:
    async with browser.session.get(browser.bot.url(path), params=params) as response:
        return (
            response.status,
            await response.read(),
            response.headers.get("Content-Disposition", ""),
        )


async def test_the_department_sees_the_county_by_township_and_category(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")

    status, path, html = await browser.get("/desk/ledger")

    assert (status, path) == (200, "/desk/ledger")
    text = cells(html)
    assert "2026年困难党员台账" in text and "全县" in text
    # Categories largest first, as in the workbook's 汇总 sheet.
    assert re.search(r"因病 .*三老 .*企业下岗", text)
    assert "白水镇党委 0 0 1 1 1 0 1 0 0 1" in text
    assert "青山镇党委 2 1 0 3 2 1 2 2 1 1" in text
    assert "合计 2 1 1 4 3 1 3 2 1 2" in text
    assert "已复核 1 人，应复核 3 人，还有 2 人待复核" in text
    # Counts link to the case list, filtered.
    committee = county.tree.committee
    assert f'href="/desk/cases?township={committee}&amp;category=%E5%9B%A0%E7%97%85"' in html
    assert f'href="/desk/cases?township={committee}&amp;status=exited"' in html
    assert 'href="/desk/ledger.xlsx?year=2026"' in html
    assert f'href="/desk/ledger.xlsx?year=2026&amp;township={ledger.baishui}"' in html
    # Another year from the selector.
    _, _, html = await browser.get("/desk/ledger", year="2025")
    assert "2025年困难党员台账" in html and "合计 1 1 1 0 1 0 0 1" in cells(html)
    assert "<option selected>2025</option>" in html


async def test_a_township_officer_sees_their_township_and_takes_only_its_workbook(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger
) -> None:
    browser = await as_role(bot, county, chat, browsers, "committee")

    _, _, html = await browser.get("/desk/ledger")

    text = cells(html)
    assert "青山镇党委 2 1 3 2 1" in text and "白水镇" not in text and "企业下岗" not in text
    assert "本镇表格" not in html
    status, body, disposition = await download(browser, "/desk/ledger.xlsx", year="2026")
    assert status == 200 and "filename*=UTF-8''" in disposition
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["汇总", "青山镇党委"]
    # Another township's workbook by editing the address: refused, in Chinese.
    status, body, _ = await download(
        browser, "/desk/ledger.xlsx", year="2026", township=str(ledger.baishui)
    )
    assert status == 403 and "不在您的管辖范围" in body.decode()
    status, _, _ = await download(browser, "/desk/ledger.xlsx", township="' OR 1=1 --")
    assert status == 403


async def test_a_secretary_sees_their_branch_and_prints_rather_than_downloads(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger
) -> None:
    browser = await as_role(bot, county, chat, browsers, "secretary")

    _, _, html = await browser.get("/desk/ledger", year="2026")

    text = cells(html)
    # 桃源村: 王德福 (因病, reviewed) and 张三 (因病, exited); 李大山 is 李家村's.
    assert "合计 2 2 1 1 1 1 1 0" in text and "三老" not in text
    assert "ledger.xlsx" not in html and "请打印本页" in html
    status, body, _ = await download(browser, "/desk/ledger.xlsx", year="2026")
    assert status == 403 and "支部书记请在台账页面上查看并打印" in body.decode()


async def test_the_supervision_group_reads_the_county_and_downloads_it(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger
) -> None:
    browser = await as_role(bot, county, chat, browsers, "supervisor")

    _, _, html = await browser.get("/desk/ledger", year="2026")

    assert "合计 2 1 1 4" in cells(html) and "只能查看" in html
    status, body, _ = await download(browser, "/desk/ledger.xlsx", year="2026")
    assert status == 200
    assert load_workbook(io.BytesIO(body)).sheetnames == ["汇总", "白水镇党委", "青山镇党委"]


@pytest.mark.parametrize("path", ["/desk/ledger", "/desk/ledger.xlsx?year=2026"])
async def test_nobody_is_sent_to_the_login_page(
    bot: Any, county: Any, browsers: Any, ledger: Ledger, path: str
) -> None:
    status, where, html = await browsers().get(path)
    assert (status, where) == (200, "/desk/login") and "登录帮扶工作台" in html


async def test_the_download_has_the_cells_of_the_cli_export(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger, tmp_path: Path
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")
    today = bot.clock.now().astimezone(bot.services.settings.tz).date()
    cli_file = tmp_path / "cli.xlsx"
    await export_ledger(bot.services.engine, year=2026, out=cli_file, today=today)

    status, body, disposition = await download(browser, "/desk/ledger.xlsx", year="2026")

    assert status == 200 and 'filename="ledger-2026.xlsx"' in disposition
    assert "2026%E5%B9%B4" in disposition  # 2026年… in the RFC 5987 name
    desk = load_workbook(io.BytesIO(body))
    cli = load_workbook(cli_file)
    assert desk.sheetnames == cli.sheetnames == ["汇总", "白水镇党委", "青山镇党委"]
    for name in cli.sheetnames:
        assert values(desk[name]) == values(cli[name])
    assert values(desk["汇总"])[2:] == [
        ["白水镇党委", 0, 0, 1, 1],
        ["青山镇党委", 2, 1, 0, 3],
        ["合计", 2, 1, 1, 4],
    ]
    # One township's, from its row's link: the CLI's --township file.
    await export_ledger(
        bot.services.engine, year=2026, out=cli_file, township="白水镇党委", today=today
    )
    _, body, _ = await download(
        browser, "/desk/ledger.xlsx", year="2026", township=str(ledger.baishui)
    )
    desk, cli = load_workbook(io.BytesIO(body)), load_workbook(cli_file)
    assert desk.sheetnames == cli.sheetnames == ["汇总", "白水镇党委"]
    for name in cli.sheetnames:
        assert values(desk[name]) == values(cli[name])


async def test_hostile_years_are_ignored(
    bot: Any, county: Any, chat: Any, browsers: Any, ledger: Ledger
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")
    for hostile in ("' OR 1=1 --", "%", "_", "2026; DROP TABLE ledger_entries", "99999"):
        status, _, html = await browser.get("/desk/ledger", year=hostile)
        assert status == 200 and "2026年困难党员台账" in html and "合计 2 1 1 4" in cells(html)
