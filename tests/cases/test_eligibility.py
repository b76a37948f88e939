"""The eligibility line: the most specific rule for area, year and urban/rural, and what
the household's figures say against it (it informs; the branch decides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bangfu_bot.cases.eligibility import Rule, judge, load_rules, rule_for

RULES = [
    Rule(2025, "*", "农村", "household", 80_000),
    Rule(2026, "*", "农村", "household", 86_500),
    Rule(2026, "河口乡党委", "农村", "per_capita", 30_000),
    Rule(2026, "*", "城镇", "dibao", None),
]


def test_a_township_line_comes_before_the_county_line() -> None:
    assert rule_for(RULES, year=2026, area="河口乡党委", urban_rural="农村") == RULES[2]
    assert rule_for(RULES, year=2026, area="青山镇党委", urban_rural="农村") == RULES[1]


def test_the_latest_line_not_after_the_year_applies() -> None:
    assert rule_for(RULES, year=2025, area="青山镇党委", urban_rural="农村") == RULES[0]
    assert rule_for(RULES, year=2028, area="青山镇党委", urban_rural="农村") == RULES[1]
    assert rule_for(RULES, year=2024, area="青山镇党委", urban_rural="农村") is None


def test_household_per_capita_and_dibao_lines() -> None:
    county, township, town = RULES[1], RULES[2], RULES[3]
    assert (
        judge(county, household_income_fen=86_500, household_size=3, receives_dibao=None).above
        is False
    )  # on the line is not above it
    assert (
        judge(county, household_income_fen=86_501, household_size=3, receives_dibao=None).above
        is True
    )
    # 90,000 fen for three people is 30,000 each: on the per-person line, not above.
    assert (
        judge(township, household_income_fen=90_000, household_size=3, receives_dibao=None).above
        is False
    )
    assert (
        judge(township, household_income_fen=90_003, household_size=3, receives_dibao=None).above
        is True
    )
    assert judge(town, household_income_fen=0, household_size=1, receives_dibao=True).above is False
    assert judge(town, household_income_fen=0, household_size=1, receives_dibao=False).above is True
    assert (
        judge(None, household_income_fen=10**9, household_size=1, receives_dibao=False).above
        is False
    )  # no line: nothing is flagged


def test_the_shipped_lines_load(tmp_path: Path) -> None:
    shipped = load_rules(Path(__file__).resolve().parents[2] / "conversations" / "eligibility.toml")
    rural = rule_for(shipped, year=2026, area="青山镇党委", urban_rural="农村")
    # 865 yuan is a rural poverty line: net income per person a year, not per household.
    assert rural is not None and (rural.basis, rural.max_fen) == ("per_capita", 86_500)
    assert load_rules(tmp_path / "none.toml") == []  # no file: no rules, nothing flagged


def test_a_line_is_per_person_unless_it_says_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "eligibility.toml"
    path.write_text(
        '[[rule]]\nyear = 2026\nurban_rural = "农村"\nmax_yuan = 865\n', encoding="utf-8"
    )
    (rule,) = load_rules(path)
    assert rule.basis == "per_capita"
    # 7,700 yuan for a household of three is 2,566 yuan each: compared per person.
    verdict = judge(rule, household_income_fen=770_000, household_size=3, receives_dibao=None)
    assert verdict.above and verdict.basis == "per_capita"
    assert verdict.income_fen == 256_666 and verdict.line_fen == 86_500
    assert not judge(
        rule, household_income_fen=250_000, household_size=3, receives_dibao=None
    ).above  # 833 yuan each: under the line


def test_a_line_with_an_unknown_basis_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "eligibility.toml"
    path.write_text(
        '[[rule]]\nyear = 2026\nurban_rural = "农村"\nbasis = "per_head"\nmax_yuan = 865\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="per_head"):
        load_rules(path)
