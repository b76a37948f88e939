"""Plots for the desk (借款与基金), rendered on the server as SVG text by matplotlib: the
fund's balance over time, money lent and repaid by month, and the repayments expected over
the next twelve months.

Each chart has a `*_series` function (plain figures, for a table beside the plot) and a
`*_chart` function returning the SVG as a string, ready to inline in a page. The SVG keeps
its text as text (selectable, printable, and found by tests) in WenQuanYi Zen Hei, found
with fc-match, with the office fonts of Windows as fall-backs; it refers to nothing outside
itself, so the desk works on a county intranet. An empty series gives a short 暂无数据 note
instead of empty axes."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend on a server, even where a display exists

from matplotlib import font_manager
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.fund.models import fund_movements
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.members.models import people
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = [
    "BalancePoint",
    "MonthFigures",
    "expected_repayments_chart",
    "expected_repayments_series",
    "fund_balance_chart",
    "fund_balance_series",
    "lent_and_repaid_chart",
    "lent_and_repaid_series",
]

say = speaker("bangfu_bot.reports")

CJK_FONT = "WenQuanYi Zen Hei"
# What an office PC has when it lacks the server's font (the SVG names them all).
FALLBACK_FONTS = ("Microsoft YaHei", "SimHei", "Noto Sans CJK SC")
WIDTH_IN, HEIGHT_IN = 7.2, 3.4
LENT_COLOUR, REPAID_COLOUR, INTEREST_COLOUR = "#c0392b", "#2e7d32", "#81c784"
CASH_COLOUR, OUTSTANDING_COLOUR = "#1f5fa8", "#e08a1e"
_FAMILIES = (
    "font-family: "
    + ", ".join(f"'{name}'" for name in (CJK_FONT, *FALLBACK_FONTS))
    + ", sans-serif"
)
# matplotlib's rc settings are process-wide: one chart is drawn at a time.
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class BalancePoint:
    """The fund on a day a movement was dated: cash on hand and principal lent out, fen."""

    day: date
    cash_fen: int
    outstanding_fen: int


@dataclass(frozen=True)
class MonthFigures:
    """Two or three figures of one month ("2027-03"), in fen: lent and repaid (principal
    and interest), or the principal and interest expected."""

    month: str
    first_fen: int
    second_fen: int
    third_fen: int = 0


# --- The figures ---------------------------------------------------------------------------

_CASH = {"contribution": 1, "relief": -1, "loan_out": -1, "principal_in": 1, "interest_in": 1}
_OUT = {"loan_out": 1, "principal_in": -1, "write_off": -1}


async def fund_balance_series(
    session: AsyncSession, *, until: date | None = None
) -> tuple[BalancePoint, ...]:
    """The fund's cash and principal out after each day with movements (one query, one row
    per day and kind), as `fund.service.Figures` adds them up."""
    conn = await session.connection()
    query = select(
        fund_movements.c.occurred_on, fund_movements.c.kind, func.sum(fund_movements.c.amount_fen)
    ).group_by(fund_movements.c.occurred_on, fund_movements.c.kind)
    if until is not None:
        query = query.where(fund_movements.c.occurred_on <= until)
    by_day: dict[date, list[int]] = {}
    for day, kind, amount in await conn.execute(query):
        change = by_day.setdefault(day, [0, 0])
        change[0] += _CASH.get(kind, 0) * int(amount)
        change[1] += _OUT.get(kind, 0) * int(amount)
    cash = outstanding = 0
    points = []
    for day in sorted(by_day):
        cash += by_day[day][0]
        outstanding += by_day[day][1]
        points.append(BalancePoint(day, cash, outstanding))
    return tuple(points)


async def lent_and_repaid_series(
    session: AsyncSession, *, since: date | None = None, until: date | None = None
) -> tuple[MonthFigures, ...]:
    """By month: lent (`first_fen`), principal repaid (`second_fen`) and interest received
    (`third_fen`), from the fund's movements; months without any are left out."""
    conn = await session.connection()
    kinds = ("loan_out", "principal_in", "interest_in")
    query = (
        select(
            fund_movements.c.occurred_on,
            fund_movements.c.kind,
            func.sum(fund_movements.c.amount_fen),
        )
        .where(fund_movements.c.kind.in_(kinds))
        .group_by(fund_movements.c.occurred_on, fund_movements.c.kind)
    )
    if since is not None:
        query = query.where(fund_movements.c.occurred_on >= since)
    if until is not None:
        query = query.where(fund_movements.c.occurred_on <= until)
    months: dict[str, list[int]] = {}
    for day, kind, amount in await conn.execute(query):
        months.setdefault(day.strftime("%Y-%m"), [0, 0, 0])[kinds.index(kind)] += int(amount)
    return tuple(MonthFigures(month, *months[month]) for month in sorted(months))


async def expected_repayments_series(
    session: AsyncSession,
    *,
    today: date,
    months: int = 12,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> tuple[MonthFigures, ...]:
    """Principal (`first_fen`) and interest (`second_fen`) of disbursed loans' instalments
    due from `today` through the next `months` calendar months, this one included, every
    month listed (the fund report's 预计还款 sheet, cut to the horizon)."""
    conn = await session.connection()
    last = _month_start(today, months)
    query = (
        select(
            instalments.c.due_on,
            func.sum(instalments.c.principal_fen),
            func.sum(instalments.c.interest_fen),
        )
        .select_from(
            instalments.join(loans, loans.c.id == instalments.c.loan_id).join(
                people, people.c.id == loans.c.person_id
            )
        )
        .where(
            loans.c.status == L.DISBURSED,
            instalments.c.due_on >= today,
            instalments.c.due_on < last,
            in_scope(
                func.coalesce(loans.c.branch_id, people.c.branch_id),
                township_id=township_id,
                branch_id=branch_id,
            ),
        )
        .group_by(instalments.c.due_on)
    )
    figures = {_month_start(today, n).strftime("%Y-%m"): [0, 0] for n in range(months)}
    for due_on, principal, interest in await conn.execute(query):
        month = figures[due_on.strftime("%Y-%m")]
        month[0] += int(principal)
        month[1] += int(interest)
    if not any(principal or interest for principal, interest in figures.values()):
        return ()
    return tuple(MonthFigures(month, *figures[month]) for month in sorted(figures))


def _month_start(today: date, ahead: int) -> date:
    """The first day of the month `ahead` months after today's."""
    index = today.year * 12 + today.month - 1 + ahead
    return date(index // 12, index % 12 + 1, 1)


# --- The charts ----------------------------------------------------------------------------


async def fund_balance_chart(session: AsyncSession, *, until: date | None = None) -> str:
    """SVG: the fund's cash on hand and principal lent out over time."""
    points = await fund_balance_series(session, until=until)
    return await asyncio.to_thread(_draw_balance, points)


async def lent_and_repaid_chart(
    session: AsyncSession, *, since: date | None = None, until: date | None = None
) -> str:
    """SVG: money lent and repaid (principal, with the interest on top) by month."""
    months = await lent_and_repaid_series(session, since=since, until=until)
    return await asyncio.to_thread(
        _draw_months,
        say("chart_lent_title"),
        months,
        (say("chart_lent"), LENT_COLOUR),
        (say("chart_repaid"), REPAID_COLOUR),
        (say("chart_interest"), INTEREST_COLOUR),
    )


async def expected_repayments_chart(
    session: AsyncSession,
    *,
    today: date,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> str:
    """SVG: principal and interest expected back in each of the next twelve months."""
    months = await expected_repayments_series(
        session, today=today, township_id=township_id, branch_id=branch_id
    )
    return await asyncio.to_thread(
        _draw_months,
        say("chart_expected_title"),
        months,
        None,
        (say("chart_principal"), REPAID_COLOUR),
        (say("chart_interest"), INTEREST_COLOUR),
    )


def _draw_balance(points: Sequence[BalancePoint]) -> str:
    title = say("chart_balance_title")
    if not points:
        return _empty(title)
    with _drawing():
        figure, axes = _figure(title)
        days = [point.day for point in points]
        axes.step(
            days,
            [point.cash_fen / 100 for point in points],
            where="post",
            color=CASH_COLOUR,
            label=say("chart_cash"),
        )
        axes.step(
            days,
            [point.outstanding_fen / 100 for point in points],
            where="post",
            color=OUTSTANDING_COLOUR,
            label=say("chart_outstanding"),
        )
        axes.xaxis.set_major_formatter(DateFormatter("%Y-%m"))
        figure.autofmt_xdate()
        return _finish(figure, axes)


def _draw_months(
    title: str,
    months: Sequence[MonthFigures],
    first: tuple[str, str] | None,
    second: tuple[str, str],
    third: tuple[str, str],
) -> str:
    """Bars by month: `first` beside the stack of `second` and `third` (or the stack alone
    when `first` is None). Each is (label, colour); the figures are MonthFigures' in order,
    `second`/`third` reading `second_fen`/`third_fen` when `first` is drawn, else
    `first_fen`/`second_fen`."""
    if not months:
        return _empty(title)
    with _drawing():
        figure, axes = _figure(title)
        positions = list(range(len(months)))
        if first is None:
            low = [month.first_fen / 100 for month in months]
            high = [month.second_fen / 100 for month in months]
            width, offset = 0.6, 0.0
        else:
            low = [month.second_fen / 100 for month in months]
            high = [month.third_fen / 100 for month in months]
            width, offset = 0.38, 0.2
            axes.bar(
                [p - offset for p in positions],
                [month.first_fen / 100 for month in months],
                width,
                color=first[1],
                label=first[0],
            )
        stacked = [p + offset for p in positions]
        axes.bar(stacked, low, width, color=second[1], label=second[0])
        axes.bar(stacked, high, width, bottom=low, color=third[1], label=third[0])
        axes.set_xticks(positions, [month.month for month in months])
        if len(months) > 6:
            figure.autofmt_xdate()
        return _finish(figure, axes)


def _figure(title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_ylabel(say("chart_yuan"))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _finish(figure: Figure, axes: Any) -> str:
    axes.legend(frameon=False, loc="upper left")
    figure.tight_layout()
    return _svg(figure)


def _empty(title: str) -> str:
    """A short note in place of a chart with nothing to draw."""
    with _drawing():
        figure = Figure(figsize=(WIDTH_IN, 0.9))
        FigureCanvasSVG(figure)
        figure.text(0.02, 0.62, title, fontsize=12, fontweight="bold")
        figure.text(0.02, 0.2, say("chart_no_data"), fontsize=11, color="#666666")
        return _svg(figure)


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    # No date and a fixed salt (see _drawing): the same figures give the same SVG.
    # No metadata at all: its RDF block names outside vocabularies and the date.
    figure.savefig(
        out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    # The browser of an office PC without the server's font falls back to its own.
    text = out.getvalue().replace(f"font-family: '{_cjk_font()}'", _FAMILIES)
    # Inline in a page: from the <svg> element on, without the XML prolog and DOCTYPE.
    return text[text.index("<svg") :]


class _drawing:
    """The lock and the rc settings every chart is drawn with."""

    def __enter__(self) -> None:
        _DRAWING.acquire()
        self._context = matplotlib.rc_context(
            {
                "font.family": [_cjk_font()],
                "font.size": 9,
                "svg.fonttype": "none",
                "svg.hashsalt": "bangfu",
                "axes.unicode_minus": False,
            }
        )
        self._context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            self._context.__exit__(*exc)
        finally:
            _DRAWING.release()


@cache
def _cjk_font() -> str:
    """The family name of the server's Chinese font, registered with matplotlib; found with
    fc-match (fonts-wqy-zenhei). Without it the SVG still names the office fonts."""
    path = ""
    if shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", f"{CJK_FONT}:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        path = found.stdout.strip()
    if not path:
        return CJK_FONT
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())
