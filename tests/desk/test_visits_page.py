"""走访 on the desk: the campaigns and one campaign's progress by township and branch, with
the households not yet visited, as each role sees them (and the 工作台's panel)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import insert

from bangfu_bot.visits.models import visit_campaigns, visits
from tests.desk.test_login import browsers, signed_in  # noqa: F401 - fixture
from tests.factories import _org, make_person


@dataclass
class Campaign:
    """A Spring Festival campaign over three households in two townships."""

    id: int
    far_name: str


async def a_campaign(bot: Any, county: Any) -> Campaign:
    """2027年春节走访慰问, due 1 February 2027: 王德福 (桃源村) visited; 李大山 (李家村) and
    钱老汉 of another township (河西镇) not yet."""
    engine, now = bot.services.engine, bot.clock.now()
    async with engine.begin() as conn:
        other_town = await _org(conn, "committee", "河西镇党委", county.tree.county)
        far_branch = await _org(conn, "branch", "河西村党支部", other_town)
    far, _ = await make_person(engine, now, name="钱老汉", branch=far_branch, serial=905)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(visit_campaigns).values(
                key="spring_festival:2027-02-06",
                occasion="spring_festival",
                name="2027年春节走访慰问",
                occasion_on=date(2027, 2, 6),
                deadline=date(2027, 2, 1),
                ledger_year=2026,
                cash_fen=50_000,
                goods="米一袋、油一桶",
                reminder_days=[14, 7, 3],
                late_reports=True,
                opened_at=now,
            )
        )
        campaign = int(result.inserted_primary_key[0])
        for person, branch, done in (
            (county.wang_id, county.tree.branch, True),
            (county.li_id, county.tree.other_branch, False),
            (far, far_branch, False),
        ):
            await conn.execute(
                insert(visits).values(
                    campaign_id=campaign,
                    person_id=person,
                    branch_id=branch,
                    source="ledger",
                    assignee_id=county.secretary_id if branch == county.tree.branch else None,
                    assigned_as="secretary" if branch == county.tree.branch else "nobody",
                    visited_on=date(2026, 11, 9) if done else None,
                    cash_fen=50_000 if done else None,
                )
            )
    return Campaign(campaign, "钱老汉")


def progress(html: str) -> str:
    """The campaign list's figures: households listed / visited."""
    row = re.search(r"2027年春节走访慰问.*?</tr>", html, re.S)
    assert row, html
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    return "/".join(cells[:2])


async def test_the_department_sees_the_county(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    campaign = await a_campaign(bot, county)
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)

    status, _, html = await browser.get("/desk/visits")
    assert status == 200 and "2027年春节走访慰问" in html
    assert progress(html) == "3/1" and "33%" in html and "2027年2月1日" in html
    assert "83 天" in html  # 10 November 2026 to 1 February 2027
    status, _, html = await browser.get(f"/desk/visits/{campaign.id}")
    assert status == 200 and "还没走访的户（2）" in html
    pending = html.split("还没走访的户")[1]
    assert "李大山" in pending and "钱老汉" in pending and "王德福" not in pending
    assert "河西镇党委" in html and "青山镇党委" in html and "李家村党支部" in html
    assert "13800138000" in pending  # the department calls people
    assert "每户 500元" in html and "米一袋、油一桶" in html
    # The 工作台's panel: progress against the deadline, a link to 走访.
    _, _, home = await browser.get("/desk")
    assert "走访进度" in home and f'href="/desk/visits/{campaign.id}"' in home
    assert "1/3户" in home and "还剩83天" in home


async def test_a_township_officer_sees_their_township_only(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    campaign = await a_campaign(bot, county)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)

    _, _, html = await browser.get("/desk/visits")
    assert progress(html) == "2/1"
    _, _, html = await browser.get(f"/desk/visits/{campaign.id}")
    assert "还没走访的户（1）" in html and "李大山" in html
    assert "钱老汉" not in html and "河西" not in html


async def test_a_secretary_sees_their_branch_only(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    campaign = await a_campaign(bot, county)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhang", "张建国", county.secretary_number)

    _, _, html = await browser.get("/desk/visits")
    assert progress(html) == "1/1" and "已走访完" in html
    _, _, html = await browser.get(f"/desk/visits/{campaign.id}")
    assert "还没走访的户（0）" in html and "都走访完了" in html
    assert "李大山" not in html and "钱老汉" not in html and "李家村" not in html
    _, _, home = await browser.get("/desk")
    assert "1/1户" in home


async def test_the_supervision_group_reads_masked_phones(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    campaign = await a_campaign(bot, county)
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    browser, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)

    _, _, html = await browser.get(f"/desk/visits/{campaign.id}")
    assert "还没走访的户（2）" in html and "138****8000" in html
    assert "13800138000" not in html and "<form" not in html.split("</header>")[1]
    status, _, html = await browser.get(f"/desk/visits/{campaign.id + 1}")
    assert status == 404 and "没有这次走访" in html


async def test_no_campaign_yet(bot: Any, county: Any, chat: Any, browsers: Any) -> None:
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await browser.get("/desk/visits")
    assert "还没有开展过走访" in html
    _, _, home = await browser.get("/desk")
    assert "走访进度" not in home


@pytest.mark.parametrize("path", ["/desk/visits", "/desk/visits/1"])
async def test_nobody_is_sent_to_the_login_page(bot: Any, browsers: Any, path: str) -> None:
    status, where, html = await browsers().get(path)
    assert (status, where) == (200, "/desk/login") and "登录帮扶工作台" in html
