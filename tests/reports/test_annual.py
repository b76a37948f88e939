"""The annual report on the demo county: every figure traced to the rows it sums (the ledger,
its export, the fund report and the case audit), the edge cases of issue 19, and the PDF
rendered to PNG as a county committee member would see it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.cases.models import case_events
from bangfu_bot.fund.service import figures_now
from bangfu_bot.ledger.export import export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.outcomes.models import household_outcomes
from bangfu_bot.reports import annual
from bangfu_bot.reports.annual_data import report_figures, year_figures
from bangfu_bot.reports.fund import export_fund_report
from bangfu_bot.seed.county import seed_demo

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "annual-report-p1.png"


@pytest.fixture
async def demo(engine: AsyncEngine) -> AsyncEngine:
    await seed_demo(engine, now=NOW)
    return engine


async def test_three_years_side_by_side_and_never_empty(demo: AsyncEngine) -> None:
    async with demo.connect() as conn:
        years = await report_figures(conn, 2026)
    assert [f.year for f in years] == [2024, 2025, 2026]
    assert all(sum(f.households.values()) for f in years)
    assert all(f.plan is not None for f in years)
    assert all(f.trainings for f in years) and all(sum(f.raised_fen.values()) for f in years)
    assert sum(years[0].visits.values()) and years[1].reviewed


async def test_figures_reconcile_with_the_ledger_the_fund_report_and_the_audit(
    demo: AsyncEngine, tmp_path: Path
) -> None:
    async with demo.connect() as conn:
        years = {f.year: f for f in await report_figures(conn, 2026)}
        for year, figures in years.items():
            # The ledger: households by category are the year's entries.
            entries = (
                (
                    await conn.execute(
                        select(ledger_entries.c.category).where(ledger_entries.c.year == year)
                    )
                )
                .scalars()
                .all()
            )
            assert sum(figures.households.values()) == len(entries)
            # The fund: the year's end as the fund's own figures have it.
            at_end = await figures_now(conn, until=date(year, 12, 31))
            assert (figures.cash_fen, figures.outstanding_fen) == (
                at_end.cash_fen,
                at_end.outstanding_fen,
            )
            # The audit: every case that left the ledger this year is an exit in the trail.
            case_exits = (
                await conn.execute(
                    select(func.count())
                    .select_from(ledger_entries)
                    .where(
                        ledger_entries.c.year == year,
                        ledger_entries.c.status == "exited",
                        ledger_entries.c.case_id.is_not(None),
                    )
                )
            ).scalar_one()
            audited = (
                await conn.execute(
                    select(func.count())
                    .select_from(case_events)
                    .where(
                        case_events.c.to_status == "exited",
                        case_events.c.at >= datetime(year, 1, 1, tzinfo=UTC),
                        case_events.c.at < datetime(year + 1, 1, 1, tzinfo=UTC),
                    )
                )
            ).scalar_one()
            assert case_exits == audited
    # The printed ledger counts the same households.
    printed = await export_ledger(demo, year=2026, out=tmp_path / "l.xlsx", today=NOW.date())
    assert printed.rows == sum(years[2026].households.values())
    # The fund report's movements of the year sum to the report's, kind by kind.
    await export_fund_report(demo, year=2025, out=tmp_path / "f.xlsx", today=NOW.date())
    sheet = load_workbook(tmp_path / "f.xlsx").worksheets[1]
    from bangfu_bot.reports.fund import KIND_NAMES

    by_kind: dict[str, int] = {}
    names = {name: kind for kind, name in KIND_NAMES.items()}
    for row in sheet.iter_rows(min_row=2, values_only=True):
        kind = names[row[1]]
        by_kind[kind] = by_kind.get(kind, 0) + round(float(row[3]) * 100)
    assert by_kind == {k: v for k, v in years[2025].movements_fen.items() if v}


async def test_a_household_whose_income_fell_is_counted(demo: AsyncEngine) -> None:
    async with demo.connect() as conn:
        figures = await year_figures(conn, 2025)
        fell = (
            await conn.execute(
                select(func.count())
                .select_from(household_outcomes)
                .where(
                    household_outcomes.c.year == 2025,
                    household_outcomes.c.income_after_fen < household_outcomes.c.income_before_fen,
                )
            )
        ).scalar_one()
    assert figures.income_fell == fell >= 1
    report = annual.build([figures], county="示范县", today=NOW.date())
    assert f"其中 {fell} 户收入下降" in report.sections[1].sentences[0]


async def test_a_passing_is_its_own_reason_and_not_an_income(demo: AsyncEngine) -> None:
    async with demo.begin() as conn:
        entry = (
            await conn.execute(select(ledger_entries).where(ledger_entries.c.year == 2026))
        ).first()
        before = await year_figures(conn, 2026)
        await conn.execute(
            insert(household_outcomes).values(
                ledger_entry_id=entry.id,
                person_id=entry.person_id,
                year=2026,
                household_size=entry.household_size,
                income_before_fen=entry.annual_income_fen,
                income_after_fen=entry.annual_income_fen,
                income_by_source={},
                continued=False,
                out_of_hardship=False,
                reason="passed_away",
                recorded_at=NOW,
            )
        )
        after = await year_figures(conn, 2026)
    assert after.out_of_hardship["passed_away"] == 1 and after.reviewed == before.reviewed
    report = annual.build([after], county="示范县", today=NOW.date())
    assert ["去世", 1] in report.sections[2].rows


async def test_a_year_without_plan_and_a_category_without_households(demo: AsyncEngine) -> None:
    async with demo.connect() as conn:
        years = await report_figures(conn, 2028)  # 2026 has households, 2027 and 2028 none
    assert years[-1].plan is None
    report = annual.build(years, county="示范县", today=NOW.date())
    fund = report.sections[3]
    assert "2028年筹集资金 0元；当年没有计划。" in fund.sentences
    assert "2027年没有定年度计划，没有目标可比。" in fund.sentences
    households = report.sections[0]
    assert households.sentences == ["2028年台账没有困难党员家庭。"]
    # Nobody reviewed in 2027 or 2028: their income is a dash, never an income of 0.00.
    income = {row[0]: row[1:] for row in report.sections[1].rows}
    assert income["复核前人均年收入（元）"][1:] == ["—", "—"]
    assert income["复核后人均年收入（元）"][1:] == ["—", "—"]
    # 2025 was reviewed, 2026 is not yet (its review opens in December).
    async with demo.connect() as conn:
        side = await report_figures(conn, 2026)
    income = {
        row[0]: row[1:] for row in annual.build(side, county="", today=NOW.date()).sections[1].rows
    }
    assert side[1].reviewed and not side[2].reviewed
    assert income["复核后人均年收入（元）"][1] != "—" and income["复核后人均年收入（元）"][2] == "—"
    assert households.chart is None  # no empty chart
    # 2026 has a category the years before did not: said in words, left out of the chart.
    async with demo.connect() as conn:
        side = await report_figures(conn, 2026)
    section = annual.build(side, county="示范县", today=NOW.date()).sections[0]
    assert section.chart is not None
    assert set(section.chart.labels) == {c for c, n in side[-1].households.items() if n}


async def test_a_category_empty_this_year_is_named(demo: AsyncEngine) -> None:
    async with demo.connect() as conn:
        years = await report_figures(conn, 2025)
    this = years[-1]
    empty = sorted(c for f in years for c in f.households if not this.households[c])
    section = annual.build(years, county="示范县", today=NOW.date()).sections[0]
    if empty:
        assert any("本年没有家庭" in s and empty[0] in s for s in section.sentences)
        assert section.chart is not None and empty[0] not in section.chart.labels


async def test_a_missing_font_is_one_clear_line(tmp_path: Path, demo: AsyncEngine) -> None:
    with pytest.raises(annual.ReportError) as refused:
        await annual.export_annual_report(
            demo,
            year=2026,
            out=tmp_path / "r.pdf",
            today=NOW.date(),
            font=str(tmp_path / "nothing.ttf"),
        )
    assert "找不到中文字体" in refused.value.message and "\n" not in refused.value.message
    assert not (tmp_path / "r.pdf").exists()
    with pytest.raises(annual.ReportError):
        await annual.export_annual_report(demo, year=2026, out=tmp_path / "r.odt", today=NOW.date())


async def test_the_report_in_three_formats(demo: AsyncEngine, tmp_path: Path) -> None:
    for suffix in (".docx", ".xlsx"):
        report = await annual.export_annual_report(
            demo, year=2026, out=tmp_path / f"r{suffix}", today=NOW.date()
        )
        assert (tmp_path / f"r{suffix}").stat().st_size > 2000
    sheet = load_workbook(tmp_path / "r.xlsx").active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert report.title in cells and "四、基金筹集" in cells


async def test_the_pdf_pages_render_with_chinese(demo: AsyncEngine, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    out = tmp_path / "report.pdf"
    await annual.export_annual_report(demo, year=2026, out=out, today=NOW.date())
    document = pdfium.PdfDocument(str(out))
    assert len(document) >= 2
    page_text = document[0].get_textpage().get_text_range()
    assert "2026年困难党员帮扶工作年度报告" in page_text and "一、帮扶对象" in page_text
    assert "□" not in page_text
    images: list[Any] = [document[i].render(scale=1.4).to_pil() for i in range(2)]
    # A page with its charts is far from blank.
    document.close()
    assert all(len(image.convert("L").getcolors(256) or []) > 20 for image in images)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(SCREENSHOT)
    images[1].save(SCREENSHOT.with_name("annual-report-p2.png"))
