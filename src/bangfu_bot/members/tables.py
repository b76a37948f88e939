"""Reading a table a county sends (the roster, the roles list) from .xlsx or .csv.

Counties send what their systems export: the department's template, or the national party
member information system's export (全国党员管理信息系统), which names its columns
differently, puts a title row or two above the header, and is often saved by Excel as a
GBK CSV. A column is found by any of its names (`aliases`), written with or without spaces,
full-width brackets, a trailing note in brackets, a required-field asterisk or a BOM; the
header is the first row within the first `SCAN_ROWS` that names every required column.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from bangfu_bot.texts import speaker

__all__ = ["SCAN_ROWS", "Record", "RosterError", "Table", "cell_text", "header_key", "read_table"]

say = speaker("bangfu_bot.members")

# How far down a title, a date of export or a unit's name may push the header.
SCAN_ROWS = 20

_XLSX_SUFFIXES = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .et, WPS's own format)
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))
# A note after the header in brackets: 出生日期(年月日), 公民身份号码【18位】.
_TRAILING_NOTE = re.compile(r"(?:\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】)$")


class RosterError(ValueError):
    """The file cannot be read as a table at all (no row is looked at); one line, Chinese."""


@dataclass(frozen=True)
class Record:
    """One data row: its line in the file and the cells of the columns that were asked for."""

    line: int
    values: dict[str, object]


@dataclass(frozen=True)
class Table:
    """A file's rows under its header: `headers` maps each column found to its header as
    the file writes it (for messages that name the column the clerk sees)."""

    header_line: int
    headers: dict[str, str]
    records: list[Record]


def cell_text(value: object) -> str:
    """A cell as trimmed text; a whole number loses the ".0" a spreadsheet gives it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).translate(_INVISIBLE).strip()


def header_key(value: object) -> str:
    """A header cell as compared with the aliases: NFKC (full-width brackets and letters
    become half-width), without spaces, invisible characters or a leading asterisk."""
    text = unicodedata.normalize("NFKC", cell_text(value))
    return "".join(text.split()).lstrip("*")


def read_table(
    path: Path,
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
    *,
    formulas_as_text: bool = False,
) -> Table:
    """The rows of a .csv (UTF-8 or GBK/GB18030) or .xlsx file under its header.

    `formulas_as_text`: a formula cell reads as its formula (text such as "=A1", which no
    check accepts as a name, number or date) rather than the value Excel last cached.

    `aliases` maps each column to the header names it is known by, the preferred first:
    when a file has two of them (联系电话 and 手机号码) the earlier in the list is read.
    """
    try:
        with path.open("rb") as handle:
            start = handle.read(8)
    except FileNotFoundError:
        raise RosterError(say("table_not_found")) from None
    except IsADirectoryError:
        raise RosterError(say("table_is_folder")) from None
    except PermissionError:
        raise RosterError(say("table_no_permission")) from None
    except OSError as error:
        raise RosterError(
            say("table_unreadable", why=error.strerror or type(error).__name__)
        ) from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if start.startswith(_ZIP_MAGIC):
            raise RosterError(say("table_csv_is_xlsx"))
        return _find_table([_csv_rows(path)], aliases, required)
    if suffix in _XLSX_SUFFIXES:
        return _xlsx_table(path, aliases, required, data_only=not formulas_as_text)
    if suffix in (".xls", ".et") or start.startswith(_OLE_MAGIC):
        raise RosterError(say("table_old_excel", suffix=suffix or "?"))
    raise RosterError(say("table_unknown_type", suffix=suffix or say("table_no_suffix")))


def _csv_rows(path: Path) -> Iterator[list[str]]:
    text = _decode(path.read_bytes())
    first = text.split("\n", 1)[0]
    # Excel's "Unicode text" is tab-separated; a clerk may still name it .csv.
    delimiter = "\t" if "\t" in first and "," not in first else ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Excel on Chinese Windows saves "CSV" in the ANSI code page (GBK), which GB18030 covers.
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterError(say("table_csv_encoding")) from None


def _xlsx_table(
    path: Path,
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
    *,
    data_only: bool = True,
) -> Table:
    try:
        workbook = load_workbook(path, read_only=True, data_only=data_only)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError):
        raise RosterError(say("table_bad_xlsx")) from None
    try:
        sheets = []
        for sheet in workbook.worksheets:
            # Some writers record a wrong sheet size; read-only mode would trust it and cut rows.
            sheet.reset_dimensions()
            sheets.append(sheet.iter_rows(values_only=True))
        # The data is on the first sheet whose top rows hold the header (a template may
        # open with a sheet of instructions).
        return _find_table(sheets, aliases, required)
    finally:
        workbook.close()


def _find_table(
    sheets: Sequence[Iterator[Sequence[object]]],
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
) -> Table:
    lookup = _lookup(aliases)
    first_top: list[Sequence[object]] | None = None
    for rows in sheets:
        top = list(islice(rows, SCAN_ROWS))
        if first_top is None:
            first_top = top
        for index, cells in enumerate(top):
            columns, twice = _columns(cells, lookup)
            if all(name in columns for name in required):
                if twice is not None:
                    header, first, second = twice
                    raise RosterError(
                        say(
                            "table_header_twice",
                            header=header,
                            line=index + 1,
                            first=first,
                            second=second,
                        )
                    )
                return _table(index + 1, cells, columns, _chain(top[index + 1 :], rows))
    raise RosterError(_no_header(first_top or [], lookup, aliases, required))


def _chain(
    first: Iterable[Sequence[object]], rest: Iterator[Sequence[object]]
) -> Iterator[Sequence[object]]:
    yield from first
    yield from rest


def _lookup(aliases: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, int]]:
    """Each known header (as header_key gives it) -> (column, rank among its names)."""
    lookup: dict[str, tuple[str, int]] = {}
    for column, names in aliases.items():
        for rank, alias in enumerate(names):
            lookup.setdefault(header_key(alias), (column, rank))
    return lookup


def _match(cell: object, lookup: Mapping[str, tuple[str, int]]) -> tuple[str, int] | None:
    key = header_key(cell)
    if not key:
        return None
    found = lookup.get(key)
    if found is None:
        found = lookup.get(_TRAILING_NOTE.sub("", key))
    return found


def _columns(
    cells: Sequence[object], lookup: Mapping[str, tuple[str, int]]
) -> tuple[dict[str, int], tuple[str, int, int] | None]:
    """Column -> index in this row, the best-ranked of its names winning; and the first
    header written twice, as (header, first column, second column), if any."""
    best: dict[str, tuple[int, int]] = {}  # column -> (rank, index)
    twice = None
    for index, cell in enumerate(cells):
        found = _match(cell, lookup)
        if found is None:
            continue
        column, rank = found
        if column in best and best[column][0] == rank and twice is None:
            twice = (cell_text(cell), best[column][1] + 1, index + 1)
        if column not in best or rank < best[column][0]:
            best[column] = (rank, index)
    return {column: index for column, (_, index) in best.items()}, twice


def _table(
    header_line: int,
    header: Sequence[object],
    columns: dict[str, int],
    rows: Iterator[Sequence[object]],
) -> Table:
    headers = {column: cell_text(header[index]) for column, index in columns.items()}
    records = []
    for line, cells in enumerate(rows, start=header_line + 1):
        values = {
            column: cells[index] if index < len(cells) else None
            for column, index in columns.items()
        }
        # Templates carry empty numbered rows below the data; they are not people.
        if any(cell_text(value) for value in values.values()):
            records.append(Record(line, values))
    if not records:
        raise RosterError(say("table_only_header", line=header_line))
    return Table(header_line, headers, records)


def _no_header(
    top: Sequence[Sequence[object]],
    lookup: Mapping[str, tuple[str, int]],
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
) -> str:
    if not any(cell_text(cell) for cells in top for cell in cells):
        return say("table_empty")
    # The row naming most of the columns is the header the clerk meant.
    found: dict[str, int] = {}
    line = 0
    for index, cells in enumerate(top):
        columns, _ = _columns(cells, lookup)
        if len([name for name in required if name in columns]) > len(
            [name for name in required if name in found]
        ):
            found, line = columns, index + 1
    missing = [name for name in required if name not in found]
    if not found:
        return say(
            "table_no_header", rows=SCAN_ROWS, columns=say("table_list_joiner").join(required)
        )
    names = say("table_list_joiner").join(
        say(
            "table_missing_column",
            column=name,
            also=say("table_list_joiner").join(aliases[name][1:]),
        )
        if len(aliases[name]) > 1
        else say("table_missing_column_alone", column=name)
        for name in missing
    )
    return say("table_header_missing", line=line, columns=names)
