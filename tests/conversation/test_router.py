"""The router's delivery of long answers: no part over the platform's limit, nothing lost."""

from __future__ import annotations

from bangfu_bot.conversation.router import PASSIVE_LIMIT, pieces


def test_a_long_line_is_cut_at_the_limit_and_loses_nothing() -> None:
    text = "请按时参加组织生活会。" * 130  # 1,430 characters, no line end
    parts = pieces(text)
    assert [len(part) for part in parts] == [600, 600, 230]
    assert "".join(parts) == text


def test_a_long_answer_is_cut_at_a_blank_line_before_a_line_end() -> None:
    first, second = "甲" * 400, "乙" * 100 + "\n" + "丙" * 300
    assert pieces(first + "\n\n" + second) == [first, second]
    lines = "\n".join(["丁" * 250] * 3)  # no blank line: cut at the last line end that fits
    assert pieces(lines) == ["丁" * 250 + "\n" + "丁" * 250, "丁" * 250]
    assert all(len(part) <= PASSIVE_LIMIT for part in pieces(lines))


def test_a_short_answer_is_left_whole() -> None:
    assert pieces("您好\n\n请回复 1") == ["您好\n\n请回复 1"]
    assert pieces("") == []
