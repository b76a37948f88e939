"""The procedure's settings: the notice's length in calendar or working days, the basis of
the evaluation's majority, and the meeting record's consistency checks."""

from __future__ import annotations

from datetime import date

import pytest

from bangfu_bot.cases.procedure import Rules, evaluation_preview, notice_end
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.settings import load_settings

MEETING = {"entitled": 9, "present": 7, "votes_for": 4, "votes_against": 2, "abstain": 1,
           "counter": "李书文", "scrutineer": "刘洋"}


def test_a_notice_of_seven_calendar_or_seven_working_days() -> None:
    monday = date(2026, 11, 30)
    assert notice_end(monday, Rules()) == date(2026, 12, 6)  # Sunday
    working = Rules(notice_working_days=True)
    assert notice_end(monday, working) == date(2026, 12, 8)  # Tuesday of the next week
    friday = date(2026, 12, 4)
    assert notice_end(friday, working) == date(2026, 12, 14)  # over two weekends


def test_the_majority_is_of_those_entitled_or_of_those_present() -> None:
    # 4 for: not more than half of 9 entitled, but more than half of 7 present.
    assert "没有通过" in evaluation_preview(MEETING, Rules()).lines[0]
    assert "通过" in evaluation_preview(MEETING, Rules(evaluation_basis="present")).lines[0]
    assert "没有通过" not in evaluation_preview(MEETING, Rules(evaluation_basis="present")).lines[0]


@pytest.mark.parametrize(("change", "problem"), [
    ({"present": 10}, "比应到的 9 人还多"),
    ({"present": 4, "votes_for": 1}, "没有超过应到 9 人的一半"),
    ({"scrutineer": "李书文"}, "不能是同一个人"),
])
def test_a_record_that_does_not_add_up_is_not_read_as_a_result(change: dict[str, object],
                                                                problem: str) -> None:
    preview = evaluation_preview({**MEETING, **change}, Rules())
    assert preview.lines == [] and any(problem in line for line in preview.problems)


def test_the_settings_reach_the_rules() -> None:
    rules = ProcedureRules.from_settings(load_settings({"BANGFU_NOTICE_WORKING_DAYS": "true",
                           "BANGFU_EVALUATION_BASIS": "present"}))
    assert rules.notice_working_days and rules.evaluation_basis == "present"
