"""Putting values in workbook cells so that people's text stays text.

Every XLSX export writes its cells through `append` or `put`, never through openpyxl's own
`Worksheet.append`, `Worksheet.cell(..., value)` or `sheet["A1"] = ...`.

Why: openpyxl stores any string that starts with `=` as a live formula, and one that reads like
an error code (`#N/A`) as an error. Much of what the exports write is what people typed: a
member's answers, names in a household, a secretary's note on a case, a receipt number. A member
who answers `=HYPERLINK("http://…","点此查看")` would put a clickable link (or worse, a DDE
call) into the ledger that the township prints and passes around. So:

* a string is always stored as a string (data_type "s"), never as a formula or error;
* a string that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`,
  as the OWASP guidance on CSV/spreadsheet injection advises, so that the cell shows the text
  and it stays text when the sheet is copied, saved as CSV or the cell is edited and re-entered;
* numbers (negative ones too), dates, booleans and empty cells are written as they are;
* a formula the export builds itself must be wrapped in `Formula`, the only way to write one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

__all__ = ["DANGEROUS_STARTS", "Formula", "append", "put", "text"]

# What a spreadsheet may read as the start of a formula (OWASP, "CSV Injection").
DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Values written as they are; a string (or anything else) is not among them.
_AS_THEY_ARE = (bool, int, float, Decimal, date, datetime, time, timedelta)


@dataclass(frozen=True)
class Formula:
    """A formula the export itself builds, such as `Formula("=SUM(C3:C9)")`; never people's text."""

    expression: str

    def __post_init__(self) -> None:
        if not self.expression.startswith("=") or len(self.expression) < 2:
            raise ValueError(f"a formula starts with '=': {self.expression!r}")


def text(value: str) -> str:
    """`value` with a leading `'` when a spreadsheet could read it as a formula."""
    guarded = "'" + value if value.startswith(DANGEROUS_STARTS) else value
    # A bare CR reads back as LF unless the writer escaped it, and openpyxl escapes it only
    # when lxml is installed: writing LF makes the workbook the same either way.
    return guarded.replace("\r\n", "\n").replace("\r", "\n")


def append(sheet: Worksheet, values: Iterable[Any]) -> None:
    """Write `values` as the next row, as `Worksheet.append` would (an empty one leaves a blank
    row)."""
    sheet.append([_cell(sheet, value) for value in values])


def put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write `value` into one cell (1-based row and column) and return the cell."""
    cell = sheet.cell(row, column)
    _bind(cell, value)
    return cell


def _cell(sheet: Worksheet, value: Any) -> Cell:
    cell = Cell(sheet)
    _bind(cell, value)
    return cell


def _bind(cell: Cell, value: Any) -> None:
    if isinstance(value, Formula):
        cell.value = value.expression
        cell.data_type = "f"
    elif isinstance(value, str):
        cell.value = text(value)
        cell.data_type = "s"  # not "f", and not "e" for text such as "#N/A"
    elif value is None or isinstance(value, _AS_THEY_ARE):
        cell.value = value
    else:
        # bytes, rich text or openpyxl's own formula objects could carry a formula past us.
        raise TypeError(f"cannot write {type(value).__name__} to a workbook cell")
