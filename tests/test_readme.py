"""The README shows the authority table as the code has it."""

from __future__ import annotations

from pathlib import Path

from bangfu_bot.authority import table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_renders_the_authority_table() -> None:
    assert table_markdown() in README.read_text(encoding="utf-8")
