"""Dates as people in the county write them (the patterns live in messages.toml)."""

from __future__ import annotations

from datetime import date, datetime

from bangfu_bot.texts import texts


def chinese_date(day: date | datetime) -> str:
    """2026年12月7日."""
    return texts("bangfu_bot.common")["full_date"].format(y=day.year, m=day.month, d=day.day)


def month_day(day: date | datetime) -> str:
    """12月7日."""
    return texts("bangfu_bot.common")["month_day"].format(m=day.month, d=day.day)
