"""通知 on the desk: the audience preview from the same plan a send records, the notice's
receipts and its 报名 list."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.broadcasts.service import create, sign_up
from bangfu_bot.members.models import bindings
from bangfu_bot.reports.notices import (
    audience_preview,
    notice_list,
    notice_receipts,
    signup_list,
    signups_xlsx,
)
from tests.ledger.test_export import (
    SHANGHAI,
    County,
    county,  # noqa: F401  (the ledger's two-township county)
)

SENT = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


async def bind(engine: AsyncEngine, county: County, *names: str) -> None:
    async with engine.begin() as conn:
        for name in names:
            await conn.execute(
                insert(bindings).values(
                    openid=f"openid-{county.people[name]}",
                    person_id=county.people[name],
                    channel="chat",
                    bound_at=SENT,
                )
            )


async def test_the_preview_counts_people_bound_and_those_left_to_their_secretary(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    await bind(engine, county, "王建国", "张桂兰")

    preview = await audience_preview(session, "township:青山镇党委", now=SENT, tz=SHANGHAI)

    assert (preview.people, preview.bound, preview.by_mass, preview.one_by_one) == (3, 2, 2, 0)
    assert preview.through_secretary == 1
    everyone = await audience_preview(session, "everyone", now=SENT, tz=SHANGHAI)
    assert (everyone.people, everyone.bound, everyone.through_secretary) == (4, 2, 2)


async def test_a_sent_notice_lists_its_receipts_and_signups(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    await bind(engine, county, "王建国", "刘德明")
    async with engine.begin() as conn:
        broadcast_id, count = await create(
            conn,
            author=None,
            text="周五上午培训",
            audience="everyone",
            training=True,
            now=SENT,
            tz=SHANGHAI,
        )
        await sign_up(conn, person_id=county.people["刘德明"], now=SENT)

    page = await notice_list(session)
    (row,) = page.rows
    assert (row.broadcast_id, row.recipients, row.signups, row.training) == (
        broadcast_id,
        2,
        1,
        True,
    )
    receipts = await notice_receipts(session, broadcast_id)
    assert receipts is not None and receipts.by_channel == {"mass": 2}
    assert await notice_receipts(session, broadcast_id + 1) is None
    (signed,) = await signup_list(session, broadcast_id)
    assert (signed.name, signed.phone, signed.township) == ("刘德明", "138****8000", "白水镇党委")
    out = io.BytesIO()
    assert await signups_xlsx(session, broadcast_id, out=out, tz=SHANGHAI) == 1
    rows = list(load_workbook(io.BytesIO(out.getvalue())).active.iter_rows(values_only=True))
    assert rows[1][:5] == ("序号", "姓名", "党委", "支部", "手机号")
    assert rows[2][:5] == (1, "刘德明", "白水镇党委", "白水村党支部", "13800138000")
