"""台账 on the desk: the figures a department officer checks against the printed workbook."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.ledger.export import export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.reports.ledger import LedgerFile, TownshipLedger, ledger_overview, ledger_xlsx
from tests.ledger.test_export import (
    TODAY,
    County,
    county,  # noqa: F401  (the ledger's two-township county)
    values,
)

REVIEW = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)


async def test_the_overview_counts_each_township_by_category_as_the_workbook_does(
    session: AsyncSession, county: County
) -> None:
    overview = await ledger_overview(session, year=2025)

    assert overview.categories == ("因病", "三老", "企业下岗")
    assert [(line.township, line.by_category, line.entries) for line in overview.townships] == [
        ("白水镇党委", (0, 0, 1), 1),
        ("青山镇党委", (2, 1, 0), 3),
    ]
    assert (overview.total.township, overview.total.by_category, overview.total.entries) == (
        "合计",
        (2, 1, 1),
        4,
    )
    qingshan = overview.townships[1]
    assert (qingshan.township_id, qingshan.active, qingshan.exited) == (
        county.tree.committee,
        2,
        1,
    )


async def test_the_review_progress_counts_opened_and_done(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.year == 2025, ledger_entries.c.status == "active")
            .values(review_opened_at=REVIEW)
        )
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.person_id == county.people["王建国"])
            .values(reviewed_at=REVIEW)
        )

    overview = await ledger_overview(session, year=2025)

    qingshan = overview.townships[1]
    # 张桂兰 left during the year, before any review: she is not due one.
    assert (qingshan.review_due, qingshan.review_opened, qingshan.reviewed) == (2, 2, 1)
    assert (overview.total.review_due, overview.total.review_opened) == (3, 3)
    assert overview.total.reviewed == 1


async def test_a_township_officer_sees_only_their_township(
    session: AsyncSession, county: County
) -> None:
    overview = await ledger_overview(session, year=2025, township_id=county.tree.committee)

    assert [line.township for line in overview.townships] == ["青山镇党委"]
    assert overview.total.entries == 3
    assert "企业下岗" not in overview.categories


async def test_a_secretary_sees_only_their_branch(session: AsyncSession, county: County) -> None:
    overview = await ledger_overview(session, year=2025, branch_id=county.tree.branch)

    assert overview.total.entries == 2
    assert overview.categories == ("因病",)


async def test_an_empty_year_lists_the_townships_with_nothing(
    session: AsyncSession, county: County, baishui: int
) -> None:
    overview = await ledger_overview(session, year=2030)

    assert overview.categories == ()
    assert overview.townships[0] == TownshipLedger(baishui, "白水镇党委", (), 0, 0, 0, 0, 0, 0)
    assert overview.total.entries == 0


async def test_the_download_is_the_same_workbook_as_the_cli_export(
    engine: AsyncEngine, session: AsyncSession, county: County, tmp_path: Path
) -> None:
    await export_ledger(engine, year=2025, out=tmp_path / "cli.xlsx", today=TODAY)
    out = io.BytesIO()

    written = await ledger_xlsx(session, year=2025, out=out, today=TODAY)

    assert written == LedgerFile(4, ("白水镇党委", "青山镇党委"))
    cli = load_workbook(tmp_path / "cli.xlsx")
    desk = load_workbook(io.BytesIO(out.getvalue()))
    assert desk.sheetnames == cli.sheetnames
    for name in cli.sheetnames:
        assert values(desk[name]) == values(cli[name])


async def test_one_townships_download_holds_only_its_sheet(
    session: AsyncSession, county: County, baishui: int
) -> None:
    out = io.BytesIO()

    written = await ledger_xlsx(session, year=2025, out=out, today=TODAY, township_id=baishui)

    assert written == LedgerFile(1, ("白水镇党委",))
    book = load_workbook(io.BytesIO(out.getvalue()))
    assert book.sheetnames == ["汇总", "白水镇党委"]
