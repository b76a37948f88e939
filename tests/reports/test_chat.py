"""详情: the full record of the case or loan being decided, for those the policy lets
decide it, and the question asked again after it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update

from bangfu_bot.members.models import organisations, people
from tests.cases.test_procedure import personas, report_after_notice


async def test_details_show_the_case_being_approved_then_ask_again(
    bot: Any, county: Any, chat: Any
) -> None:
    wang, secretary, officer, staff = await personas(chat, county)
    await report_after_notice(bot, wang, secretary)
    await officer.send("待办")
    await officer.send("1")
    record = await officer.send("详情")
    for line in [
        "【王德福的帮扶申请】编号 1，桃源村党支部",
        "现在：已上报党委",
        "家庭成员（3 人）：",
        "李秀英（配偶，68岁，有高血压，在家）",
        "王小军（儿子，35岁，身体好，在外打工）",
        "收入：种地养殖 3500元，打工 0元，补贴 0元，养老金 1200.50元，其他 0元",
        "生产生活情况：老伴生病住院，欠了两万块钱",
        "民主评议：",
        "计票：刘洋，监票：陈红",
        "会议简要：大家同意王德福家确实困难",
        "经过：",
        "已上报党委（张建国）",
    ]:
        assert line in record, line
    assert county.wang_number not in record and county.wang_number[-6:] not in record
    # The question comes back, and the answer to it still counts.
    assert record.rstrip().endswith("2. 退回")
    await officer.send("1")
    assert "已批准" in await officer.send("1")


async def test_details_outside_a_decision_or_for_someone_moved_away(
    bot: Any, county: Any, chat: Any
) -> None:
    wang, secretary, officer, staff = await personas(chat, county)
    assert "请先回复“待办”" in await wang.send("详情")
    await report_after_notice(bot, wang, secretary)
    await officer.send("待办")
    await officer.send("1")
    # The roster moves the officer to another township while the approval is open.
    async with bot.services.engine.begin() as conn:
        county_id = county.tree.county
        other = (
            await conn.execute(
                insert(organisations).values(
                    kind="committee", name="白云镇党委", parent_id=county_id
                )
            )
        ).inserted_primary_key[0]
        branch = (
            await conn.execute(
                insert(organisations).values(kind="branch", name="白云村党支部", parent_id=other)
            )
        ).inserted_primary_key[0]
        await conn.execute(
            update(people).where(people.c.id == county.officer_id).values(branch_id=branch)
        )
    refused = await officer.send("详情")
    assert "这件不归您办，看不了详情" in refused and "李秀英" not in refused
