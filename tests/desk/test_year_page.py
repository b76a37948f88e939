"""年度 on the desk: the year's plan against what was done, the department setting it by a
form (the authority act `plan.set`, integer fen, one transaction, bad figures refused in
Chinese), and the annual report downloaded as the command line writes it."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import func, select

from bangfu_bot.fund.service import Movement, record
from bangfu_bot.outcomes.models import year_plans
from bangfu_bot.reports.annual import export_annual_report
from tests.desk.test_login import browsers, csrf_of, signed_in  # noqa: F401
from tests.factories import make_person

PLAN = {
    "year": "2026",
    "raise_county_finance": "10万",
    "raise_party_dues": "12000.50",
    "fund_size": "60万",
    "loan_members": "50",
    "visit_budget": "3万",
    "trainings": "4",
}


async def plans(bot: Any) -> list[Any]:
    async with bot.services.engine.connect() as conn:
        return list(await conn.execute(select(year_plans).order_by(year_plans.c.id)))


async def test_the_department_sets_the_plan_and_sees_it_against_what_was_done(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    async with bot.services.engine.begin() as conn:
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=4_000_000,
            source="county_finance",
            document="县财政拨款〔2026〕3号",
            occurred_on=date(2026, 3, 1),
            now=bot.clock.now(),
        )
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    status, _, html = await browser.get("/desk/year")
    assert status == 200 and "2026年还没有定年度计划" in html and "定下2026年度计划" in html
    assert "40000元" in html  # raised, with no plan to compare
    _, path, html = await browser.post("/desk/year/plan", {"csrf": csrf_of(html), **PLAN})
    assert path == "/desk/year" and "2026年度计划已定好" in html
    (plan,) = await plans(bot)
    assert (plan.raise_fen, plan.fund_size_fen, plan.loan_members) == (
        {"county_finance": 10_000_000, "party_dues": 1_200_050},
        60_000_000,
        50,
    )
    assert (plan.visit_budget_fen, plan.trainings, plan.channel, plan.set_by) == (
        3_000_000,
        4,
        "web",
        county.staff_id,
    )
    # Against the plan: 40,000 of 100,000 yuan from the county's finance, 40%.
    assert "100000元" in html and "40%" in html and "12000.50元" in html
    assert "修改2026年度计划" in html and 'value="12000.50"' in html and 'value="100000"' in html
    # Setting it again keeps the earlier plan on file; the latest stands.
    _, _, html = await browser.post(
        "/desk/year/plan", {"csrf": csrf_of(html), **PLAN, "trainings": "6"}
    )
    assert [p.trainings for p in await plans(bot)] == [4, 6]
    assert 'name="trainings" value="6"' in html


async def test_bad_figures_are_refused_in_chinese_and_nothing_is_written(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await browser.get("/desk/year")
    token = csrf_of(html)
    for field, value, words in (
        ("loan_members", "五十", "不是人数或场数"),
        ("trainings", "-3", "不是人数或场数"),
        ("loan_members", "1e9", "不是人数或场数"),
        ("fund_size", "很多", "不是钱数"),
        ("visit_budget", "-500", "不是钱数"),
        ("raise_donation", "'; DROP TABLE year_plans; --", "不是钱数"),
    ):
        status, _, html = await browser.post(
            "/desk/year/plan", {"csrf": token, **PLAN, field: value}
        )
        assert status == 400 and words in html, (field, value)
        assert "「" in html and 'role="alert"' in html
    # What was typed stays in the form, escaped.
    assert "&#39;; DROP TABLE year_plans; --" in html
    status, _, html = await browser.post("/desk/year/plan", {"csrf": token, **PLAN, "year": "x"})
    assert status == 400
    assert await plans(bot) == []


async def test_who_sees_the_year_and_who_sets_the_plan(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    watcher, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)
    status, _, html = await watcher.get("/desk/year")
    assert status == 200 and "计划与完成" in html and "年度计划</h2>" not in html
    assert 'action="/desk/year/plan"' not in html
    status, _, html = await watcher.post("/desk/year/plan", {"csrf": csrf_of(html), **PLAN})
    assert status == 403 and "只能查看" in html
    officer, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    status, _, html = await officer.get("/desk/year")
    assert status == 403 and "只有县委组织部和监督小组能看" in html
    status, _, _ = await officer.get("/desk/year/report.xlsx")
    assert status == 403
    status, _, _ = await officer.post("/desk/year/plan", {"csrf": csrf_of(html), **PLAN})
    assert status == 403
    status, where, _ = await browsers().get("/desk/year")
    assert where == "/desk/login"
    status, _, _ = await browsers().post("/desk/year/plan", {"csrf": "x", **PLAN})
    assert status == 403
    assert await plans(bot) == []


async def test_the_annual_report_downloads_as_the_command_line_writes_it(
    bot: Any, county: Any, chat: Any, browsers: Any, tmp_path: Path
) -> None:
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    async with browser.session.get(bot.url("/desk/year/report.xlsx?year=2026")) as response:
        assert response.status == 200
        disposition = response.headers["Content-Disposition"]
        assert 'filename="annual-2026.xlsx"' in disposition
        assert "filename*=UTF-8''2026" in disposition
        body = await response.read()
    cli = tmp_path / "cli.xlsx"
    await export_annual_report(bot.services.engine, year=2026, out=cli, today=date(2026, 11, 10))
    desk_cells = list(load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))
    cli_cells = list(load_workbook(cli).active.iter_rows(values_only=True))
    assert desk_cells == cli_cells
    # Nobody was reviewed in these years: income is a dash, not 0.00.
    before = next(row for row in desk_cells if row[0] == "复核前人均年收入（元）")
    assert before[1:4] == ("—", "—", "—")
    async with browser.session.get(bot.url("/desk/year/report.pdf?year=2026")) as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        assert (await response.read()).startswith(b"%PDF")
    async with browser.session.get(bot.url("/desk/year/report.docx")) as response:
        assert response.status == 200 and (await response.read()).startswith(b"PK")
    async with browser.session.get(bot.url("/desk/year/report.odt")) as response:
        assert response.status == 404
    async with bot.services.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(year_plans)) == 0
