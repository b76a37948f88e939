"""Festival dates from the lunar calendar, and how a campaign's dates are planned."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lunardate import LunarDate

from bangfu_bot.visits.enums import Occasion
from bangfu_bot.visits.festivals import (
    double_ninth_after,
    festival_after,
    july_first_after,
    spring_festival_after,
)
from bangfu_bot.visits.service import VisitRefused, plan_campaign


@pytest.mark.parametrize(
    ("opened", "festival"),
    [
        (date(2026, 11, 10), date(2027, 2, 6)),
        (date(2026, 12, 31), date(2027, 2, 6)),
        # Early January is still the old lunar year: the festival a few weeks on, not 2028's.
        (date(2027, 1, 1), date(2027, 2, 6)),
        (date(2027, 1, 5), date(2027, 2, 6)),
        (date(2027, 2, 5), date(2027, 2, 6)),
        # From the festival itself on, the next one.
        (date(2027, 2, 6), date(2028, 1, 26)),
        (date(2027, 2, 10), date(2028, 1, 26)),
        (date(2026, 2, 16), date(2026, 2, 17)),
    ],
)
def test_spring_festival_is_the_next_lunar_new_year(opened: date, festival: date) -> None:
    assert spring_festival_after(opened) == festival
    assert festival_after(Occasion.SPRING_FESTIVAL, opened) == festival


def test_double_ninth_and_july_first() -> None:
    assert double_ninth_after(date(2026, 9, 1)) == date(2026, 10, 18)
    assert double_ninth_after(date(2026, 10, 18)) == date(2027, 10, 8)
    assert double_ninth_after(date(2026, 12, 1)) == date(2027, 10, 8)
    assert july_first_after(date(2026, 6, 1)) == date(2026, 7, 1)
    assert july_first_after(date(2026, 7, 1)) == date(2027, 7, 1)


@given(st.dates(min_value=date(1901, 3, 1), max_value=date(2098, 12, 31)))
def test_spring_festival_is_the_first_lunar_new_year_after_any_day(day: date) -> None:
    festival = spring_festival_after(day)
    lunar = LunarDate.from_solar_date(festival.year, festival.month, festival.day)
    assert (lunar.month, lunar.day, bool(lunar.is_leap_month)) == (1, 1, False)
    assert day < festival <= day + timedelta(days=400)
    # No new year's day in between.
    for offset in range(1, (festival - day).days):
        between = day + timedelta(days=offset)
        inner = LunarDate.from_solar_date(between.year, between.month, between.day)
        assert (inner.month, inner.day) != (1, 1)


def test_a_campaign_plan_defaults_to_the_day_before() -> None:
    plan = plan_campaign(Occasion.SPRING_FESTIVAL, date(2027, 1, 5))
    assert (plan.name, plan.occasion_on, plan.deadline) == (
        "2027年春节走访慰问",
        date(2027, 2, 6),
        date(2027, 2, 5),
    )
    assert plan.key == "spring_festival:2027-02-06"
    july = plan_campaign(Occasion.JULY_FIRST, date(2027, 6, 1), deadline=date(2027, 6, 25))
    assert (july.name, july.deadline) == ("2027年七一走访慰问", date(2027, 6, 25))
    flood = plan_campaign(
        Occasion.CUSTOM, date(2027, 6, 1), name="防汛慰问", occasion_on=date(2027, 6, 20)
    )
    assert (flood.name, flood.deadline) == ("防汛慰问", date(2027, 6, 19))


def test_impossible_campaign_dates_are_refused() -> None:
    with pytest.raises(VisitRefused, match="晚于") as late:
        plan_campaign(Occasion.SPRING_FESTIVAL, date(2027, 1, 5), deadline=date(2027, 2, 8))
    assert late.value.fixable
    with pytest.raises(VisitRefused, match="已经过了"):
        plan_campaign(Occasion.SPRING_FESTIVAL, date(2027, 1, 5), deadline=date(2027, 1, 4))
    with pytest.raises(VisitRefused, match="已经过了"):
        # Opened on the day before the festival: its default deadline is today, still fine;
        # a custom occasion dated yesterday is not.
        plan_campaign(Occasion.CUSTOM, date(2027, 6, 1), name="慰问", occasion_on=date(2027, 5, 31))
    assert plan_campaign(Occasion.SPRING_FESTIVAL, date(2027, 2, 5)).deadline == date(2027, 2, 5)
    with pytest.raises(VisitRefused, match="名称和日期"):
        plan_campaign(Occasion.CUSTOM, date(2027, 6, 1))
