"""The eligibility line (帮扶对象标准) from conversations/eligibility.toml.

Lines are data per year, area and urban/rural, because they follow the local minimum
living allowance and change every year. The result only informs: the branch decides.

A line is compared per person unless the file says `basis = "household"`: China's rural
poverty lines (the report's 865 yuan among them) are net income per person a year.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

BASES = ("per_capita", "household", "dibao")
DEFAULT_BASIS = "per_capita"


@dataclass(frozen=True)
class Rule:
    """One eligibility line."""

    year: int
    area: str
    urban_rural: str
    basis: str
    max_fen: int | None


@dataclass(frozen=True)
class Verdict:
    """Whether the household looks above the line, the line to quote, and the income it
    was compared with (per person or per household, as the basis says)."""

    above: bool
    line_fen: int | None
    basis: str
    income_fen: int = 0


def load_rules(path: str | Path) -> list[Rule]:
    """Read the rules; a missing file means no rules (nothing is ever flagged)."""
    file = Path(path)
    if not file.exists():
        return []
    data = tomllib.loads(file.read_text(encoding="utf-8"))
    rules = []
    for number, raw in enumerate(data.get("rule", []), start=1):
        max_yuan = raw.get("max_yuan")
        basis = str(raw.get("basis", DEFAULT_BASIS))
        if basis not in BASES:
            raise ValueError(f"{file}: rule {number}: basis {basis!r} is not one of {BASES}")
        if basis != "dibao" and max_yuan is None:
            raise ValueError(f"{file}: rule {number}: a {basis} line needs max_yuan")
        rules.append(
            Rule(
                year=int(raw["year"]),
                area=str(raw.get("area", "*")),
                urban_rural=str(raw["urban_rural"]),
                basis=basis,
                max_fen=round(max_yuan * 100) if max_yuan is not None else None,
            )
        )
    return rules


def rule_for(rules: list[Rule], *, year: int, area: str | None, urban_rural: str) -> Rule | None:
    """The most specific rule: this area before '*', the latest year not after `year`."""
    candidates = [
        rule
        for rule in rules
        if rule.urban_rural == urban_rural and rule.year <= year and rule.area in {area, "*"}
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda rule: (rule.year, rule.area != "*"))


def judge(
    rule: Rule | None,
    *,
    household_income_fen: int,
    household_size: int,
    receives_dibao: bool | None,
) -> Verdict:
    """Compare a household with its line."""
    if rule is None:
        return Verdict(False, None, "none")
    if rule.basis == "dibao":
        return Verdict(receives_dibao is False, None, "dibao")
    income = household_income_fen
    if rule.basis == "per_capita":
        income = household_income_fen // max(household_size, 1)
    return Verdict(
        rule.max_fen is not None and income > rule.max_fen, rule.max_fen, rule.basis, income
    )
