"""名册 on the desk: a roster checked before anything is written, hostile uploads refused,
and a people search that SQL metacharacters cannot bend."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.members.models import people
from bangfu_bot.reports.models import roster_uploads
from bangfu_bot.reports.roster import (
    FILES_KEPT,
    clear_old_uploads,
    keep_upload,
    people_search,
    roster_dry_run,
)
from tests.factories import id_number
from tests.ledger.test_export import (
    County,
    county,  # noqa: F401  (the ledger's two-township county)
)

TODAY = date(2026, 11, 10)
HEADERS = ["姓名", "身份证号", "手机号", "党委", "支部"]


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def count_people(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(people)) or 0)


async def test_a_dry_run_lists_every_rejected_row_and_writes_nothing(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    before = await count_people(engine)
    data = xlsx(
        [
            ["王建国", county.ids["王建国"], "13800138000", "青山镇党委", "桃源村党支部"],
            ["孙新", id_number(serial=301), "13900139000", "青山镇党委", "桃源村党支部"],
            ["李错", "52010219560314999X", "", "青山镇党委", "桃源村党支部"],
            [
                '=HYPERLINK("http://x","点")',
                id_number(serial=302),
                "",
                "青山镇党委",
                "桃源村党支部",
            ],
        ]
    )

    run = await roster_dry_run(session, data, "花名册.xlsx", today=TODAY)

    assert not run.refused
    assert (run.rows, run.valid, run.new, run.known) == (4, 2, 1, 1)
    assert [rejection.line for rejection in run.rejected] == [4, 5]
    assert "身份证号" in run.rejected[0].reason
    assert "姓名" in run.rejected[1].reason
    assert await count_people(engine) == before


async def test_a_formula_is_read_as_text_not_as_its_cached_value(
    session: AsyncSession, county: County
) -> None:
    data = xlsx([['="王"&"五"', '="' + id_number(serial=303) + '"', "", "", "桃源村党支部"]])

    run = await roster_dry_run(session, data, "r.xlsx", today=TODAY)

    assert (run.valid, len(run.rejected)) == (0, 1)


async def test_hostile_uploads_are_refused_before_reading(
    session: AsyncSession, county: County
) -> None:
    big = await roster_dry_run(session, b"x" * (20 * 1024 * 1024 + 1), "r.xlsx", today=TODAY)
    assert big.refused and "20 MB" in big.message
    exe = await roster_dry_run(session, b"MZ\x90\x00", "roster.exe", today=TODAY)
    assert exe.refused and ".xlsx" in exe.message
    fake = await roster_dry_run(session, b"%PDF-1.4 not a workbook", "r.xlsx", today=TODAY)
    assert fake.refused and fake.message


async def test_people_search_by_name_number_and_scope_with_masking(
    session: AsyncSession, county: County
) -> None:
    found = await people_search(session, "王")
    assert [row.name for row in found.rows] == ["王建国"]
    (wang,) = found.rows
    assert wang.id_number == county.ids["王建国"][:3] + "*" * 13 + county.ids["王建国"][-2:]
    assert (wang.phone, wang.branch, wang.township, wang.roles) == (
        "138****8000",
        "桃源村党支部",
        "青山镇党委",
        ("member",),
    )
    by_number = await people_search(session, county.ids["刘德明"], unmasked=True)
    assert [row.id_number for row in by_number.rows] == [county.ids["刘德明"]]
    scoped = await people_search(session, "刘", township_id=county.tree.committee)
    assert scoped.total == 0
    assert (await people_search(session, "", branch_id=county.tree.branch)).total == 2
    for hostile in ("%", "_", "' OR '1'='1", "\\", "王%", "'; DROP TABLE people; --"):
        assert (await people_search(session, hostile)).total == 0
    assert (await people_search(session, "")).total == 4


async def test_an_uploaded_file_is_cleared_after_its_keeping_and_its_record_stays(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    data = xlsx([["孙新", id_number(serial=301), "13900139000", "青山镇党委", "桃源村党支部"]])
    run = await roster_dry_run(session, data, "花名册.xlsx", today=TODAY)
    uploaded = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
    async with engine.begin() as conn:
        upload_id = await keep_upload(
            conn,
            person_id=county.people["王建国"],
            filename="花名册.xlsx",
            data=data,
            run=run,
            now=uploaded,
        )

    async def stored() -> tuple[bytes, str, int]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        roster_uploads.c.data, roster_uploads.c.sha256, roster_uploads.c.row_count
                    ).where(roster_uploads.c.id == upload_id)
                )
            ).one()
        return bytes(row.data), row.sha256, row.row_count

    async with engine.begin() as conn:  # a day before its thirty are up: kept
        assert await clear_old_uploads(conn, now=uploaded + FILES_KEPT - timedelta(days=1)) == 0
    assert (await stored())[0] == data
    async with engine.begin() as conn:
        assert await clear_old_uploads(conn, now=uploaded + FILES_KEPT + timedelta(minutes=1)) == 1
        assert await clear_old_uploads(conn, now=uploaded + FILES_KEPT + timedelta(days=1)) == 0
    assert await stored() == (b"", run.sha256, 1)  # the bytes gone; what it was, kept
