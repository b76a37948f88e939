"""Printable workbooks: the yearly ledger (困难党员台账) per township, and the case audit trail.

ID numbers and phone numbers are never written: the ledger is printed and passed around.
Every cell is written through `bangfu_bot.xlsx`, so what people typed stays text.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot import xlsx
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people
from bangfu_bot.texts import speaker, texts

__all__ = [
    "LedgerBook",
    "LedgerExport",
    "audit_label",
    "export_audit",
    "export_ledger",
    "read_ledger",
    "write_audit",
    "write_ledger",
]

# Excel widths are in "0" characters; a Chinese character takes about two.
LEDGER_WIDTHS = (6, 10, 6, 6, 12, 16, 14, 24, 8, 30, 12, 30, 12, 28, 16)
AUDIT_WIDTHS = (17, 9, 10, 10, 10, 8, 11, 11, 40)
INCOME_FORMAT = "0.00"
# 家庭年收入（元）: the 11th cell `_ledger_cells` returns.
INCOME_COLUMN = 11
# Excel refuses these in sheet titles and caps titles at 31 characters.
_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
_TITLE_MAX = 31

_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTRED = Alignment(horizontal="center", vertical="center", wrap_text=True)
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_WRAP_LOOK = xlsx.Look(alignment=_WRAP)
_INCOME_LOOK = xlsx.Look(alignment=_WRAP, number_format=INCOME_FORMAT)
_BOLD_LOOK = xlsx.Look(font=_BOLD)
_HEADER_LOOK = xlsx.Look(font=_BOLD, alignment=_CENTRED)
_TITLE_LOOK = xlsx.Look(font=_TITLE_FONT, alignment=_CENTRED)


@dataclass(frozen=True)
class LedgerExport:
    """What `export_ledger` wrote: the file, how many entries, and one sheet per township."""

    path: Path
    rows: int
    townships: list[str]


say = speaker("bangfu_bot.ledger")


def _lines(key: str) -> list[str]:
    return say(key).splitlines()


# --- The ledger --------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerBook:
    """What the ledger workbook shows, read from the store: every township's name (those
    without entries too) and the year's entries grouped by township."""

    year: int
    today: date
    townships: list[str]
    groups: dict[str, list[Mapping[str, Any]]]

    @property
    def rows(self) -> int:
        """How many entries the workbook lists."""
        return sum(len(rows) for rows in self.groups.values())


async def export_ledger(
    engine: AsyncEngine, *, year: int, out: Path, township: str | None = None, today: date
) -> LedgerExport:
    """Write the year's ledger (台账) as an XLSX: a 汇总 sheet, then one sheet per township."""
    async with engine.connect() as conn:
        book = await read_ledger(conn, year=year, township=township, today=today)
    # Building and saving the workbook is blocking work; keep it off the event loop.
    await asyncio.to_thread(_save_to, out, lambda handle: write_ledger(book, handle))
    return LedgerExport(path=out, rows=book.rows, townships=list(book.groups))


async def read_ledger(
    conn: AsyncConnection,
    *,
    year: int,
    today: date,
    township: str | None = None,
    township_id: int | None = None,
) -> LedgerBook:
    """The year's entries, for one township (by name or id) or the whole county.

    An unknown township name is refused (ValueError); an unknown id gives an empty ledger,
    since an id comes from a page the reader was shown, not from what they typed."""
    names = [
        str(name)
        for name in (await conn.execute(_townships_query(township, township_id))).scalars()
    ]
    if township is not None and not names:
        raise ValueError(say("unknown_township", township=township))
    # Ordered in SQL by code point (SQLite's BINARY, PostgreSQL's "C"): as Python orders
    # strings, and the same on both stores, where a database's own collation orders Chinese
    # its own way; sorting a county's 100,000 rows in Python cost a third of a second.
    collation = "C" if conn.dialect.name == "postgresql" else "BINARY"
    query = _entries_query(year, township, township_id, collation=collation)
    entries = (await conn.execute(query)).mappings().all()
    return LedgerBook(year, today, names, _by_township(entries))


def _townships_query(township: str | None, township_id: int | None) -> Any:
    query = select(organisations.c.name).where(organisations.c.kind == "committee")
    if township is not None:
        query = query.where(organisations.c.name == township)
    if township_id is not None:
        query = query.where(organisations.c.id == township_id)
    return query


def _entries_query(
    year: int, township: str | None, township_id: int | None, *, collation: str
) -> Any:
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    query = (
        select(
            # Only what the workbook prints: a county's 100,000 rows read every column's
            # times for nothing.
            *(
                ledger_entries.c[name]
                for name in (
                    "id",
                    "category",
                    "causes",
                    "household_size",
                    "household",
                    "annual_income_fen",
                    "situation",
                    "paired_cadre",
                    "assistance",
                    "status",
                    "exit_reason",
                )
            ),
            people.c.name,
            people.c.gender,
            people.c.birth_date,
            people.c.joined_on,
            branch.c.name.label("branch_name"),
            committee.c.name.label("township_name"),
        )
        .select_from(
            ledger_entries.join(people, people.c.id == ledger_entries.c.person_id)
            .outerjoin(branch, branch.c.id == people.c.branch_id)
            .outerjoin(committee, committee.c.id == branch.c.parent_id)
        )
        .where(ledger_entries.c.year == year)
    )
    if township is not None:
        query = query.where(committee.c.name == township)
    if township_id is not None:
        query = query.where(committee.c.id == township_id)
    return query.order_by(
        func.coalesce(committee.c.name, literal(say("no_township"))).collate(collation),
        func.coalesce(branch.c.name, literal("")).collate(collation),
        people.c.name.collate(collation),
        ledger_entries.c.id,
    )


def _by_township(entries: Iterable[Any]) -> dict[str, list[Mapping[str, Any]]]:
    """Entries (ordered by township, branch, then name) grouped by township."""
    unassigned = say("no_township")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(entry["township_name"] or unassigned, []).append(entry)
    return groups


def write_ledger(ledger: LedgerBook, out: BinaryIO) -> None:
    """Write the ledger workbook to a binary file object (blocking: call it off the event
    loop). The CLI and the desk's download both write through this one function.

    Write-only: rows stream to `out` as they are made, so a county's 100,000 entries take
    seconds and little memory. Each sheet's layout is set before its first row."""
    with xlsx.Book() as book:
        summary = book.create_sheet(say("summary_sheet"))
        groups = ledger.groups
        counts = {name: _category_counts(rows) for name, rows in groups.items()}
        townships = sorted(set(ledger.townships) | set(groups))
        _fill_summary(summary, ledger.year, townships, counts)
        taken = {summary.title}
        for name, rows in groups.items():
            sheet = book.create_sheet(_sheet_title(name, taken))
            taken.add(sheet.title)
            lines = book.rows(sheet, after=2)
            _fill_township(sheet, lines, ledger.year, name, rows, ledger.today)
        book.save(out)


def _fill_summary(
    sheet: WriteOnlyWorksheet,
    year: int,
    townships: list[str],
    counts: Mapping[str, Counter[str]],
) -> None:
    overall: Counter[str] = sum(counts.values(), Counter())
    categories = _category_order(overall)
    headers = [say("summary_township"), *categories, say("total")]
    _page_setup(sheet, (16, *([12] * (len(headers) - 1))), header_rows=2)
    _title_row(sheet, say("summary_title", year=year), len(headers))
    _header_row(sheet, headers)
    if not townships:
        xlsx.append(sheet, [say("summary_none")])
    for name in townships:
        row = counts.get(name, Counter())
        xlsx.append(sheet, [name, *(row[c] for c in categories), row.total()])
    xlsx.append(
        sheet,
        [say("total"), *(overall[c] for c in categories), overall.total()],
        columns={1: _BOLD_LOOK},
    )


def _fill_township(
    sheet: WriteOnlyWorksheet,
    lines: xlsx.Rows,
    year: int,
    township: str,
    rows: Sequence[Mapping[str, Any]],
    today: date,
) -> None:
    headers = _lines("ledger_headers")
    _page_setup(sheet, LEDGER_WIDTHS, header_rows=2)
    _title_row(sheet, say("ledger_title", year=year, township=township), len(headers))
    _header_row(sheet, headers)
    income = {INCOME_COLUMN: _INCOME_LOOK}
    for number, entry in enumerate(rows, start=1):
        lines.append(_ledger_cells(number, entry, today), _WRAP_LOOK, columns=income)
    _totals(lines, _category_counts(rows), len(headers))


def _ledger_cells(number: int, entry: Mapping[str, Any], today: date) -> list[Any]:
    """One printed row of the ledger, in header order."""
    return [
        number,
        entry["name"],
        entry["gender"] or "",
        _age(entry["birth_date"], today),
        _joined(entry["joined_on"]),
        entry["branch_name"] or "",
        entry["category"],
        entry["causes"],
        entry["household_size"],
        _household(entry["household"] or []),
        _yuan(entry["annual_income_fen"]),
        entry["situation"],
        entry["paired_cadre"] or "",
        _phrase("list_separator").join(str(item) for item in entry["assistance"] or []),
        _entry_status(entry["status"], entry["exit_reason"]),
    ]


def _totals(lines: xlsx.Rows, counts: Counter[str], width: int) -> None:
    """Counts by category under the rows, then the grand total. The heading and category
    rows carry their look across the sheet's width (empty cells too), as printed."""
    blank = [None] * (width - 3)
    lines.append([])
    lines.append(["", say("totals_category"), say("totals_count"), *blank], _BOLD_LOOK)
    for category in _category_order(counts):
        lines.append(["", category, counts[category], *blank], _WRAP_LOOK)
    lines.append(["", say("total"), counts.total()], columns={2: _BOLD_LOOK})


def _category_counts(rows: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(str(row["category"]) for row in rows)


def _category_order(counts: Counter[str]) -> list[str]:
    """Largest category first, so a reader sees what weighs most; ties by name."""
    return sorted(counts, key=lambda category: (-counts[category], category))


def _yuan(fen: int) -> Decimal:
    """Integer fen as an exact yuan amount with two decimals: 470050 → 4700.50."""
    return Decimal(int(fen)).scaleb(-2)


def _age(born: date | None, today: date) -> int | str:
    if born is None:
        return ""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _joined(joined_on: date | None) -> str:
    if joined_on is None:
        return ""
    return say("joined", year=joined_on.year, month=joined_on.month)


def _household(members: Iterable[Mapping[str, Any]]) -> str:
    """家庭成员 as one line: 李秀英（配偶，68岁）；王小军（儿子，35岁）."""
    return _phrase("list_separator").join(_household_member(member) for member in members)


def _household_member(member: Mapping[str, Any]) -> str:
    details = [str(member["relation"])] if member.get("relation") else []
    if member.get("age") not in (None, ""):
        details.append(_phrase("household_age").format(age=member["age"]))
    name = str(member.get("name") or "")
    if not details:
        return name
    return _phrase("household_member").format(
        name=name, details=_phrase("detail_separator").join(details)
    )


@cache
def _phrase(key: str) -> str:
    """A text as it stands, {placeholders} and all: looked up once, not for each of a
    county's 100,000 rows."""
    return texts("bangfu_bot.ledger")[key]


def _entry_status(status: str, reason: str | None) -> str:
    if status != "exited":
        return _phrase("entry_active")
    if not reason:
        return _phrase("entry_exited")
    return _phrase("entry_exited_because").format(reason=reason)


def _sheet_title(name: str, taken: set[str]) -> str:
    """A valid Excel sheet title for `name` that no sheet uses yet."""
    base = _BAD_TITLE_CHARS.sub("", name).strip("'")[:_TITLE_MAX] or say("summary_township")
    title, copy = base, 2
    while title in taken:
        suffix = f"({copy})"
        title, copy = base[: _TITLE_MAX - len(suffix)] + suffix, copy + 1
    return title


# --- The audit trail ---------------------------------------------------------------------


async def export_audit(engine: AsyncEngine, *, out: Path, tz: tzinfo) -> int:
    """Write every case event, oldest first, as an XLSX sheet 审计记录; return the row count."""
    async with engine.connect() as conn:
        events = (await conn.execute(_audit_query())).mappings().all()
    rows = [_audit_cells(event, tz) for event in events]
    # Building and saving the workbook is blocking work; keep it off the event loop.
    await asyncio.to_thread(_save_to, out, lambda handle: write_audit(rows, handle))
    return len(rows)


def _audit_query() -> Any:
    member = people.alias("member")
    actor = people.alias("actor")
    return (
        select(
            case_events.c.at,
            case_events.c.case_id,
            member.c.name.label("member"),
            actor.c.name.label("actor"),
            case_events.c.role,
            case_events.c.channel,
            case_events.c.from_status,
            case_events.c.to_status,
            case_events.c.reason,
        )
        .select_from(
            case_events.join(cases, cases.c.id == case_events.c.case_id)
            .join(member, member.c.id == cases.c.person_id)
            .outerjoin(actor, actor.c.id == case_events.c.actor_id)
        )
        .order_by(case_events.c.at, case_events.c.id)
    )


def _audit_cells(event: Any, tz: tzinfo) -> list[Any]:
    """One printed audit row, in header order."""
    return [
        event["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        event["case_id"],
        event["member"],
        event["actor"] or say("audit_system_actor"),
        audit_label("role", event["role"]),
        audit_label("channel", event["channel"]),
        audit_label("case", event["from_status"]),
        audit_label("case", event["to_status"]),
        event["reason"] or "",
    ]


def audit_label(kind: str, value: str | None) -> str:
    """The Chinese name of a role, channel or status; an unknown one is shown as stored."""
    if value is None:
        return ""
    return texts("bangfu_bot.ledger").get(f"{kind}_{value}", value)


def write_audit(rows: Sequence[Sequence[Any]], out: BinaryIO) -> None:
    """Write the audit workbook (rows in header order) to a binary file object (blocking;
    write-only, as the ledger)."""
    with xlsx.Book() as book:
        sheet = book.create_sheet(say("audit_sheet"))
        _page_setup(sheet, AUDIT_WIDTHS, header_rows=1)
        if rows:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(AUDIT_WIDTHS))}{len(rows) + 1}"
        _header_row(sheet, _lines("audit_headers"))
        lines = book.rows(sheet, after=1)
        for row in rows:
            lines.append(row, _WRAP_LOOK)
        book.save(out)


# --- Layout shared by both workbooks -------------------------------------------------------
# Write-only sheets: the layout is set before the first row, rows are written in order.


def _title_row(sheet: WriteOnlyWorksheet, title: str, width: int) -> None:
    sheet.merged_cells.add(CellRange(min_col=1, min_row=1, max_col=max(width, 1), max_row=1))
    sheet.row_dimensions[1].height = 28
    xlsx.append(sheet, [title], _TITLE_LOOK)


def _header_row(sheet: WriteOnlyWorksheet, headers: Sequence[str]) -> None:
    xlsx.append(sheet, headers, _HEADER_LOOK)


def _page_setup(sheet: WriteOnlyWorksheet, widths: Sequence[int], *, header_rows: int) -> None:
    """Column widths, frozen and repeated headers, landscape A4 one page wide."""
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = f"A{header_rows + 1}"
    sheet.print_title_rows = f"1:{header_rows}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    # Fit the columns to the page width and let the rows run onto as many pages as needed.
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0


def _save_to(out: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file so a half-written workbook never sits at `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=".", suffix=".xlsx")
    os.close(handle)
    try:
        with open(temporary, "wb") as stream:
            write(stream)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
