"""审计 on the desk: every transition of cases and loans (the desk's own acts among them,
channel 网页), filtered, paged, within each role's sight; the workbook for the supervision
group and the department; filters typed to break the SQL are only text."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, insert, select

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events
from bangfu_bot.loans.models import loan_events, loans
from bangfu_bot.members.models import organisations
from tests.desk.test_ledger_page import as_role, cells, download
from tests.desk.test_login import browsers, csrf_of, make_case  # noqa: F401 - fixtures
from tests.desk.test_notices_page import TRAINING, hidden
from tests.desk.test_notices_page import department as notices_department
from tests.desk.test_roster_page import new_member, upload, upload_id, workbook
from tests.desk.test_year_page import PLAN
from tests.factories import make_person
from tests.ledger.test_export import AUDIT_HEADERS, add_case, add_committee, add_event, values


def day(n: int) -> datetime:
    """10:00 in the county on the nth of November 2026."""
    return datetime(2026, 11, n, 2, 0, tzinfo=UTC)


@dataclass
class Trail:
    """王德福's case (桃源村: submitted by chat, evaluated by his secretary and approved by
    赵明 on the desk), 李大山's (李家村, submitted), 刘德明's (白水镇, submitted) and
    王德福's loan (applied by chat, approved on the desk by 赵明): seven transitions."""

    wang_case: int
    li_case: int
    liu_case: int
    loan: int
    baishui: int


@pytest.fixture
async def trail(bot: Any, county: Any) -> Trail:
    engine, now = bot.services.engine, bot.clock.now()
    branch = await add_committee(engine, county.tree.county, "白水镇党委", "白水村党支部")
    async with engine.connect() as conn:
        baishui = int(
            await conn.scalar(select(organisations.c.parent_id).where(organisations.c.id == branch))
        )
    liu, _ = await make_person(engine, now, name="刘德明", branch=branch, serial=104)
    wang, li, zhao = county.wang_id, county.li_id, county.officer_id
    wang_case = await add_case(engine, wang, county.tree.branch)
    await add_event(engine, wang_case, wang, "member", "chat", day(1), None, "submitted")
    await add_event(
        engine,
        wang_case,
        county.secretary_id,
        "secretary",
        "web",
        day(3),
        "submitted",
        "evaluated_passed",
        "赞成12票",
    )
    await add_event(
        engine, wang_case, zhao, "committee", "web", day(5), "reported", "approved", "符合条件"
    )
    li_case = await add_case(engine, li, county.tree.other_branch)
    await add_event(engine, li_case, li, "member", "chat", day(2), None, "submitted")
    liu_case = await add_case(engine, liu, branch)
    await add_event(engine, liu_case, liu, "member", "chat", day(4), None, "submitted")
    async with engine.begin() as conn:
        loan = int(
            (
                await conn.execute(
                    insert(loans).values(
                        person_id=wang,
                        branch_id=county.tree.branch,
                        status="approved",
                        amount_fen=500_000,
                        project="生猪养殖",
                        earnings="年底出栏10头",
                        schedule_kind="bullet",
                        term_years=2,
                        annual_rate_bp=0,
                        created_at=day(6),
                        updated_at=day(7),
                    )
                )
            ).inserted_primary_key[0]
        )
        await conn.execute(
            insert(loan_events),
            [
                dict(
                    loan_id=loan,
                    actor_id=wang,
                    role="member",
                    channel="chat",
                    at=day(6),
                    from_status=None,
                    to_status="applied",
                ),
                dict(
                    loan_id=loan,
                    actor_id=zhao,
                    role="committee",
                    channel="web",
                    at=day(7),
                    from_status="applied",
                    to_status="approved",
                ),
            ],
        )
    return Trail(wang_case, li_case, liu_case, loan, baishui)


def rows_of(html: str) -> list[str]:
    """The audit table's rows as text, in the page's order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        cells(row).strip()
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
        if 'class="muted"' not in row
    ]


async def test_the_department_sees_every_transition_newest_first_and_filters(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")

    status, _, html = await browser.get("/desk/audit")

    assert status == 200 and "共 7 条" in html
    rows = rows_of(html)
    assert rows[0] == (
        f"2026-11-07 10:00 借款{trail.loan} 王德福 赵明 党委委员 网页 "
        "等党委审批 党委已批准，等组织部实地考核"
    )
    assert rows[-1].startswith(f"2026-11-01 10:00 案件{trail.wang_case} 王德福 王德福 党员 微信")
    assert [row[:16] for row in rows] == sorted((row[:16] for row in rows), reverse=True)
    assert f'href="/desk/cases/{trail.wang_case}"' in html
    assert "下载审计记录（Excel，7 条）" in html

    async def total(**query: str) -> int:
        _, _, page = await browser.get("/desk/audit", **query)
        found = re.search(r"共 (\d+) 条", page)
        assert found, page
        assert len(rows_of(page)) == int(found.group(1))
        return int(found.group(1))

    assert await total(channel="web") == 3
    assert await total(kind="loan") == 2
    assert await total(act="case:approved") == 1
    assert await total(act="loan:approved") == 1
    assert await total(actor="赵明") == 2
    assert await total(actor="德") == 3  # part of a name: 王德福 twice, 刘德明 once
    assert await total(township=str(trail.baishui)) == 1
    assert await total(case=str(trail.wang_case)) == 3
    assert await total(loan=str(trail.loan)) == 2
    assert await total(since="2026-11-02", until="2026-11-04") == 3
    assert await total(since="2026-11-02", until="2026-11-04", channel="chat") == 2
    # The chosen filters stay in the form and in the download link.
    _, _, html = await browser.get("/desk/audit", channel="web", actor="赵明")
    assert '<option value="web" selected>网页</option>' in html
    assert "筛选条件：渠道：网页，操作人含“赵明”" in html  # on paper, where the form is not
    assert 'name="actor" size="8" maxlength="40" value="赵明"' in html
    assert 'href="/desk/audit.xlsx?actor=%E8%B5%B5%E6%98%8E&amp;channel=web"' in html


async def test_the_workbook_holds_the_filtered_rows_oldest_first(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")

    status, body, disposition = await download(browser, "/desk/audit.xlsx", channel="web")

    assert status == 200 and 'filename="audit.xlsx"' in disposition
    assert "%E5%AE%A1%E8%AE%A1" in disposition  # 审计记录.xlsx
    rows = values(load_workbook(io.BytesIO(body))["审计记录"])
    assert rows[0] == AUDIT_HEADERS
    assert rows[1:] == [
        [
            "2026-11-03 10:00",
            trail.wang_case,
            "王德福",
            "张建国",
            "支部书记",
            "网页",
            "已申请",
            "评议通过",
            "赞成12票",
        ],
        [
            "2026-11-05 10:00",
            trail.wang_case,
            "王德福",
            "赵明",
            "党委委员",
            "网页",
            "已上报",
            "已批准",
            "符合条件",
        ],
        [
            "2026-11-07 10:00",
            f"借款{trail.loan}",
            "王德福",
            "赵明",
            "党委委员",
            "网页",
            "等党委审批",
            "党委已批准，等组织部实地考核",
        ],
    ]
    _, body, _ = await download(browser, "/desk/audit.xlsx")
    assert len(values(load_workbook(io.BytesIO(body))["审计记录"])) == 1 + 7


async def test_a_township_officer_sees_their_township_whatever_the_address_says(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "committee")

    _, _, html = await browser.get("/desk/audit")

    assert "共 6 条" in html and "刘德明" not in html and "青山镇党委" in html
    assert 'name="township"' not in html and "audit.xlsx" not in html
    _, _, html = await browser.get("/desk/audit", township=str(trail.baishui))
    assert "共 6 条" in html and "刘德明" not in html
    _, _, html = await browser.get("/desk/audit", case=str(trail.liu_case))
    assert "共 0 条" in html and "没有符合条件的记录" in html
    status, body, _ = await download(browser, "/desk/audit.xlsx")
    assert status == 403 and "只给监督小组和县委组织部下载" in body.decode()


async def test_a_secretary_sees_their_branch(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "secretary")

    _, _, html = await browser.get("/desk/audit")

    # 王德福's case and loan (桃源村); not 李大山 (李家村) nor 刘德明 (白水镇).
    assert "共 5 条" in html and "李大山" not in html and "刘德明" not in html
    assert (await download(browser, "/desk/audit.xlsx"))[0] == 403


async def test_the_supervision_group_reads_all_and_takes_the_workbook(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "supervisor")

    _, _, html = await browser.get("/desk/audit", kind="case")

    assert "共 5 条" in html and "只能查看" in html and "刘德明" in html
    status, body, _ = await download(browser, "/desk/audit.xlsx", kind="case")
    assert status == 200
    rows = values(load_workbook(io.BytesIO(body))["审计记录"])
    assert [row[2] for row in rows[1:]] == ["王德福", "李大山", "王德福", "刘德明", "王德福"]


@pytest.mark.parametrize("path", ["/desk/audit", "/desk/audit.xlsx"])
async def test_nobody_is_sent_to_the_login_page(
    bot: Any, county: Any, browsers: Any, trail: Trail, path: str
) -> None:
    status, where, html = await browsers().get(path)
    assert (status, where) == (200, "/desk/login") and "登录帮扶工作台" in html


async def test_sql_metacharacters_in_the_filters_are_plain_text(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    browser = await as_role(bot, county, chat, browsers, "department")

    for hostile in ("' OR 1=1 --", "%", "_", "\\", '" OR ""="', "赵明' --"):
        status, _, html = await browser.get("/desk/audit", actor=hostile)
        assert status == 200 and "共 0 条" in html, hostile
        status, body, _ = await download(browser, "/desk/audit.xlsx", actor=hostile)
        assert status == 200 and values(load_workbook(io.BytesIO(body))["审计记录"]) == [
            AUDIT_HEADERS
        ]
    _, _, html = await browser.get("/desk/audit", actor="' OR 1=1 --")
    assert 'value="&#39; OR 1=1 --"' in html
    # Where a number or a choice is due, anything else is ignored: the whole trail.
    for name in ("case", "loan", "township", "since", "until", "act", "kind", "channel", "page"):
        for hostile in ("1 OR 1=1", "' OR '1'='1", "%", "_", "case:approved' --"):
            status, _, html = await browser.get("/desk/audit", **{name: hostile})
            assert status == 200 and "共 7 条" in html, (name, hostile)
    async with bot.services.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(case_events)) == 5
        assert await conn.scalar(select(func.count()).select_from(loan_events)) == 2


async def test_fifty_a_page_and_the_pages_keep_the_filters(
    bot: Any, county: Any, chat: Any, browsers: Any, trail: Trail
) -> None:
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            insert(case_events),
            [
                dict(
                    case_id=trail.li_case,
                    actor_id=county.secretary_id,
                    role="secretary",
                    channel="chat",
                    at=day(8) + timedelta(minutes=n),
                    from_status="submitted",
                    to_status="under_evaluation",
                    reason=f"第{n}次",
                )
                for n in range(60)
            ],
        )
    browser = await as_role(bot, county, chat, browsers, "department")

    _, _, html = await browser.get("/desk/audit", channel="chat")

    assert "共 64 条，第 1 / 2 页" in html and len(rows_of(html)) == 50
    assert "第59次" in rows_of(html)[0]
    assert 'href="/desk/audit?channel=chat&amp;page=2"' in html
    _, _, html = await browser.get("/desk/audit", channel="chat", page="2")
    rows = rows_of(html)
    assert len(rows) == 14 and "第9次" in rows[0] and "2026-11-01" in rows[-1]
    assert 'href="/desk/audit?channel=chat&amp;page=1"' in html
    _, _, html = await browser.get("/desk/audit", channel="chat", page="99")
    assert "共 64 条" in html and rows_of(html) == []


async def test_an_act_on_the_desk_is_in_the_audit_as_web(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    case_id = await make_case(bot, county, S.REPORTED)
    officer = await as_role(bot, county, chat, browsers, "committee")
    _, _, html = await officer.get(f"/desk/cases/{case_id}")
    await officer.post(
        f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )

    _, _, html = await officer.get("/desk/audit", channel="web")

    assert rows_of(html) == [
        f"2026-11-10 10:00 案件{case_id} 王德福 赵明 党委委员 网页 已上报 已批准"
    ]


async def test_the_departments_notices_rosters_and_plans_are_in_the_county_audit(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await notices_department(bot, county, chat, browsers)
    _, _, html = await browser.post("/desk/notices/preview", {"csrf": token, **TRAINING})
    _, notice_path, _ = await browser.post("/desk/notices/send", hidden(html, "/desk/notices/send"))
    notice = int(notice_path.rsplit("/", 1)[1])
    _, path, html = await upload(browser, token, "花名册.xlsx", workbook([new_member(601)]))
    roster = upload_id(path)
    await browser.post(f"/desk/roster/uploads/{roster}/import", {"csrf": csrf_of(html)})
    await browser.post("/desk/year/plan", {"csrf": token, **PLAN})

    _, _, html = await browser.get("/desk/audit")

    rows = [row.split(" ", 2)[2] for row in rows_of(html)]  # after the time
    assert len(rows) == 3 and "共 3 条" in html, rows
    assert f'href="/desk/notices/{notice}">通知{notice}' in html
    assert f"通知{notice} 孙丽 组织部 网页 发出通知 青山镇党委" in rows, rows
    assert any(r.startswith(f"名册{roster} 孙丽 组织部 网页 导入名册 导入完成") for r in rows)
    assert "年度计划 孙丽 组织部 网页 定年度计划 2026" in rows
    _, _, html = await browser.get("/desk/audit", act="notice:sent")
    assert "共 1 条" in html and "发出通知" in rows_of(html)[0]
    _, _, html = await browser.get("/desk/audit", kind="plan")
    assert "共 1 条" in html and "定年度计划" in rows_of(html)[0]
    _, _, html = await browser.get("/desk/audit", kind="case")
    assert "共 0 条" in html
    _, body, _ = await download(browser, "/desk/audit.xlsx")
    refs = [row[1] for row in values(load_workbook(io.BytesIO(body))["审计记录"])[1:]]
    assert sorted(refs) == sorted([f"通知{notice}", f"名册{roster}", "计划1"])
    # The county's acts, not a township's: an officer's audit has none of them.
    officer = await as_role(bot, county, chat, browsers, "committee")
    _, _, html = await officer.get("/desk/audit")
    assert "发出通知" not in html.split("<tbody>", 1)[1] and "共 0 条" in html
