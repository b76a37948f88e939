"""年度 on the desk: the year's plan against what was done, the department's form to set it
(`outcomes.service.set_plan`, the authority act `plan.set`, channel web), and the annual
report as PDF, DOCX or XLSX through the command line's own writer."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import func, select

from bangfu_bot.authority import Refused
from bangfu_bot.common.fields import FieldError, parse_money_fen
from bangfu_bot.common.money import yuan
from bangfu_bot.desk.base import (
    current_of,
    desk_of,
    flash,
    flashed,
    form_of,
    page,
    refuse,
    render,
    say,
    services_of,
)
from bangfu_bot.fund.service import SOURCE_NAMES, SOURCES
from bangfu_bot.loans.models import loans
from bangfu_bot.outcomes.service import Plan, set_plan
from bangfu_bot.reports.annual import ReportError, export_annual_report
from bangfu_bot.reports.annual_data import YearFigures, year_figures

log = logging.getLogger(__name__)

FIRST_YEAR, LAST_YEAR = 2000, 2100
COUNT_MAX = 100_000
MONEY_MAX_FEN = 100_000_000_000  # a billion yuan: far above any county's fund
FORMATS = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Line:
    """One target of the plan beside what was done."""

    label: str
    planned: str
    done: str
    percent: str
    short: bool  # done is below plan


def _year(request: web.Request, value: str | None) -> int:
    if value is not None and value.isdigit() and len(value) == 4:
        year = int(value)
        if FIRST_YEAR <= year <= LAST_YEAR:
            return year
    desk = desk_of(request)
    return desk.local(desk.now()).year


def _line(label: str, planned: int | None, done: int, show: Any) -> Line:
    if planned is None:
        return Line(label, "", show(done), "", False)
    percent = f"{done * 100 // planned}%" if planned else ""
    return Line(label, show(planned), show(done), percent, done < planned)


def _count(value: int) -> str:
    return str(value)


async def _borrowers(conn: Any, year: int) -> int:
    """Members who were lent money in the year (loans disbursed then)."""
    found = await conn.scalar(
        select(func.count(func.distinct(loans.c.person_id))).where(
            loans.c.disbursed_on >= date(year, 1, 1), loans.c.disbursed_on <= date(year, 12, 31)
        )
    )
    return int(found or 0)


def _lines(figures: YearFigures, borrowers: int) -> list[Line]:
    plan = figures.plan
    lines = [
        _line(
            say("year_raise_from", source=SOURCE_NAMES[source]),
            plan.raise_fen.get(source, 0) if plan else None,
            figures.raised_fen[source],
            yuan,
        )
        for source in SOURCES
    ]
    lines.append(
        _line(
            say("year_raise_total"),
            plan.raise_total_fen if plan else None,
            sum(figures.raised_fen.values()),
            yuan,
        )
    )
    lines.append(
        _line(
            say("year_fund_size"),
            plan.fund_size_fen if plan else None,
            figures.cash_fen + figures.outstanding_fen,
            yuan,
        )
    )
    lines.append(
        _line(say("year_loan_members"), plan.loan_members if plan else None, borrowers, _count)
    )
    lines.append(
        _line(
            say("year_visit_budget"),
            plan.visit_budget_fen if plan else None,
            sum(figures.visit_cash_fen.values()),
            yuan,
        )
    )
    lines.append(
        _line(say("year_trainings"), plan.trainings if plan else None, figures.trainings, _count)
    )
    return lines


def _yuan_field(fen: int) -> str:
    """Fen as the form shows it: plain yuan, the same the form reads back."""
    whole, cents = divmod(fen, 100)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}"


def _form_values(plan: Plan | None) -> dict[str, str]:
    if plan is None:
        return {}
    values = {f"raise_{s}": _yuan_field(plan.raise_fen.get(s, 0)) for s in SOURCES}
    values.update(
        fund_size=_yuan_field(plan.fund_size_fen),
        loan_members=str(plan.loan_members),
        visit_budget=_yuan_field(plan.visit_budget_fen),
        trainings=str(plan.trainings),
    )
    return values


def _county_only(request: web.Request) -> web.Response | None:
    if not current_of(request).viewer.county_wide:
        return refuse(request, 403, "year_only_county")
    return None


async def _page(
    request: web.Request,
    year: int,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> web.Response:
    viewer = current_of(request).viewer
    async with desk_of(request).engine.connect() as conn:
        figures = await year_figures(conn, year)
        borrowers = await _borrowers(conn, year)
    return render(
        request,
        "year.html",
        {
            "year": year,
            "plan": figures.plan,
            "lines": _lines(figures, borrowers),
            "sources": [(s, SOURCE_NAMES[s]) for s in SOURCES],
            "values": values if values is not None else _form_values(figures.plan),
            "errors": errors or [],
            "may_set": viewer.role == "department",
            "years": list(range(year - 2, year + 2)),
            "reviewed": figures.reviewed,
            "flash": await flashed(request),
        },
        status=status,
    )


@page
async def year_page(request: web.Request) -> web.Response:
    """年度: the plan against what was done, the plan's form, the report's downloads."""
    refused = _county_only(request)
    if refused is not None:
        return refused
    return await _page(request, _year(request, request.query.get("year")))


def _read_plan(form: Any, year: int) -> tuple[Plan | None, list[str]]:
    """The posted plan, or the Chinese sentences saying which figure is not one."""
    errors: list[str] = []

    def money(name: str, label: str) -> int:
        text = str(form.get(name, "")).strip()
        if not text:
            return 0
        try:
            return parse_money_fen(text, minimum_fen=0, maximum_fen=MONEY_MAX_FEN)
        except FieldError:
            errors.append(say("year_bad_money", item=label, value=text[:20]))
            return 0

    def count(name: str, label: str) -> int:
        text = str(form.get(name, "")).strip()
        if not text:
            return 0
        if not text.isdigit() or not text.isascii() or int(text) > COUNT_MAX:
            errors.append(say("year_bad_count", item=label, value=text[:20]))
            return 0
        return int(text)

    raise_fen = {
        s: money(f"raise_{s}", say("year_raise_from", source=SOURCE_NAMES[s])) for s in SOURCES
    }
    plan = Plan(
        year=year,
        raise_fen={s: fen for s, fen in raise_fen.items() if fen},
        fund_size_fen=money("fund_size", say("year_fund_size")),
        loan_members=count("loan_members", say("year_loan_members")),
        visit_budget_fen=money("visit_budget", say("year_visit_budget")),
        trainings=count("trainings", say("year_trainings")),
    )
    return (None, errors) if errors else (plan, [])


@page
async def plan_set(request: web.Request) -> web.StreamResponse:
    """定年度计划 from the desk: every figure checked, then one transaction under `plan.set`;
    a bad figure or a refusal writes nothing and says why in Chinese."""
    viewer = current_of(request).viewer
    refused = _county_only(request)
    if refused is not None:
        return refused
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    form = form_of(request)
    year_text = str(form.get("year", ""))
    if not (year_text.isdigit() and len(year_text) == 4):
        return refuse(request, 400, "bad_form")
    year = _year(request, year_text)
    plan, errors = _read_plan(form, year)
    if plan is None:
        values = {str(k): str(v)[:40] for k, v in form.items() if k != "csrf"}
        return await _page(request, year, values=values, errors=errors, status=400)
    desk = desk_of(request)
    try:
        async with desk.engine.begin() as conn:
            await set_plan(conn, plan=plan, actor=viewer.person, channel="web", now=desk.now())
    except Refused as refusal:
        log.info("desk: plan for %s refused: %s", year, refusal.reason)
        await flash(request, "refused", refusal.message)
    else:
        await flash(request, "done", say("year_plan_set", year=year))
    raise web.HTTPSeeOther(f"/desk/year?year={year}")


@page
async def annual_report(request: web.Request) -> web.StreamResponse:
    """年度报告 as PDF, DOCX or XLSX: the command line's writer, to a temporary file."""
    refused = _county_only(request)
    if refused is not None:
        return refused
    kind = request.match_info["kind"]
    year = _year(request, request.query.get("year"))
    desk = desk_of(request)
    settings = services_of(request).settings
    with tempfile.TemporaryDirectory(prefix="bangfu-annual-") as folder:
        out = Path(folder) / f"annual-{year}.{kind}"
        try:
            await export_annual_report(
                desk.engine,
                year=year,
                out=out,
                today=desk.local(desk.now()).date(),
                font=settings.report_font or None,
            )
        except ReportError as error:
            log.warning("desk: annual report %s not written: %s", year, error.message)
            values = {"title": say("year_report_failed_title"), "text": error.message}
            return render(request, "refused.html", values, status=503)
        body = out.read_bytes()
    name = say("year_report_file", year=year, kind=kind)
    return web.Response(
        body=body,
        content_type=FORMATS[kind],
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"annual-{year}.{kind}\"; filename*=UTF-8''{quote(name)}"
            )
        },
    )


ROUTES = [
    ("GET", "/year", year_page),
    ("POST", "/year/plan", plan_set),
    ("GET", "/year/report.{kind:pdf|docx|xlsx}", annual_report),
]
