"""The department's annual report (年度报告) as PDF, DOCX or XLSX, in the shape of the seed
report: who is helped, what came of it, the fund, visits, trainings and loan projects.

Each section is a table and, where a picture says it better, a bar chart; its sentences are
filled in from the figures only. The PDF embeds a Chinese font found on the machine (or
named by BANGFU_REPORT_FONT); without one the report is refused in one line, never printed
as boxes.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot import xlsx
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.money import yuan
from bangfu_bot.fund.service import SOURCE_NAMES, SOURCES
from bangfu_bot.members.models import organisations
from bangfu_bot.outcomes.service import OUT_OF_HARDSHIP, REASONS
from bangfu_bot.reports.annual_data import YearFigures, report_figures
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.reports")

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
OCCASIONS = ("spring_festival", "july_first", "double_ninth", "custom", "event")
FORMATS = (".pdf", ".docx", ".xlsx")


class ReportError(Exception):
    """The report cannot be written; `message` is one line for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Chart:
    """A grouped bar chart: one group per label, one bar per series."""

    title: str
    labels: list[str]
    series: dict[str, list[float]]


@dataclass
class Section:
    """One part of the report."""

    title: str
    sentences: list[str]
    headers: list[str]
    rows: list[list[Any]]
    chart: Chart | None = None


@dataclass
class Report:
    """The whole report, ready to render."""

    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)


def find_font(override: str | None = None) -> Path:
    """The CJK font the PDF and charts embed: `override`, else the first known one found,
    else what fontconfig names for zh; ReportError naming what was tried otherwise."""
    tried = [override] if override else list(FONT_CANDIDATES)
    for candidate in tried:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if not override and shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", ":lang=zh"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
        if found and Path(found).is_file() and Path(found).suffix.lower() in (".ttf", ".ttc"):
            return Path(found)
        tried.append("fc-match :lang=zh")
    raise ReportError(say("annual_font_missing", tried=", ".join(str(t) for t in tried)))


def _y(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.0f}%" if whole else "-"


def build(years: list[YearFigures], *, county: str, today: date) -> Report:
    """The report's sections from the figures, the last year the report's year."""
    this = years[-1]
    heads = [say("annual_year", year=f.year) for f in years]
    report = Report(
        title=say("annual_title", year=this.year),
        subtitle=say(
            "annual_subtitle",
            county=county,
            years=f"{years[0].year}–{this.year}",
            day=chinese_date(today),
        ),
    )
    report.sections = [
        _households(years, heads),
        _income(years, heads),
        _exits(years, heads),
        _fund(years, heads),
        _loans(years, heads),
        _visits(years, heads),
        _trainings(years, heads),
        _projects(this),
    ]
    return report


def _households(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    seen = sorted({c for f in years for c in f.households})
    total = sum(this.households.values())
    sentences = [
        say(
            "annual_households_sentence",
            year=this.year,
            total=total,
            new=this.new,
            exited=this.exited,
        )
        if total
        else say("annual_households_empty", year=this.year)
    ]
    empty = [c for c in seen if not this.households[c]]
    if empty and total:
        sentences.append(say("annual_category_empty", categories="、".join(empty)))
    rows: list[list[Any]] = [[c, *(f.households[c] for f in years)] for c in seen]
    rows.append([say("annual_total"), *(sum(f.households.values()) for f in years)])
    rows.append([say("annual_row_new"), *(f.new for f in years)])
    rows.append([say("annual_row_exited"), *(f.exited for f in years)])
    # Only categories with households this year are drawn: no empty bars.
    drawn = [c for c in seen if this.households[c]]
    chart = (
        Chart(
            say("annual_chart_households"),
            drawn,
            {h: [float(f.households[c]) for c in drawn] for h, f in zip(heads, years, strict=True)},
        )
        if drawn
        else None
    )
    return Section(
        say("annual_households"), sentences, [say("annual_col_category"), *heads], rows, chart
    )


def _income(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    sentence = (
        say(
            "annual_income_sentence",
            year=this.year,
            reviewed=this.reviewed,
            before=yuan(this.income_per_person_before_fen),
            after=yuan(this.income_per_person_after_fen),
            fell=this.income_fell,
        )
        if this.reviewed
        else say("annual_income_empty", year=this.year)
    )
    # A year nobody reviewed has no income to show: a dash, not an income of 0.00.
    dash = say("annual_no_figure")
    rows: list[list[Any]] = [
        [say("annual_row_reviewed"), *(f.reviewed for f in years)],
        [
            say("annual_row_before"),
            *(_y(f.income_per_person_before_fen) if f.persons else dash for f in years),
        ],
        [
            say("annual_row_after"),
            *(_y(f.income_per_person_after_fen) if f.persons else dash for f in years),
        ],
        [say("annual_row_fell"), *(f.income_fell if f.reviewed else dash for f in years)],
    ]
    return Section(say("annual_income"), [sentence], ["", *heads], rows)


def _exits(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    out = sum(n for r, n in this.out_of_hardship.items() if r in OUT_OF_HARDSHIP)
    other = sum(n for r, n in this.out_of_hardship.items() if r not in OUT_OF_HARDSHIP)
    rows = [
        [say(f"reason_{r}"), *(f.out_of_hardship[r] for f in years)]
        for r in REASONS
        if any(f.out_of_hardship[r] for f in years)
    ]
    if not rows:
        rows = [[say("annual_none_row"), *("" for _ in years)]]
    drawn = [r for r in REASONS if this.out_of_hardship[r]]
    chart = (
        Chart(
            say("annual_exits"),
            [say(f"reason_{r}") for r in drawn],
            {heads[-1]: [float(this.out_of_hardship[r]) for r in drawn]},
        )
        if drawn
        else None
    )
    return Section(
        say("annual_exits"),
        [say("annual_exits_sentence", year=this.year, out=out, other=other)],
        [say("annual_col_reason"), *heads],
        rows,
        chart,
    )


def _fund(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    raised = sum(this.raised_fen.values())
    sentences = []
    if this.plan is None:
        sentences.append(say("annual_fund_sentence_no_plan", year=this.year, raised=yuan(raised)))
    else:
        planned = this.plan.raise_total_fen
        sentences.append(
            say(
                "annual_fund_sentence",
                year=this.year,
                raised=yuan(raised),
                planned=yuan(planned),
                percent=_percent(raised, planned),
            )
        )
    sentences += [say("annual_no_plan", year=f.year) for f in years if f.plan is None]
    headers = [say("annual_col_source")]
    for head in heads:
        headers += [f"{head}{say('annual_col_planned')}", f"{head}{say('annual_col_raised')}"]
    rows: list[list[Any]] = []
    for source in SOURCES:
        row: list[Any] = [SOURCE_NAMES[source]]
        for f in years:
            row += [_plan_cell(f, source), _y(f.raised_fen[source])]
        rows.append(row)
    total: list[Any] = [say("annual_total")]
    for f in years:
        total += [
            "" if f.plan is None else _y(f.plan.raise_total_fen),
            _y(sum(f.raised_fen.values())),
        ]
    rows.append(total)
    chart = Chart(
        say("annual_chart_fund"),
        heads,
        {
            say("annual_chart_planned"): [
                float(_y(f.plan.raise_total_fen)) if f.plan else 0.0 for f in years
            ],
            say("annual_chart_raised"): [float(_y(sum(f.raised_fen.values()))) for f in years],
        },
    )
    return Section(say("annual_fund"), sentences, headers, rows, chart)


def _plan_cell(figures: YearFigures, source: str) -> Any:
    if figures.plan is None:
        return ""
    return _y(figures.plan.raise_fen.get(source, 0))


def _loans(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    m = this.movements_fen
    sentence = say(
        "annual_loans_sentence",
        year=this.year,
        lent=yuan(m["loan_out"]),
        repaid=yuan(m["principal_in"]),
        written_off=yuan(m["write_off"]),
        interest=yuan(m["interest_in"]),
        relief=yuan(m["relief"]),
        outstanding=yuan(this.outstanding_fen),
        cash=yuan(this.cash_fen),
    )
    kinds = ("loan_out", "principal_in", "write_off", "interest_in", "relief")
    labels = ("lent", "repaid", "written_off", "interest", "relief")
    rows: list[list[Any]] = [
        [say(f"annual_row_{label}"), *(_y(f.movements_fen[kind]) for f in years)]
        for kind, label in zip(kinds, labels, strict=True)
    ]
    rows.append([say("annual_row_outstanding"), *(_y(f.outstanding_fen) for f in years)])
    rows.append([say("annual_row_cash"), *(_y(f.cash_fen) for f in years)])
    chart = Chart(
        say("annual_loans"),
        heads,
        {
            say("annual_row_lent"): [float(_y(f.movements_fen["loan_out"])) for f in years],
            say("annual_row_repaid"): [float(_y(f.movements_fen["principal_in"])) for f in years],
            say("annual_row_interest"): [float(_y(f.movements_fen["interest_in"])) for f in years],
        },
    )
    return Section(say("annual_loans"), [sentence], ["", *heads], rows, chart)


def _visits(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    headers = [say("annual_col_occasion")]
    for head in heads:
        headers += [f"{head}{say('annual_col_visits')}", f"{head}{say('annual_col_cash')}"]
    rows: list[list[Any]] = []
    for occasion in OCCASIONS:
        if any(f.visits[occasion] for f in years):
            row: list[Any] = [say(f"occasion_{occasion}")]
            for f in years:
                row += [f.visits[occasion], _y(f.visit_cash_fen[occasion])]
            rows.append(row)
    total: list[Any] = [say("annual_total")]
    for f in years:
        total += [sum(f.visits.values()), _y(sum(f.visit_cash_fen.values()))]
    rows.append(total)
    return Section(
        say("annual_visits"),
        [
            say(
                "annual_visits_sentence",
                year=this.year,
                count=sum(this.visits.values()),
                cash=yuan(sum(this.visit_cash_fen.values())),
            )
        ],
        headers,
        rows,
    )


def _trainings(years: list[YearFigures], heads: list[str]) -> Section:
    this = years[-1]
    rows: list[list[Any]] = [
        [say("annual_row_trainings"), *(f.trainings for f in years)],
        [
            say("annual_row_trainings_planned"),
            *((f.plan.trainings if f.plan else "") for f in years),
        ],
        [say("annual_row_signed"), *(f.signed_up for f in years)],
        [say("annual_row_attended"), *(f.attended for f in years)],
    ]
    sentence = say(
        "annual_trainings_sentence",
        year=this.year,
        count=this.trainings,
        planned=this.plan.trainings if this.plan else "-",
        signed=this.signed_up,
        attended=this.attended,
    )
    return Section(say("annual_trainings"), [sentence], ["", *heads], rows)


def _projects(this: YearFigures) -> Section:
    rows: list[list[Any]] = [
        [project, n, _y(lent), followed, _y(expected), _y(earned)]
        for project, (n, lent, followed, expected, earned) in sorted(this.loans_by_project.items())
    ]
    values = list(this.loans_by_project.values())
    sentence = say(
        "annual_projects_sentence",
        year=this.year,
        count=sum(v[0] for v in values),
        followed=sum(v[2] for v in values),
        earned=yuan(sum(v[4] for v in values)),
        expected=yuan(sum(v[3] for v in values)),
    )
    if not rows:
        rows = [[say("annual_none_row"), "", "", "", "", ""]]
    headers = [
        say(key)
        for key in (
            "annual_col_project",
            "annual_col_count",
            "annual_col_lent",
            "annual_col_followed",
            "annual_col_expected",
            "annual_col_earned",
        )
    ]
    return Section(say("annual_projects"), [sentence], headers, rows)


# --- Rendering -------------------------------------------------------------------------------


def chart_png(chart: Chart, font: Path) -> bytes:
    """A bar chart as PNG, its Chinese in the report's font."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    props = font_manager.FontProperties(fname=str(font))
    figure, axes = plt.subplots(figsize=(6.4, 2.6), dpi=150)
    try:
        count = max(len(chart.series), 1)
        width = 0.8 / count
        for index, (name, values) in enumerate(chart.series.items()):
            positions = [i + index * width - 0.4 + width / 2 for i in range(len(chart.labels))]
            bars = axes.bar(positions, values, width, label=name)
            axes.bar_label(bars, fmt="%g", fontsize=7)
        axes.set_xticks(range(len(chart.labels)))
        axes.set_xticklabels(chart.labels, fontproperties=props, fontsize=8)
        axes.set_title(chart.title, fontproperties=props, fontsize=10)
        axes.spines[["top", "right"]].set_visible(False)
        axes.tick_params(axis="y", labelsize=7)
        if count > 1:
            axes.legend(prop=props, fontsize=7, frameon=False)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return str(value)


def write_pdf(report: Report, out: Path, font: Path) -> None:
    """The report as an A4 PDF with the font embedded."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(TTFont("ReportCJK", str(font), subfontIndex=0))
    title = ParagraphStyle("title", fontName="ReportCJK", fontSize=18, leading=26, alignment=1)
    subtitle = ParagraphStyle("sub", fontName="ReportCJK", fontSize=9, leading=14, alignment=1)
    heading = ParagraphStyle("h", fontName="ReportCJK", fontSize=13, leading=20, spaceBefore=8)
    body = ParagraphStyle("b", fontName="ReportCJK", fontSize=10, leading=16, wordWrap="CJK")
    cell = ParagraphStyle("c", fontName="ReportCJK", fontSize=8, leading=11, wordWrap="CJK")
    story: list[Any] = [Paragraph(report.title, title), Paragraph(report.subtitle, subtitle)]
    width = A4[0] - 36 * mm
    for section in report.sections:
        story.append(Paragraph(section.title, heading))
        story += [Paragraph(sentence, body) for sentence in section.sentences]
        story.append(Spacer(1, 3 * mm))
        data = [[Paragraph(_text(h), cell) for h in section.headers]]
        data += [[Paragraph(_text(v), cell) for v in row] for row in section.rows]
        first = width * 0.26
        rest = (width - first) / max(len(section.headers) - 1, 1)
        table = Table(data, colWidths=[first, *([rest] * (len(section.headers) - 1))], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2e6e6")),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ]
            )
        )
        story.append(table)
        if section.chart is not None:
            png = chart_png(section.chart, font)
            story += [Spacer(1, 2 * mm), Image(io.BytesIO(png), width=width, height=width * 0.406)]
    document = SimpleDocTemplate(
        str(out), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, title=report.title
    )
    document.build(story)


def write_docx(report: Report, out: Path, font: Path) -> None:
    """The report as a Word document, charts as PNG pictures."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Cm

    document = Document()
    normal = document.styles["Normal"]
    normal.font.name = "SimSun"
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), "SimSun")
    document.add_heading(report.title, level=0)
    document.add_paragraph(report.subtitle)
    for section in report.sections:
        document.add_heading(section.title, level=1)
        for sentence in section.sentences:
            document.add_paragraph(sentence)
        table = document.add_table(rows=1, cols=len(section.headers))
        table.style = "Table Grid"
        for index, header in enumerate(section.headers):
            table.rows[0].cells[index].text = _text(header)
        for row in section.rows:
            cells = table.add_row().cells
            for index, value in enumerate(row):
                cells[index].text = _text(value)
        if section.chart is not None:
            document.add_picture(io.BytesIO(chart_png(section.chart, font)), width=Cm(16))
    document.save(str(out))


def write_xlsx(report: Report, out: Path) -> None:
    """The report as a workbook: one sheet, the sections one under the other."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = report.title[:31]
    xlsx.append(sheet, [report.title])
    sheet.cell(1, 1).font = Font(bold=True, size=14)
    xlsx.append(sheet, [report.subtitle])
    for section in report.sections:
        xlsx.append(sheet, [])
        xlsx.append(sheet, [section.title])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True)
        for sentence in section.sentences:
            xlsx.append(sheet, [sentence])
        xlsx.append(sheet, section.headers)
        for row in section.rows:
            xlsx.append(sheet, row)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "#,##0.00"
    sheet.column_dimensions["A"].width = 26
    book.save(str(out))


async def export_annual_report(
    engine: AsyncEngine,
    *,
    year: int,
    out: Path,
    today: date,
    font: str | None = None,
) -> Report:
    """Write the year's report to `out` (.pdf, .docx or .xlsx, by its suffix)."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ReportError(say("annual_bad_format", name=out.name))
    font_path = find_font(font) if suffix != ".xlsx" else None
    async with engine.connect() as conn:
        years = await report_figures(conn, year)
        county = (
            await conn.execute(
                select(organisations.c.name)
                .where(organisations.c.kind == "county")
                .order_by(organisations.c.id)
            )
        ).scalar()
    report = build(years, county=county or "", today=today)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        assert font_path is not None
        await asyncio.to_thread(write_pdf, report, out, font_path)
    elif suffix == ".docx":
        assert font_path is not None
        await asyncio.to_thread(write_docx, report, out, font_path)
    else:
        await asyncio.to_thread(write_xlsx, report, out)
    return report


def rows_of(report: Report, title: str) -> Sequence[list[Any]]:
    """A section's table rows by its title (for tests and the bench)."""
    return next(section.rows for section in report.sections if section.title == title)
