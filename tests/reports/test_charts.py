"""The desk's charts: SVG text with Chinese labels, nothing fetched from outside, the same
figures as the fund report, and a short note where there is nothing to draw."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.reports.charts import (
    MonthFigures,
    expected_repayments_chart,
    expected_repayments_series,
    fund_balance_chart,
    fund_balance_series,
    lent_and_repaid_chart,
    lent_and_repaid_series,
)
from bangfu_bot.reports.money import fund_position
from tests.ledger.test_export import (
    County,
    county,  # noqa: F401  (the ledger's two-township county)
)
from tests.reports.conftest import Lending

TODAY = date(2027, 2, 15)


def assert_self_contained(svg: str) -> None:
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    # The only address is the SVG namespace itself: no font, image or script from outside.
    addresses = set(re.findall(r"https?://[^\s\"')]+", svg))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "<script" not in svg and "@import" not in svg


async def test_the_balance_ends_where_the_fund_stands(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    points = await fund_balance_series(session)
    position = await fund_position(session)

    assert points[0].day == date(2026, 1, 5) and points[0].cash_fen == 27_000_000
    assert (points[-1].cash_fen, points[-1].outstanding_fen) == (
        position.cash_fen,
        position.outstanding_fen,
    )
    svg = await fund_balance_chart(session)
    assert_self_contained(svg)
    for label in ("帮扶基金余额", "现有资金", "在外借款本金", "金额（元）"):
        assert label in svg
    assert "WenQuanYi Zen Hei" in svg


async def test_lent_and_repaid_by_month(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    months = await lent_and_repaid_series(session)

    assert [month.month for month in months] == ["2026-03", "2026-12"]
    assert (months[0].first_fen, months[0].second_fen) == (1_500_000, 0)
    assert (months[1].first_fen, months[1].second_fen) == (0, 250_000)
    assert months[1].third_fen > 0
    svg = await lent_and_repaid_chart(session)
    assert_self_contained(svg)
    assert "借款发放" in svg and "收回本金" in svg and "2026-12" in svg


async def test_expected_repayments_for_the_next_twelve_months(
    session: AsyncSession, county: County, lending: Lending, baishui: int
) -> None:
    months = await expected_repayments_series(session, today=TODAY)

    assert len(months) == 12 and months[0].month == "2027-02" and months[-1].month == "2028-01"
    december = next(month for month in months if month.month == "2027-12")
    assert december.first_fen == 500_000  # 陈志强's and 刘德明's second halves
    assert sum(month.first_fen for month in months) == 500_000  # 王建国's bullet is later
    white = await expected_repayments_series(session, today=TODAY, township_id=baishui)
    assert sum(month.first_fen for month in white) == 250_000
    svg = await expected_repayments_chart(session, today=TODAY)
    assert_self_contained(svg)
    assert "今后十二个月预计还款" in svg and "本金" in svg


async def test_an_empty_series_says_there_is_no_data(session: AsyncSession, county: County) -> None:
    assert await expected_repayments_series(session, today=TODAY) == ()
    for svg in (
        await fund_balance_chart(session),
        await lent_and_repaid_chart(session),
        await expected_repayments_chart(session, today=TODAY),
    ):
        assert_self_contained(svg)
        assert "暂无数据" in svg
        assert "<path" not in svg.split("</defs>")[-1] or "金额（元）" not in svg


async def test_the_same_figures_draw_the_same_svg(
    session: AsyncSession, county: County, lending: Lending
) -> None:
    assert await lent_and_repaid_chart(session) == await lent_and_repaid_chart(session)
    assert MonthFigures("2027-01", 1, 2).third_fen == 0
