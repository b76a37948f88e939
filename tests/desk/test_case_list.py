"""案件's list a page at a time: fifty cases a page, newest first, 上一页 and 下一页 keep the
filters; a page number typed past the last or not a number is a page, never an error."""

from __future__ import annotations

import re
from typing import Any

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.reports.cases import LIST_LIMIT
from tests.desk.test_login import browsers, make_case, signed_in  # noqa: F401 - fixture
from tests.ledger.test_export import add_committee


def listed(html: str) -> list[int]:
    """The case numbers the list shows, in order."""
    return [int(n) for n in re.findall(r'<td class="num"><a href="/desk/cases/(\d+)">', html)]


async def test_fifty_a_page_newest_first_and_the_pages_keep_the_filters(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    made = [await make_case(bot, county, S.REPORTED) for _ in range(LIST_LIMIT + 5)]
    other = await make_case(bot, county, S.SUBMITTED)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)

    _, _, first = await browser.get("/desk/cases?status=reported")
    assert listed(first) == sorted(made, reverse=True)[:LIST_LIMIT]
    assert f"第 1 页，本页 {LIST_LIMIT} 件" in first and "上一页" not in first
    assert 'href="/desk/cases?status=reported&amp;page=2">下一页' in first

    _, _, second = await browser.get("/desk/cases?status=reported&page=2")
    assert listed(second) == sorted(made, reverse=True)[LIST_LIMIT:]
    assert other not in listed(second) and "下一页" not in second
    assert 'href="/desk/cases?status=reported&amp;page=1">上一页' in second

    for page in ("99", "0", "abc", "1e9"):
        status, _, html = await browser.get(f"/desk/cases?status=reported&page={page}")
        assert status == 200, page
        assert listed(html) == ([] if page == "99" else sorted(made, reverse=True)[:LIST_LIMIT])
    _, _, everything = await browser.get("/desk/cases")
    assert listed(everything)[0] == other


async def test_the_branches_to_choose_are_the_chosen_townships(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    await add_committee(bot.services.engine, county.tree.county, "白水镇党委", "白水村党支部")
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await browser.get("/desk/cases")
    branch = html.split('<select name="branch">', 1)[1].split("</select>", 1)[0]
    assert "先选乡镇" in branch and "桃源村党支部" not in branch and "白水村党支部" not in branch
    _, _, html = await browser.get(f"/desk/cases?township={county.tree.committee}")
    branch = html.split('<select name="branch">', 1)[1].split("</select>", 1)[0]
    assert "桃源村党支部" in branch and "白水村党支部" not in branch
    # An officer sees one township: its branches at once.
    officer, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await officer.get("/desk/cases")
    branch = html.split('<select name="branch">', 1)[1].split("</select>", 1)[0]
    assert "桃源村党支部" in branch and "先选乡镇" not in branch
