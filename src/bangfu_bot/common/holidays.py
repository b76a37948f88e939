"""Public holidays and make-up working days (调休), kept as data in conversations/holidays.toml.

Each year the State Council publishes which days are off and which weekend days are worked
in their place. The file holds them year by year:

    [2026]
    source = "chinese-calendar 1.11.0"
    days_off = [2026-01-01, 2026-01-02, ...]
    make_up_days = [2026-01-04, ...]

`bangfu-bot holidays update` writes it from the chinese-calendar package for the years that
package knows (`from_library`, `update_file`); a year it does not know yet can be typed in by
hand from the State Council's notice. At run time the bot reads only the file: a working day
is Monday to Friday unless it is a day off, plus the make-up days. A year the file does not
hold is counted Monday to Friday, and a warning says so.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bangfu_bot.texts import speaker

log = logging.getLogger(__name__)
say = speaker("bangfu_bot.common")

FILE_NAME = "holidays.toml"
YEAR_KEYS = frozenset({"source", "days_off", "make_up_days"})
_YEAR = re.compile(r"^[0-9]{4}$")
_TABLE = re.compile(r"^\s*\[\s*\"?([0-9]{4})\"?\s*\]\s*(#.*)?$")
_ANY_TABLE = re.compile(r"^\s*\[\s*\"?([^\]\"]+?)\"?\s*\]")
SATURDAY = 5


class HolidaysInvalid(ValueError):
    """The holidays file cannot be used; str() is one line naming the file and the line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Holidays:
    """The days off and make-up working days of the years a holidays file holds."""

    days_off: frozenset[date] = frozenset()
    make_up_days: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    path: str = FILE_NAME
    # Years already warned about, so a missing year is said once, not on every notice.
    _warned: set[int] = field(default_factory=set, compare=False, repr=False)

    def covers(self, year: int) -> bool:
        """Whether the file holds this year's holidays."""
        return year in self.years

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday unless a day off; a make-up day (调休) is worked whatever its
        weekday. In a year the file does not hold: Monday to Friday."""
        if day.year in self.years:
            if day in self.make_up_days:
                return True
            if day in self.days_off:
                return False
        return day.weekday() < SATURDAY

    def nth_working_day(self, start: date, n: int) -> date:
        """The n-th working day counting from `start` (itself included when it is one)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day, counted = start, 0
        while True:
            if day.year not in self.years:
                self.warn_missing(day.year)
            if self.is_working_day(day):
                counted += 1
                if counted == n:
                    return day
            day += timedelta(days=1)

    def missing(self, year: int) -> str | None:
        """The one-line warning for a year the file does not hold, or None when it does."""
        if self.covers(year):
            return None
        return say("holidays_missing_year", path=self.path, year=year)

    def warn_missing(self, year: int) -> None:
        """Log the missing year's warning, once per year."""
        if year in self._warned or self.covers(year):
            return
        self._warned.add(year)
        log.warning("%s", self.missing(year))

    def describe(self) -> str:
        """Which years the file holds, for `bangfu-bot flows check` and `config`."""
        if not self.years:
            return say("holidays_no_years", path=self.path)
        return say("holidays_years", path=self.path, years=year_ranges(self.years))


def year_ranges(years: Iterable[int]) -> str:
    """2024-2026, 2028 for {2024, 2025, 2026, 2028}."""
    ordered = sorted(set(years))
    parts: list[str] = []
    start = previous = None
    for year in [*ordered, None]:
        if year is not None and previous is not None and year == previous + 1:
            previous = year
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = year
    return ", ".join(parts)


def parse_years(text: str) -> list[int]:
    """`2024-2027` or `2026` or `2024,2026` as a list of years; ValueError when not."""
    years: list[int] = []
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if not _YEAR.match(first) or (last and not _YEAR.match(last)):
            raise ValueError(say("holidays_years_usage", given=text))
        low, high = int(first), int(last or first)
        if high < low:
            raise ValueError(say("holidays_years_usage", given=text))
        years.extend(range(low, high + 1))
    return sorted(set(years))


# --- reading the file ------------------------------------------------------------------------


def load_holidays(path: str | Path) -> Holidays:
    """Read a holidays file. A missing file holds no year (every year is counted Monday to
    Friday); a malformed one raises HolidaysInvalid naming the file and the line."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Holidays(path=shown)
    except UnicodeDecodeError:
        raise HolidaysInvalid(shown, 1, say("holidays_not_utf8")) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+)", str(error))
        raise HolidaysInvalid(
            shown, int(found.group(1)) if found else 1, say("holidays_toml", error=str(error))
        ) from None
    lines = text.splitlines()
    days_off: set[date] = set()
    make_up: set[date] = set()
    years: set[int] = set()
    for key, value in data.items():
        line = _table_line(lines, key)
        if not _YEAR.match(key) or not isinstance(value, dict):
            raise HolidaysInvalid(
                shown, line or _key_line(lines, key, 0) or 1, say("holidays_not_a_year", name=key)
            )
        year = int(key)
        unknown = sorted(set(value) - YEAR_KEYS)
        if unknown:
            raise HolidaysInvalid(
                shown,
                _key_line(lines, unknown[0], line) or line,
                say("holidays_unknown_key", year=year, name=unknown[0]),
            )
        for name, into in (("days_off", days_off), ("make_up_days", make_up)):
            listed = value.get(name, [])
            if not isinstance(listed, list):
                raise HolidaysInvalid(
                    shown,
                    _key_line(lines, name, line) or line,
                    say("holidays_not_a_list", year=year, name=name),
                )
            for day in listed:
                _check_day(shown, lines, line, year, name, day)
                into.add(day)
        if "source" in value and not isinstance(value["source"], str):
            raise HolidaysInvalid(
                shown, _key_line(lines, "source", line) or line, say("holidays_source", year=year)
            )
        years.add(year)
    both = sorted(days_off & make_up)
    if both:
        raise HolidaysInvalid(
            shown,
            _value_line(lines, both[0].isoformat(), 0),
            say("holidays_both", day=both[0].isoformat()),
        )
    return Holidays(frozenset(days_off), frozenset(make_up), frozenset(years), shown)


def _check_day(shown: str, lines: list[str], line: int, year: int, name: str, day: Any) -> None:
    if not isinstance(day, date) or hasattr(day, "hour"):
        raise HolidaysInvalid(
            shown,
            _key_line(lines, name, line) or line,
            say("holidays_not_a_date", year=year, name=name, value=str(day)),
        )
    where = _value_line(lines, day.isoformat(), line)
    if day.year != year:
        raise HolidaysInvalid(
            shown, where, say("holidays_wrong_year", year=year, day=day.isoformat())
        )
    if name == "make_up_days" and day.weekday() < SATURDAY:
        raise HolidaysInvalid(shown, where, say("holidays_make_up_weekday", day=day.isoformat()))


def _table_line(lines: list[str], key: str) -> int:
    """The line of the table `[key]`, or 0."""
    for number, text in enumerate(lines, start=1):
        found = _ANY_TABLE.match(text)
        if found and found.group(1).strip() == key:
            return number
    return 0


def _key_line(lines: list[str], key: str, start: int) -> int:
    """The line of `key =` at or after line `start` (0: the whole file), or 0."""
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for number in range(max(start, 1), len(lines) + 1):
        if pattern.match(lines[number - 1]):
            return number
    return 0


def _value_line(lines: list[str], value: str, start: int) -> int:
    """The first line at or after `start` holding `value` outside a comment."""
    for number in range(max(start, 1), len(lines) + 1):
        if value in lines[number - 1].split("#", 1)[0]:
            return number
    return max(start, 1)


# --- writing the file from the chinese-calendar package ----------------------------------------


@dataclass(frozen=True)
class Year:
    """One year's days off and make-up days, each with the holiday it belongs to."""

    year: int
    days_off: dict[date, str]
    make_up_days: dict[date, str]
    source: str


def from_library(years: Iterable[int], library: Any) -> tuple[list[Year], list[int]]:
    """The years the library knows, and those it does not (no day of theirs in its data).

    `library` is the chinese_calendar module, or anything with its `holidays` and `workdays`
    (date -> the holiday's English name), `Holiday` (its names in Chinese) and `__version__`.
    """
    names = {holiday.value: holiday.chinese for holiday in library.Holiday}
    source = f"chinese-calendar {library.__version__}"
    known: list[Year] = []
    unknown: list[int] = []
    for year in sorted(set(years)):
        off = {
            day: names.get(name, name) for day, name in library.holidays.items() if day.year == year
        }
        # The library lists every Saturday and Sunday worked in place of a holiday.
        work = {
            day: names.get(name, name)
            for day, name in library.workdays.items()
            if day.year == year and day.weekday() >= SATURDAY
        }
        if not off:
            unknown.append(year)
            continue
        known.append(Year(year, off, work, source))
    return known, unknown


def render_year(year: Year) -> str:
    """One year's table, its days grouped by holiday, each group's name in a comment."""
    out = [f"[{year.year}]", f'source = "{year.source}"']
    for key, days in (("days_off", year.days_off), ("make_up_days", year.make_up_days)):
        if not days:
            out.append(f"{key} = []")
            continue
        out.append(f"{key} = [")
        groups: list[tuple[str, list[date]]] = []
        for day in sorted(days):
            if groups and groups[-1][0] == days[day]:
                groups[-1][1].append(day)
            else:
                groups.append((days[day], [day]))
        for name, group in groups:
            out.append("  " + ", ".join(d.isoformat() for d in group) + f",  # {name}")
        out.append("]")
    return "\n".join(out) + "\n"


def split_years(text: str) -> tuple[str, dict[int, str]]:
    """A holidays file's text as its opening comment and each year's block, verbatim."""
    head: list[str] = []
    blocks: dict[int, list[str]] = {}
    current: list[str] = head
    for line in text.splitlines():
        found = _TABLE.match(line)
        if found:
            current = blocks.setdefault(int(found.group(1)), [])
        current.append(line)
    return "\n".join(head), {
        year: "\n".join(block).rstrip() + "\n" for year, block in blocks.items()
    }


def update_file(path: str | Path, refreshed: Iterable[Year]) -> list[int]:
    """Write the refreshed years into the file, keeping every other year as it was written
    (checked first: a malformed file is not overwritten). Returns the years it holds."""
    path = Path(path)
    load_holidays(path)  # raises HolidaysInvalid on a malformed file
    kept: dict[int, str] = {}
    if path.exists():
        kept = split_years(path.read_text(encoding="utf-8"))[1]
    blocks = dict(kept)
    for year in refreshed:
        blocks[year.year] = render_year(year)
    header = say("holidays_file_header").rstrip("\n")
    text = header + "\n\n" + "\n".join(blocks[year] for year in sorted(blocks))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    partial.write_text(text, encoding="utf-8")
    load_holidays(partial)  # what is written must read back
    partial.replace(path)
    return sorted(blocks)
