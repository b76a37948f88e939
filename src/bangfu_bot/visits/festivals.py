"""Festival dates: Spring Festival and Double Ninth from the lunar calendar, July 1st fixed.

A campaign is for the next festival strictly after the day it opens. For the lunar ones
that is decided in lunar terms, so a campaign opened in early January (still the old lunar
year) prepares the festival a few weeks later, not the one a year later.
"""

from __future__ import annotations

from datetime import date, timedelta

from lunardate import LunarDate

from bangfu_bot.visits.enums import Occasion


def spring_festival_after(day: date) -> date:
    """春节: lunar 1/1 of the lunar year after the one `day` falls in."""
    lunar = LunarDate.from_solar_date(day.year, day.month, day.day)
    return LunarDate(lunar.year + 1, 1, 1).to_solar_date()


def double_ninth_after(day: date) -> date:
    """重阳: lunar 9/9 of `day`'s lunar year, or of the next one if it is not after `day`."""
    lunar = LunarDate.from_solar_date(day.year, day.month, day.day)
    festival = LunarDate(lunar.year, 9, 9).to_solar_date()
    if festival <= day:
        festival = LunarDate(lunar.year + 1, 9, 9).to_solar_date()
    return festival


def july_first_after(day: date) -> date:
    """七一: the next July 1st after `day`."""
    festival = date(day.year, 7, 1)
    return festival if festival > day else date(day.year + 1, 7, 1)


def festival_after(occasion: Occasion, day: date) -> date:
    """The date of a festival occasion next after `day`."""
    if occasion == Occasion.SPRING_FESTIVAL:
        return spring_festival_after(day)
    if occasion == Occasion.DOUBLE_NINTH:
        return double_ninth_after(day)
    if occasion == Occasion.JULY_FIRST:
        return july_first_after(day)
    raise ValueError(f"{occasion} has no fixed date")


def default_deadline(festival: date) -> date:
    """Visits end the day before the festival (the money must arrive before it)."""
    return festival - timedelta(days=1)
