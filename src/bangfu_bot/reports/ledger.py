"""台账 on the desk: the year's ledger by township and category with the yearly review's
progress, and the same XLSX workbook as `bangfu-bot export ledger`."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.ledger.export import read_ledger, write_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people
from bangfu_bot.reports.scope import in_scope
from bangfu_bot.texts import speaker

__all__ = [
    "LedgerFile",
    "LedgerOverview",
    "TownshipLedger",
    "ledger_overview",
    "ledger_xlsx",
    "ledger_years",
]

say = speaker("bangfu_bot.reports")


@dataclass(frozen=True)
class TownshipLedger:
    """One township's line of the year's ledger (or the county's total line).

    `by_category` counts every entry of the year, exited ones included, as the workbook's
    汇总 sheet does. The yearly review concerns the entries still active plus those the
    review itself closed: `review_due` of them, `review_opened` given to the secretary as a
    to-do, `reviewed` done."""

    township_id: int | None
    township: str
    by_category: tuple[int, ...]
    entries: int
    active: int
    exited: int
    review_due: int
    review_opened: int
    reviewed: int


@dataclass(frozen=True)
class LedgerOverview:
    """The year's ledger by township × category; `categories` are the columns of every
    line's `by_category`, largest first (the workbook's order)."""

    year: int
    categories: tuple[str, ...]
    townships: tuple[TownshipLedger, ...]
    total: TownshipLedger


@dataclass(frozen=True)
class LedgerFile:
    """What `ledger_xlsx` wrote: how many entries, and the township sheets in order."""

    rows: int
    townships: tuple[str, ...]


_FIGURES = ("entries", "active", "exited", "review_due", "review_opened", "reviewed")


async def ledger_overview(
    session: AsyncSession,
    *,
    year: int,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> LedgerOverview:
    """The year's ledger by township and category, with the review's progress (two
    queries: the townships, then one aggregate over the entries)."""
    conn = await session.connection()
    committees = select(organisations.c.id, organisations.c.name).where(
        organisations.c.kind == "committee"
    )
    if township_id is not None:
        committees = committees.where(organisations.c.id == township_id)
    names: dict[int | None, str] = {row.id: row.name for row in await conn.execute(committees)}
    branch = organisations.alias("branch")
    active = ledger_entries.c.status == "active"
    reviewed = ledger_entries.c.reviewed_at.is_not(None)
    query = (
        select(
            branch.c.parent_id.label("township_id"),
            ledger_entries.c.category,
            func.count().label("entries"),
            _count(active).label("active"),
            _count(~active).label("exited"),
            _count(active | reviewed).label("review_due"),
            _count(ledger_entries.c.review_opened_at.is_not(None)).label("review_opened"),
            _count(reviewed).label("reviewed"),
        )
        .select_from(
            ledger_entries.join(people, people.c.id == ledger_entries.c.person_id).outerjoin(
                branch, branch.c.id == people.c.branch_id
            )
        )
        .where(
            ledger_entries.c.year == year,
            in_scope(people.c.branch_id, township_id=township_id, branch_id=branch_id),
        )
        .group_by(branch.c.parent_id, ledger_entries.c.category)
    )
    by_township: dict[int | None, dict[str, Any]] = {}
    overall: Counter[str] = Counter()
    for row in await conn.execute(query):
        line = by_township.setdefault(
            row.township_id, {"categories": Counter(), **dict.fromkeys(_FIGURES, 0)}
        )
        line["categories"][row.category] += row.entries
        overall[row.category] += row.entries
        for figure in _FIGURES:
            line[figure] += int(row._mapping[figure])
    categories = tuple(sorted(overall, key=lambda category: (-overall[category], category)))
    unassigned = say("no_township")
    lines = [
        _line(key, names.get(key, unassigned), by_township.get(key), categories)
        for key in set(names) | set(by_township)
    ]
    lines.sort(key=lambda line: line.township)
    total = TownshipLedger(
        None,
        say("total"),
        tuple(overall[category] for category in categories),
        *(sum(getattr(line, figure) for line in lines) for figure in _FIGURES),
    )
    return LedgerOverview(year, categories, tuple(lines), total)


async def ledger_years(
    session: AsyncSession, *, township_id: int | None = None, branch_id: int | None = None
) -> tuple[int, ...]:
    """The years that have ledger entries within the scope, newest first."""
    conn = await session.connection()
    query = (
        select(ledger_entries.c.year)
        .select_from(ledger_entries.join(people, people.c.id == ledger_entries.c.person_id))
        .where(in_scope(people.c.branch_id, township_id=township_id, branch_id=branch_id))
        .distinct()
        .order_by(ledger_entries.c.year.desc())
    )
    return tuple(int(year) for year in (await conn.execute(query)).scalars())


def _count(condition: Any) -> Any:
    """How many rows of the group meet `condition`."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _line(
    township_id: int | None, name: str, figures: dict[str, Any] | None, categories: tuple[str, ...]
) -> TownshipLedger:
    if figures is None:
        return TownshipLedger(township_id, name, (0,) * len(categories), 0, 0, 0, 0, 0, 0)
    return TownshipLedger(
        township_id,
        name,
        tuple(figures["categories"][category] for category in categories),
        *(int(figures[figure]) for figure in _FIGURES),
    )


async def ledger_xlsx(
    session: AsyncSession,
    *,
    year: int,
    out: BinaryIO,
    today: date,
    township_id: int | None = None,
) -> LedgerFile:
    """Write the year's ledger workbook to `out`, the same workbook as the CLI export
    (ages are counted on `today`); one township's alone when `township_id` is given."""
    conn = await session.connection()
    book = await read_ledger(conn, year=year, today=today, township_id=township_id)
    # Building and saving the workbook is blocking work; keep it off the event loop.
    await asyncio.to_thread(write_ledger, book, out)
    return LedgerFile(book.rows, tuple(book.groups))
