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

A workbook with many rows (the ledger of a whole county) is written in openpyxl's write-only
mode: rows stream to the file and every cell's look (font, alignment, number format) is given
as it is appended, as a `Look`. A look is worked out against the workbook's styles once and
then copied onto each cell: looking a style up for every cell costs more than the cell itself.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from math import isinf, isnan
from typing import Any, BinaryIO, TypeAlias
from weakref import WeakKeyDictionary

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

__all__ = ["DANGEROUS_STARTS", "Book", "Formula", "Look", "Rows", "append", "put", "text"]

Sheet: TypeAlias = Worksheet | WriteOnlyWorksheet

# What a spreadsheet may read as the start of a formula (OWASP, "CSV Injection").
DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DANGEROUS_FIRST = frozenset(DANGEROUS_STARTS)
# Values written as they are; a string (or anything else) is not among them.
_AS_THEY_ARE = (bool, int, float, Decimal, date, datetime, time, timedelta)
# What openpyxl refuses or cuts in a cell's text, for rows written without it.
_ILLEGAL = ILLEGAL_CHARACTERS_RE
_TEXT_MAX = 32767


@dataclass(frozen=True)
class Formula:
    """A formula the export itself builds, such as `Formula("=SUM(C3:C9)")`; never people's text."""

    expression: str

    def __post_init__(self) -> None:
        if not self.expression.startswith("=") or len(self.expression) < 2:
            raise ValueError(f"a formula starts with '=': {self.expression!r}")


@dataclass(frozen=True, eq=False)
class Look:
    """How a cell looks. Make each look once (a module constant) and give it to many cells:
    a look is matched by identity, so that finding its worked-out style costs no hashing."""

    font: Font | None = None
    alignment: Alignment | None = None
    number_format: str | None = None


# Each workbook's looks, worked out into its own style tables.
_styles: WeakKeyDictionary[Workbook, dict[Look, StyleArray]] = WeakKeyDictionary()


def text(value: str) -> str:
    """`value` with a leading `'` when a spreadsheet could read it as a formula."""
    guarded = "'" + value if value.startswith(DANGEROUS_STARTS) else value
    # A bare CR reads back as LF unless the writer escaped it, and openpyxl escapes it only
    # when lxml is installed: writing LF makes the workbook the same either way.
    return guarded.replace("\r\n", "\n").replace("\r", "\n")


def append(
    sheet: Sheet,
    values: Iterable[Any],
    look: Look | None = None,
    *,
    columns: Mapping[int, Look] | None = None,
) -> None:
    """Write `values` as the next row, as `Worksheet.append` would (an empty one leaves a blank
    row); every cell with `look`, or with `columns[n]` in the n-th column (1-based)."""
    if look is None and not columns:
        sheet.append([_cell(sheet, n, value, None) for n, value in enumerate(values, start=1)])
        return
    styles = _styles.setdefault(sheet.parent, {})
    sheet.append(
        [
            _cell(sheet, n, value, _style(sheet, styles, (columns or {}).get(n, look)))
            for n, value in enumerate(values, start=1)
        ]
    )


def put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write `value` into one cell (1-based row and column) and return the cell."""
    cell = sheet.cell(row, column)
    _bind(cell, value)
    return cell


def _cell(sheet: Sheet, column: int, value: Any, style: StyleArray | None) -> Cell:
    # The row and column are set again by `append`; a write-only sheet needs them to be set.
    cell = Cell(sheet, row=1, column=column, style_array=style)
    _bind(cell, value)
    return cell


def _style(sheet: Sheet, styles: dict[Look, StyleArray], look: Look | None) -> StyleArray | None:
    """The look as this workbook's style, worked out on first use."""
    if look is None:
        return None
    found = styles.get(look)
    if found is None:
        probe = Cell(sheet)
        if look.font is not None:
            probe.font = look.font
        if look.alignment is not None:
            probe.alignment = look.alignment
        if look.number_format is not None:
            probe.number_format = look.number_format
        found = styles[look] = probe._style
    return found


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


# --- Big sheets: rows written as sheet XML ------------------------------------------------------


class Book:
    """A write-only workbook whose big sheets' rows are written as sheet XML directly
    (`with Book() as book:`, so that the rows' temporary files go however it ends).

    openpyxl makes everything else (styles, page layout, merged title, the first rows), and
    the rows of `rows(sheet)` are spliced into the sheet's `<sheetData>` when the book is
    saved. They are the cells openpyxl would write for the same values and looks (inline
    strings, the same style ids, numbers as `%.16g`), bound by the same rules as `append`,
    at about a tenth of the cost: a county's ledger has 1.5 million cells, and openpyxl's
    per-cell objects cost some ten microseconds each."""

    def __init__(self) -> None:
        self.workbook = Workbook(write_only=True)
        self._rows: list[tuple[WriteOnlyWorksheet, Rows]] = []

    def create_sheet(self, title: str) -> WriteOnlyWorksheet:
        """A new sheet: set its layout, append its first rows (`append`), then `rows`."""
        sheet: WriteOnlyWorksheet = self.workbook.create_sheet(title)
        return sheet

    def rows(self, sheet: WriteOnlyWorksheet, *, after: int) -> Rows:
        """The sheet's rows after the `after` rows appended through openpyxl."""
        rows = Rows(sheet, after)
        self._rows.append((sheet, rows))
        return rows

    def save(self, out: BinaryIO) -> None:
        """Write the workbook to `out` (blocking)."""
        made = io.BytesIO()
        self.workbook.save(made)
        # A sheet's part is named when the book is saved.
        parts = {sheet.path.lstrip("/"): rows for sheet, rows in self._rows}
        with (
            zipfile.ZipFile(made) as source,
            # Level 1: the big sheets compress about three times faster, some 20 % larger.
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target,
        ):
            for item in source.infolist():
                data = source.read(item.filename)
                rows = parts.get(item.filename)
                if rows is None:
                    target.writestr(item, data)
                    continue
                end = data.index(b"</sheetData>")
                with target.open(item.filename, "w", force_zip64=True) as part:
                    part.write(data[:end])
                    rows.copy_to(part)
                    part.write(data[end:])

    def close(self) -> None:
        """Drop the rows' temporary files (saved or not)."""
        for _, rows in self._rows:
            rows.close()

    def __enter__(self) -> Book:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Rows:
    """Rows of one sheet of a `Book`, kept in a temporary file until the book is saved."""

    def __init__(self, sheet: WriteOnlyWorksheet, after: int) -> None:
        self._sheet = sheet
        self._styles = _styles.setdefault(sheet.parent, {})
        self._ids: dict[Look, str] = {}
        # Each row shape's cell openings (column letter, then the style), worked out once.
        self._shapes: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
        self._next = after + 1
        # Lives until the book is saved (`close`), not within one block.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._pending: list[str] = []

    def append(
        self,
        values: Sequence[Any],
        look: Look | None = None,
        *,
        columns: Mapping[int, Look] | None = None,
    ) -> None:
        """The next row, as `append` writes it."""
        number = str(self._next)
        self._next += 1
        key = (look, len(values), *(columns.items() if columns else ()))
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = [
                (
                    '<c r="' + _letter(column),
                    self._style_id(columns.get(column, look) if columns else look),
                )
                for column in range(1, len(values) + 1)
            ]
        row = "".join(
            [
                _cell_xml(f'{start}{number}"', style, value)
                for (start, style), value in zip(shape, values, strict=True)
            ]
        )
        if _ILLEGAL.search(row):  # in a cell's text: openpyxl refuses it, and so do we
            raise IllegalCharacterError(f"{row} cannot be used in worksheets.")
        self._pending.append(f'<row r="{number}">{row}</row>')
        if len(self._pending) >= 1000:
            self._flush()

    def _style_id(self, look: Look | None) -> str:
        if look is None:
            return ""
        found = self._ids.get(look)
        if found is None:
            probe = Cell(self._sheet, style_array=_style(self._sheet, self._styles, look))
            # The index into the workbook's cell formats, as openpyxl writes it.
            found = self._ids[look] = f' s="{probe.style_id}"' if probe.has_style else ""
        return found

    def _flush(self) -> None:
        self._file.write("".join(self._pending).encode("utf-8"))
        self._pending.clear()

    def copy_to(self, part: BinaryIO | Any) -> None:
        """Everything appended, into the sheet's part of the archive."""
        self._flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, part, 1 << 20)

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()


@cache
def _letter(column: int) -> str:
    return get_column_letter(column)


def _cell_xml(opening: str, style: str, value: Any) -> str:
    """One `<c>` element as openpyxl's writer makes it for `_bind`'s cell of `value`;
    `opening` is `<c r="B7"`. (The caller looks for characters openpyxl refuses.)"""
    if type(value) is str:
        if not value:
            return f'{opening}{style} t="inlineStr"></c>'
        # `text(value)[:_TEXT_MAX]`, spelled out: a county's ledger has 1.5 million cells.
        if value[0] in _DANGEROUS_FIRST:
            value = "'" + value
        if "\r" in value:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        if len(value) > _TEXT_MAX:
            value = value[:_TEXT_MAX]
        space = ' xml:space="preserve"' if value[0].isspace() or value[-1].isspace() else ""
        if "&" in value or "<" in value or ">" in value:
            value = _escape(value)
        return f'{opening}{style} t="inlineStr"><is><t{space}>{value}</t></is></c>'
    if value is None:  # an empty cell is written only when it has a look
        return f'{opening}{style} t="n"></c>' if style else ""
    if isinstance(value, bool):
        return f'{opening}{style} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float | Decimal):
        number = "" if isnan(value) or isinf(value) else f"{float(value):.16g}"
        return f'{opening}{style} t="n"><v>{number}</v></c>'
    if isinstance(value, str):  # a subclass of str
        return _cell_xml(opening, style, str(value))
    if isinstance(value, Formula):
        return f"{opening}{style}><f>{_escape(value.expression[1:])}</f><v></v></c>"
    # Dates would need the workbook's epoch and a date format: not in a streamed row.
    raise TypeError(f"cannot write {type(value).__name__} to a streamed workbook row")


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
