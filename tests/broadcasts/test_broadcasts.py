"""Broadcasts: audiences, the 4-a-month mass limit, receipts, 报名, a township of 5,000,
planning in bulk."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select, update

from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.broadcasts.models import broadcast_recipients
from bangfu_bot.broadcasts.models import broadcasts as broadcast_table
from bangfu_bot.members.models import bindings, people, person_roles
from bangfu_bot.members.service import person_by_id
from bangfu_bot.notify.models import outbox
from bangfu_bot.wechat.models import wechat_users
from tests.county import bind
from tests.factories import id_number


async def add_members(
    bot: Any, branch: int, count: int, start: int = 0, *, wrote: bool = False
) -> list[str]:
    """Bulk-add bound members to a branch, following the account (and, with `wrote`, in
    their 48-hour window); returns their openids."""
    now = bot.clock.now()
    openids = []
    async with bot.services.engine.begin() as conn:
        for n in range(start, start + count):
            result = await conn.execute(
                insert(people).values(
                    name=f"党员{n}",
                    id_number=id_number(region=f"52{n // 1000 % 100:02d}01", serial=n % 1000),
                    branch_id=branch,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            person_id = int(result.inserted_primary_key[0])
            await conn.execute(insert(person_roles).values(person_id=person_id, role="member"))
            openid = f"o-member-{n}"
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person_id, channel="import", bound_at=now
                )
            )
            openids.append(openid)
        await conn.execute(
            insert(wechat_users),
            [  # as their follow events recorded them
                {
                    "openid": openid,
                    "subscribed": True,
                    "first_seen_at": now,
                    "subscribed_at": now,
                    "last_message_at": now if wrote else None,
                }
                for openid in openids
            ],
        )
    for openid in openids:
        bot.api.follow(openid)
    return openids


def no_tag_room(api: Any) -> None:
    """Staff have used the account's 100 tags by hand: notices go by openid list."""
    for n in range(100):
        api.add_tag(f"手工标签{n}")


async def test_a_township_of_five_thousand(bot: Any, county: Any) -> None:
    await add_members(bot, county.tree.branch, 3000)
    await add_members(bot, county.tree.other_branch, 2000, start=3000)
    async with bot.services.engine.begin() as conn:
        staff = await person_by_id(conn, county.staff_id)
        broadcast_id, count = await broadcasts.create(
            conn,
            author=staff,
            text="12月5日镇上开党员大会。",
            audience="township:青山镇党委",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
    assert count == 5000
    await bot.flush_outbox()
    (job,) = bot.api.mass_jobs()  # one send by the township's tag
    assert job.clientmsgid == f"bangfu-bc{broadcast_id}-tag"
    stats = bot.api.mass_job(job.msg_id)
    assert stats["SentCount"] == 5000 and stats["ErrorCount"] == 0
    await bot.driver().event(
        "o-member-1",
        "MASSSENDJOBFINISH",
        MsgID=str(job.msg_id),
        Status="send success",
        TotalCount="5000",
        FilterCount="5000",
        SentCount="5000",
        ErrorCount="0",
    )
    async with bot.services.engine.connect() as conn:
        row = (
            await conn.execute(select(broadcast_table).where(broadcast_table.c.id == broadcast_id))
        ).one()
    assert (row.status, row.recipients, row.mass_sent) == ("sent", 5000, 5000)


async def test_a_token_expiring_between_mass_calls_is_refreshed_and_none_is_lost(
    bot: Any, county: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(broadcasts, "MASS_CHUNK", 4)  # three mass calls for ten members
    no_tag_room(bot.api)
    openids = await add_members(bot, county.tree.branch, 10)
    async with bot.services.engine.begin() as conn:
        await broadcasts.create(
            conn,
            author=None,
            text="明天开会。",
            audience="branch:桃源村党支部",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
    held = bot.api.hold_next("message/mass/send")  # the first call is under way...
    sending = asyncio.create_task(bot.flush_outbox())
    await asyncio.wait_for(held.arrived.wait(), 10)
    bot.api.expire_tokens()  # ...when the token runs out
    held.release()
    await sending
    jobs = bot.api.mass_jobs()
    assert len(jobs) == 3
    reached = sorted(openid for job in jobs for openid in job.attempted)
    assert reached == sorted(openids)  # each member once, in one of the three calls
    refused = [call for call in bot.api.calls if call.errcode == 42001]
    assert len(refused) == 1  # one call met the expired token; it was refreshed and retried


async def test_a_send_cut_off_by_a_crash_is_taken_up_once(bot: Any, county: Any) -> None:
    openids = await add_members(bot, county.tree.branch, 3)
    async with bot.services.engine.begin() as conn:
        broadcast_id, _ = await broadcasts.create(
            conn,
            author=None,
            text="明天开会。",
            audience="branch:桃源村党支部",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
        # A dispatcher claimed it and died before recording anything.
        await conn.execute(
            update(broadcast_table)
            .where(broadcast_table.c.id == broadcast_id)
            .values(status="sending", sent_at=bot.clock.now())
        )
    await bot.flush_outbox()
    assert bot.api.mass_jobs() == []  # a fresh claim may still be at work: leave it
    bot.clock.advance(minutes=10)
    await bot.flush_outbox()
    (job,) = bot.api.mass_jobs()
    assert sorted(job.attempted) == sorted(openids)
    await bot.flush_outbox()
    assert len(bot.api.mass_jobs()) == 1


async def test_the_fifth_notice_in_a_month_goes_another_way(bot: Any, county: Any) -> None:
    openids = await add_members(bot, county.tree.branch, 3)
    for openid in openids:
        await bot.driver().text(openid, "你好")  # their windows are open
    for n in range(5):
        async with bot.services.engine.begin() as conn:
            await broadcasts.create(
                conn,
                author=None,
                text=f"第{n + 1}条通知",
                audience="branch:桃源村党支部",
                training=False,
                now=bot.clock.now(),
                tz=bot.services.settings.tz,
            )
        await bot.flush_outbox()
    assert len(bot.api.mass_jobs()) == 4
    assert bot.api.sent_texts(openids[0]) == ["第5条通知"]
    async with bot.services.engine.connect() as conn:
        channels = (
            (
                await conn.execute(
                    select(broadcast_recipients.c.channel).where(
                        broadcast_recipients.c.openid == openids[0]
                    )
                )
            )
            .scalars()
            .all()
        )
    assert channels.count("tag") == 4 and channels.count("outbox") == 1


async def test_a_big_audience_over_the_limit_is_planned_in_bulk(bot: Any, county: Any) -> None:
    openids = await add_members(bot, county.tree.branch, 1200)  # more than one IN list
    month = broadcasts.month_of(bot.clock.now(), bot.services.settings.tz)
    used_up = openids[:700]  # these had this month's 4 mass messages already
    async with bot.services.engine.begin() as conn:
        people_of = dict(
            (await conn.execute(select(bindings.c.openid, bindings.c.person_id))).all()
        )
        for n in range(broadcasts.MASS_PER_MONTH):
            earlier = (
                await conn.execute(
                    insert(broadcast_table).values(
                        author_id=None,
                        text=f"第{n + 1}条",
                        audience="everyone",
                        training=False,
                        status="sent",
                        recipients=len(used_up),
                        mass_msg_ids="",
                        mass_sent=0,
                        mass_errors=0,
                        created_at=bot.clock.now(),
                    )
                )
            ).inserted_primary_key[0]
            await conn.execute(
                insert(broadcast_recipients),
                [
                    {
                        "broadcast_id": earlier,
                        "openid": openid,
                        "person_id": people_of[openid],
                        "channel": "mass",
                        "month": month,
                    }
                    for openid in used_up
                ],
            )
        broadcast_id, count = await broadcasts.create(
            conn,
            author=None,
            text="年底前交党费。",
            audience="branch:桃源村党支部",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
        planned = dict(
            (
                await conn.execute(
                    select(broadcast_recipients.c.openid, broadcast_recipients.c.channel).where(
                        broadcast_recipients.c.broadcast_id == broadcast_id
                    )
                )
            ).all()
        )
        keys = set(
            (
                await conn.execute(
                    select(outbox.c.idempotency_key).where(outbox.c.kind == "notice")
                )
            ).scalars()
        )
        found = await broadcasts.recipients(conn, "branch:桃源村党支部", year=2026)
    assert count == 1200 and len(planned) == 1200
    assert {o for o, channel in planned.items() if channel == "outbox"} == set(used_up)
    assert keys == {f"broadcast:{broadcast_id}:{openid}" for openid in used_up}
    assert [r.person_id for r in found] == sorted(people_of[o] for o in openids)


async def test_a_recipient_who_cannot_be_mass_sent_gets_it_through_the_outbox(
    bot: Any, county: Any
) -> None:
    no_tag_room(bot.api)
    (openid,) = await add_members(bot, county.tree.branch, 1)  # an openid list needs two
    await bot.driver().text(openid, "你好")
    async with bot.services.engine.begin() as conn:
        broadcast_id, _ = await broadcasts.create(
            conn,
            author=None,
            text="明天开会。",
            audience="branch:桃源村党支部",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
    await bot.flush_outbox()
    assert bot.api.mass_jobs() == []
    assert bot.api.sent_texts(openid) == ["明天开会。"]
    async with bot.services.engine.connect() as conn:
        channel = (
            await conn.execute(
                select(broadcast_recipients.c.channel).where(
                    broadcast_recipients.c.broadcast_id == broadcast_id
                )
            )
        ).scalar_one()
    assert channel == "outbox"


async def test_compose_by_chat_sign_up_and_list(bot: Any, county: Any, chat: Any) -> None:
    staff, wang = chat("o-sun"), chat("o-wang")
    await bind(staff, "孙丽", county.staff_number)
    await bind(wang, "王德福", county.wang_number)
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    assert "先写内容" in await staff.send("通知")
    await staff.send("12月5日上午在镇农技站办食用菌种植培训。")
    await staff.send("一个支部")
    # The place is checked as soon as it is named, and the reach said at once.
    assert "没有叫“没有这个支部”的支部" in await staff.send("没有这个支部")
    reach = await staff.send("桃源村党支部")
    assert "发给桃源村党支部：2 人，都已绑定微信" in reach and "培训通知" in reach
    summary = await staff.send("是")
    # The summary shows the notice as members will read it, 报名 line included.
    assert "12月5日上午在镇农技站办食用菌种植培训。\n想参加请回复“报名”。" in summary
    queued = await staff.send("1")
    assert "共 2 人" in queued  # 王德福 and 张建国 are bound in 桃源村
    await bot.flush_outbox()
    (job,) = bot.api.mass_jobs()
    assert "想参加请回复“报名”" in job.content
    assert "已为您报名：12月5日上午在镇农技站办食用菌种植培训。" in await wang.send("报名")
    assert "已经报过名了" in await wang.send("报名")
    listing = await staff.send("报名情况")
    assert "共 1 人" in listing and "王德福" in listing
    assert "只有组织部能用" in await wang.send("发送情况")
    await bot.driver().event(
        "o-wang",
        "MASSSENDJOBFINISH",
        MsgID=str(job.msg_id),
        Status="send success",
        TotalCount="2",
        FilterCount="2",
        SentCount="2",
        ErrorCount="0",
    )
    report = await staff.send("发送情况")
    assert "最近一条通知（编号 1，发给桃源村党支部，共 2 人）" in report
    assert "按标签群发 2 人，按名单群发 0 人，单独发送 0 人；微信回报群发送达 2 人" in report


async def test_a_summary_too_long_for_one_reply_arrives_whole_in_parts(
    bot: Any, county: Any, chat: Any
) -> None:
    staff = chat("o-sun")
    await bind(staff, "孙丽", county.staff_number)
    text = ("各位党员同志：" + "请按时参加十二月份的组织生活会，会上学习有关文件并交流心得。" * 16)[
        :500
    ]
    await staff.send("通知")
    await staff.send(text)
    await staff.send("一个支部")
    await bind(chat("o-wang"), "王德福", county.wang_number)
    await staff.send("桃源村党支部")
    summary = await staff.send("否")  # repeats the 500 characters and the rest: over 600
    assert 0 < len(summary) <= 600 and summary.startswith("请核对")
    await bot.flush_outbox()
    (rest,) = staff.pushed()  # the rest in one message: the window allows five
    assert (summary + rest).replace("\n", "").count(text) == 1 and len(rest) <= 600
    assert rest.endswith("回复“修改”加序号。")


async def test_a_ledger_category_is_found_by_either_of_its_words(bot: Any, county: Any) -> None:
    from tests.ledger.test_export import add_entry

    engine = bot.services.engine
    year = bot.clock.now().year
    await add_entry(engine, county.wang_id, year=year, category="缺技术、缺资金")
    await add_entry(engine, county.secretary_id, year=year, category="生病")
    async with engine.begin() as conn:
        await conn.execute(
            insert(bindings).values(
                openid="o-wang",
                person_id=county.wang_id,
                channel="import",
                bound_at=bot.clock.now(),
            )
        )
        for audience in ("category:缺技术", "category:缺资金", "category:缺技术、缺资金"):
            found = await broadcasts.recipients(conn, audience, year=year)
            assert [r.openid for r in found] == ["o-wang"], audience
        assert await broadcasts.recipients(conn, "category:技术", year=year) == []


def test_a_command_line_notice_is_capped_as_the_chat_flow_is() -> None:
    import tomllib
    from pathlib import Path

    notice = Path(__file__).resolve().parents[2] / "conversations" / "notice.toml"
    flow = tomllib.loads(notice.read_text(encoding="utf-8"))
    (text,) = [step for step in flow["step"] if step["id"] == "text"]
    assert text["max_length"] == broadcasts.MAX_TEXT


async def test_empty_audience_is_refused(bot: Any, county: Any) -> None:
    import pytest

    async with bot.services.engine.begin() as conn:
        with pytest.raises(broadcasts.AudienceError) as refused:
            await broadcasts.create(
                conn,
                author=None,
                text="x",
                audience="role:supervisor",
                training=False,
                now=bot.clock.now(),
                tz=bot.services.settings.tz,
            )
    assert "0 人" in refused.value.message
