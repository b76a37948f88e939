"""The holidays file: read with one-line errors naming file and line, and written by
`bangfu-bot holidays update` from the chinese-calendar package (here a fake of its data, and
the package itself where it is installed)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from bangfu_bot.cli import main
from bangfu_bot.common.holidays import (
    HolidaysInvalid,
    from_library,
    load_holidays,
    parse_years,
    update_file,
    year_ranges,
)
from tests.conftest import CONVERSATIONS

SHIPPED = CONVERSATIONS / "holidays.toml"

GOOD = """# a comment
[2025]
source = "typed in by hand"
days_off = [
  2025-10-01, 2025-10-02, 2025-10-03, 2025-10-04, 2025-10-05,  # 国庆节
  2025-10-06,  # 中秋
  2025-10-07, 2025-10-08,  # 国庆节
]
make_up_days = [2025-09-28, 2025-10-11]
"""


def fake_library(version: str = "9.9") -> SimpleNamespace:
    """The parts of chinese_calendar that `from_library` reads, for 2025's National Day."""
    national = SimpleNamespace(value="National Day", chinese="国庆节")
    autumn = SimpleNamespace(value="Mid-autumn Festival", chinese="中秋")
    off = {date(2025, 10, day): national.value for day in (1, 2, 3, 4, 5, 7, 8)}
    off[date(2025, 10, 6)] = autumn.value
    # The package also lists every ordinary weekday as a workday: only weekend ones are kept.
    work = {
        date(2025, 9, 28): national.value,
        date(2025, 10, 11): national.value,
        date(2025, 10, 9): national.value,
    }
    return SimpleNamespace(
        Holiday=[national, autumn], holidays=off, workdays=work, __version__=version
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_reads_and_holds_the_years_it_was_written_for() -> None:
    holidays = load_holidays(SHIPPED)
    assert {2024, 2025, 2026} <= holidays.years
    assert date(2025, 10, 1) in holidays.days_off and date(2025, 9, 28) in holidays.make_up_days
    assert not holidays.is_working_day(date(2026, 10, 1))  # 国庆节, a Thursday
    assert holidays.is_working_day(date(2026, 10, 10))  # the Saturday worked in its place


def test_a_file_written_by_hand_reads_with_its_comments(tmp_path: Path) -> None:
    holidays = load_holidays(write(tmp_path, GOOD))
    assert holidays.years == {2025}
    assert len(holidays.days_off) == 8 and len(holidays.make_up_days) == 2
    assert (
        holidays.describe() == f"{tmp_path / 'holidays.toml'}: public holidays and "
        "make-up days of 2025"
    )


def test_a_missing_file_holds_no_year_and_counts_monday_to_friday(tmp_path: Path) -> None:
    holidays = load_holidays(tmp_path / "holidays.toml")
    assert holidays.years == frozenset()
    assert holidays.is_working_day(date(2025, 10, 1))  # a Wednesday, by the weekend rule
    assert not holidays.is_working_day(date(2025, 9, 28))  # a Sunday
    assert "no year" in holidays.describe()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # TOML itself: the parser's line.
        (GOOD.replace("2025-10-02,", "2025-10-02 2025-10-03,", 1), 5, "TOML"),
        # A table that is not a year.
        (GOOD + "\n[national]\ndays_off = []\n", 11, "'national' is not a year"),
        # A key the file does not know.
        (GOOD.replace('source = "typed in by hand"', 'sauce = "typed"'), 3, "unknown key 'sauce'"),
        # A day of another year, on its own line.
        (GOOD.replace("  2025-10-06,  # 中秋", "  2026-10-06,  # 中秋"), 6, "another year"),
        # A make-up day that is not a Saturday or Sunday.
        (GOOD.replace("2025-10-11]", "2025-10-10]"), 9, "make-up working day on a weekday"),
        # Not a list, not a date.
        (
            GOOD.replace("make_up_days = [2025-09-28, 2025-10-11]", 'make_up_days = "none"'),
            9,
            "must be a list",
        ),
        (
            GOOD.replace("make_up_days = [2025-09-28, 2025-10-11]", 'make_up_days = ["09-28"]'),
            9,
            "is not a date",
        ),
        # The same day off and worked.
        (GOOD.replace("2025-10-11]", "2025-10-11, 2025-10-04]"), 5, "both a day off and a make-up"),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HolidaysInvalid) as invalid:
        load_holidays(path)
    message = str(invalid.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_a_missing_year_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    holidays = load_holidays(SHIPPED)
    with caplog.at_level(logging.WARNING):
        holidays.nth_working_day(date(2031, 1, 1), 3)
        holidays.nth_working_day(date(2031, 2, 1), 3)
    lines = [r.getMessage() for r in caplog.records if "2031" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith(f"{SHIPPED} has no 2031: ")
    assert "Monday to Friday" in lines[0] and "bangfu-bot holidays update" in lines[0]


def test_years_are_given_as_a_range_or_a_list() -> None:
    assert parse_years("2024-2027") == [2024, 2025, 2026, 2027]
    assert parse_years("2026") == [2026]
    assert parse_years("2024, 2026") == [2024, 2026]
    for wrong in ("24-27", "2027-2024", "next", ""):
        with pytest.raises(ValueError, match="--years"):
            parse_years(wrong)
    assert year_ranges([2026, 2024, 2025, 2028]) == "2024-2026, 2028"


def test_the_library_gives_the_days_off_and_the_weekend_days_worked() -> None:
    known, unknown = from_library([2025, 2027], fake_library())
    assert unknown == [2027]
    (year,) = known
    assert year.source == "chinese-calendar 9.9"
    assert sorted(year.make_up_days) == [date(2025, 9, 28), date(2025, 10, 11)]
    assert year.days_off[date(2025, 10, 6)] == "中秋" and len(year.days_off) == 8


def test_an_update_writes_the_library_years_and_keeps_the_others(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD.replace("[2025]", "[2027]")
        .replace("2025-", "2027-")
        .replace("2027-10-11", "2027-10-09")
        .replace("2027-09-28", "2027-09-26"),
    )
    known, _ = from_library([2025], fake_library())
    assert update_file(path, known) == [2025, 2027]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Public holidays")
    assert 'source = "typed in by hand"' in text  # the hand-written 2027, as it was
    assert "2025-10-06,  # 中秋" in text and 'source = "chinese-calendar 9.9"' in text
    holidays = load_holidays(path)
    assert holidays.years == {2025, 2027}
    assert holidays.is_working_day(date(2025, 10, 11)) and not holidays.is_working_day(
        date(2025, 10, 8)
    )
    # A second run changes nothing.
    update_file(path, known)
    assert path.read_text(encoding="utf-8") == text


def test_an_update_never_overwrites_a_malformed_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[2025\n")
    known, _ = from_library([2025], fake_library())
    with pytest.raises(HolidaysInvalid):
        update_file(path, known)
    assert path.read_text(encoding="utf-8") == "[2025\n"


def test_the_command_with_the_installed_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chinese_calendar = pytest.importorskip("chinese_calendar")
    path = tmp_path / "holidays.toml"
    assert main(["holidays", "update", "--years", "2024-2025", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2025: " in out and f"wrote {path}: 2024-2025" in out
    holidays = load_holidays(path)
    assert not holidays.is_working_day(date(2025, 10, 8))
    assert holidays.is_working_day(date(2025, 9, 28)) and holidays.is_working_day(
        date(2025, 10, 11)
    )
    # The shipped file says what the package says, for every year it holds.
    shipped = load_holidays(SHIPPED)
    known, _ = from_library(sorted(shipped.years), chinese_calendar)
    assert {y.year for y in known} == set(shipped.years)
    for year in known:
        assert {d for d in shipped.days_off if d.year == year.year} == set(year.days_off)
        assert {d for d in shipped.make_up_days if d.year == year.year} == set(year.make_up_days)


def test_the_command_refuses_bad_years(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["holidays", "update", "--years", "soon", "--file", str(tmp_path / "h.toml")]) == 2
    assert "--years" in capsys.readouterr().err
