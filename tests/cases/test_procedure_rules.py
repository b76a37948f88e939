"""The procedure's settings: the notice's length in calendar or working days, the basis of
the evaluation's majority, and the meeting record's consistency checks."""

from __future__ import annotations

import logging
import shutil
from datetime import date
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bangfu_bot.app import create_app
from bangfu_bot.cases.procedure import Rules, evaluation_preview, notice_end
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.cli import main
from bangfu_bot.clock import SystemClock
from bangfu_bot.common.holidays import HolidaysInvalid, load_holidays
from bangfu_bot.settings import load_settings
from tests.conftest import CONVERSATIONS

# Working days as the county counts them: the shipped conversations/holidays.toml.
WORKING = Rules(notice_working_days=True, holidays=load_holidays(CONVERSATIONS / "holidays.toml"))

MEETING = {
    "entitled": 9,
    "present": 7,
    "votes_for": 4,
    "votes_against": 2,
    "abstain": 1,
    "counter": "李书文",
    "scrutineer": "刘洋",
}


def test_a_notice_of_seven_calendar_or_seven_working_days() -> None:
    monday = date(2026, 11, 30)
    assert notice_end(monday, Rules()) == date(2026, 12, 6)  # Sunday
    working = Rules(notice_working_days=True)
    assert notice_end(monday, working) == date(2026, 12, 8)  # Tuesday of the next week
    friday = date(2026, 12, 4)
    assert notice_end(friday, working) == date(2026, 12, 14)  # over two weekends


def test_a_notice_starting_before_national_day_ends_after_the_holiday() -> None:
    # 2025: 1-8 October off (国庆 and 中秋), 28 September and 11 October worked instead.
    monday = date(2025, 9, 29)
    # Mon 29, Tue 30; 1-8 October off; Thu 9, Fri 10, Sat 11 (made up), Mon 13, Tue 14.
    assert notice_end(monday, WORKING) == date(2025, 10, 14)
    # The weekend rule alone would have ended it in the middle of the holiday.
    assert notice_end(monday, Rules(notice_working_days=True)) == date(2025, 10, 7)


def test_a_make_up_saturday_counts_as_a_working_day() -> None:
    saturday = date(2025, 10, 11)
    assert saturday.weekday() == 5
    assert (
        notice_end(
            saturday, Rules(notice_days=1, notice_working_days=True, holidays=WORKING.holidays)
        )
        == saturday
    )
    # An ordinary Saturday does not: a one-day notice begun on it ends on Monday.
    assert notice_end(
        date(2025, 10, 18),
        Rules(notice_days=1, notice_working_days=True, holidays=WORKING.holidays),
    ) == date(2025, 10, 20)
    # 2026's Spring Festival: Fri 13, Sat 14 (made up); 15-23 February off (a Monday among
    # them); Tue 24 to Fri 27, and Sat 28 (made up) is the seventh.
    assert notice_end(date(2026, 2, 13), WORKING) == date(2026, 2, 28)


def test_a_year_missing_from_the_file_is_warned_about_and_counted_monday_to_friday(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "conversations"
    shutil.copytree(CONVERSATIONS, folder)
    rules = ProcedureRules.from_settings(
        load_settings(
            {"BANGFU_CONVERSATIONS_DIR": str(folder), "BANGFU_NOTICE_WORKING_DAYS": "true"}
        )
    )
    assert not rules.holidays.covers(2035)
    with caplog.at_level(logging.WARNING):
        # 1 October 2035 is a Monday: with no holidays for 2035, seven weekdays.
        assert notice_end(date(2035, 10, 1), rules) == date(2035, 10, 9)
    (warning,) = [r.getMessage() for r in caplog.records if "2035" in r.getMessage()]
    assert warning == (
        f"{folder / 'holidays.toml'} has no 2035: working days in 2035 are counted Monday to "
        "Friday only, without its public holidays and make-up days (run `bangfu-bot holidays "
        "update`, or add [2035] by hand from the State Council's notice)"
    )


async def test_the_bot_warns_at_start_when_this_year_is_missing(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "conversations"
    shutil.copytree(CONVERSATIONS, folder)
    (folder / "holidays.toml").write_text("# no year yet\n", encoding="utf-8")
    settings = load_settings(
        {
            "BANGFU_CONVERSATIONS_DIR": str(folder),
            "BANGFU_DATABASE_URL": database_url,
            "BANGFU_STORAGE_DIR": str(tmp_path / "storage"),
            "BANGFU_NOTICE_WORKING_DAYS": "true",
        }
    )
    server = TestServer(create_app(settings, migrate=True))
    with caplog.at_level(logging.WARNING):
        await server.start_server()
        await server.close()
    year = SystemClock().now().astimezone(settings.tz).year
    (warning,) = [r.getMessage() for r in caplog.records if "holidays.toml" in r.getMessage()]
    assert warning.startswith(f"{folder / 'holidays.toml'} has no {year}: ")
    assert "\n" not in warning and "Monday to Friday only" in warning


def test_flows_check_warns_when_this_year_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "conversations"
    shutil.copytree(CONVERSATIONS, folder)
    (folder / "holidays.toml").write_text("# no year yet\n", encoding="utf-8")
    monkeypatch.setenv("BANGFU_CONVERSATIONS_DIR", str(folder))
    assert main(["flows", "check"]) == 0
    out, err = capsys.readouterr()
    assert "flows OK" in out and "no year of public holidays" in out
    (line,) = err.strip().splitlines()
    assert line.startswith("bangfu-bot: warning: ") and "Monday to Friday only" in line


def test_a_malformed_holidays_file_is_one_line_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "conversations"
    shutil.copytree(CONVERSATIONS, folder)
    path = folder / "holidays.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = next(n for n, line in enumerate(lines) if line.startswith("  2025-10-01"))
    lines[broken] = lines[broken].replace("2025-10-01", "2025-10-32")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(
        {"BANGFU_CONVERSATIONS_DIR": str(folder), "BANGFU_STORAGE_DIR": str(tmp_path / "storage")}
    )
    with pytest.raises(HolidaysInvalid) as invalid:
        ProcedureRules.from_settings(settings)
    assert str(invalid.value).startswith(f"{path}:{broken + 1}: TOML: ")
    # The bot refuses to start on it, and the check names it, each in one line.
    monkeypatch.setenv("BANGFU_CONVERSATIONS_DIR", str(folder))
    monkeypatch.setenv("BANGFU_STORAGE_DIR", str(tmp_path / "storage"))
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.strip() == f"bangfu-bot: {invalid.value}"
    assert main(["flows", "check"]) == 1
    assert capsys.readouterr().err.strip() == str(invalid.value)


def test_the_majority_is_of_those_entitled_or_of_those_present() -> None:
    # 4 for: not more than half of 9 entitled, but more than half of 7 present.
    assert "没有通过" in evaluation_preview(MEETING, Rules()).lines[0]
    assert "通过" in evaluation_preview(MEETING, Rules(evaluation_basis="present")).lines[0]
    assert "没有通过" not in evaluation_preview(MEETING, Rules(evaluation_basis="present")).lines[0]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"present": 10}, "比应到的 9 人还多"),
        ({"present": 4, "votes_for": 1}, "没有超过应到 9 人的一半"),
        ({"scrutineer": "李书文"}, "不能是同一个人"),
    ],
)
def test_a_record_that_does_not_add_up_is_not_read_as_a_result(
    change: dict[str, object], problem: str
) -> None:
    preview = evaluation_preview({**MEETING, **change}, Rules())
    assert preview.lines == [] and any(problem in line for line in preview.problems)


def test_the_settings_reach_the_rules() -> None:
    rules = ProcedureRules.from_settings(
        load_settings({"BANGFU_NOTICE_WORKING_DAYS": "true", "BANGFU_EVALUATION_BASIS": "present"})
    )
    assert rules.notice_working_days and rules.evaluation_basis == "present"
    # The holidays come from the conversations folder's holidays.toml.
    assert rules.holidays.covers(2025)
