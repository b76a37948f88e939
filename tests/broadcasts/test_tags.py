"""WeChat tags kept in step with the organisation tree and the roles, and notices sent by
them: what the platform ends up holding after a sync, and who a notice reaches."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select, update

from bangfu_bot.app import run_jobs
from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.broadcasts import tags
from bangfu_bot.broadcasts.models import broadcast_recipients
from bangfu_bot.broadcasts.models import broadcasts as broadcast_table
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.notify.models import outbox
from tests.broadcasts.test_broadcasts import add_members

EVERYONE, TOWNSHIP = "帮扶·全体", "帮扶·青山镇党委"
TAOYUAN, LIJIA, SECRETARIES = "帮扶·桃源村党支部", "帮扶·李家村党支部", "帮扶·支部书记"
WRITES = ("tags/create", "tags/delete", "tags/members/batchtagging", "tags/members/batchuntagging")


async def settled(bot: Any) -> None:
    """Wait for the start-up run of the jobs to end, so this test's sync makes the tags."""
    await asyncio.wait_for(bot.services.caught_up.wait(), 10)


async def bind_county(bot: Any, county: Any) -> dict[str, str]:
    """Bind everyone of the small county; their openids by name."""
    await settled(bot)
    openids = {
        "王德福": "o-wang",
        "张建国": "o-zhang",
        "李大山": "o-li",
        "赵明": "o-zhao",
        "孙丽": "o-sun",
    }
    ids = {
        "王德福": county.wang_id,
        "张建国": county.secretary_id,
        "李大山": county.li_id,
        "赵明": county.officer_id,
        "孙丽": county.staff_id,
    }
    async with bot.services.engine.begin() as conn:
        for name, openid in openids.items():
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=ids[name], channel="import", bound_at=bot.clock.now()
                )
            )
    for openid in openids.values():
        await follow(bot, openid)
    return openids


async def follow(bot: Any, openid: str) -> None:
    """The user follows the account, and the bot hears of it."""
    bot.api.follow(openid)
    await bot.driver().event(openid, "subscribe")


async def sync(bot: Any) -> tags.SyncReport:
    return await tags.sync(bot.services.engine, bot.services.client)


def writes(bot: Any) -> list[str]:
    return [call.endpoint for call in bot.api.calls if call.endpoint in WRITES]


async def notice(bot: Any, audience: str, text: str = "明天上午开会。") -> int:
    async with bot.services.engine.begin() as conn:
        broadcast_id, _ = await broadcasts.create(
            conn,
            author=None,
            text=text,
            audience=audience,
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
    await bot.flush_outbox()
    return broadcast_id


def received(bot: Any, openid: str) -> list[str]:
    """The mass messages a user was delivered."""
    return [job.content for job in bot.api.mass_jobs() if openid in job.delivered]


async def test_a_sync_puts_the_tree_and_the_roles_on_the_platform(bot: Any, county: Any) -> None:
    await bind_county(bot, county)
    bot.api.add_tag("县里自己的标签", ["o-wang"])  # made by hand: never touched
    report = await sync(bot)
    assert bot.api.tagged(EVERYONE) == {"o-wang", "o-zhang", "o-li", "o-zhao", "o-sun"}
    assert bot.api.tagged(TOWNSHIP) == {"o-wang", "o-zhang", "o-li", "o-zhao"}
    assert bot.api.tagged(TAOYUAN) == {"o-wang", "o-zhang"}
    assert bot.api.tagged(LIJIA) == {"o-li", "o-zhao"}
    assert bot.api.tagged(SECRETARIES) == {"o-zhang"}
    assert bot.api.tagged("帮扶·党委委员") == {"o-zhao"}
    assert bot.api.tagged("帮扶·组织部") == {"o-sun"}
    assert bot.api.tagged("县里自己的标签") == {"o-wang"}
    assert report.refused == report.failed_calls == 0 and len(report.created) == 8
    before = len(writes(bot))
    again = await sync(bot)  # in step: a second run reads, and changes nothing
    assert len(writes(bot)) == before and str(again).startswith("tags: 0 created")


async def test_a_move_an_unbinding_and_a_departure_follow_at_the_next_sync(
    bot: Any, county: Any
) -> None:
    await bind_county(bot, county)
    await sync(bot)
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            update(people)
            .where(people.c.id == county.wang_id)
            .values(branch_id=county.tree.other_branch)
        )
        await conn.execute(
            update(bindings)
            .where(bindings.c.openid == "o-zhang")
            .values(unbound_at=bot.clock.now())
        )
        await conn.execute(update(people).where(people.c.id == county.li_id).values(active=False))
    report = await sync(bot)
    assert bot.api.tagged(LIJIA) == {"o-wang", "o-zhao"}
    assert bot.api.tagged(EVERYONE) == {"o-wang", "o-zhao", "o-sun"}
    # 桃源村 has nobody bound now, nor has any secretary: their tags are gone.
    assert bot.api.tag_named(TAOYUAN) is None and bot.api.tag_named(SECRETARIES) is None
    assert sorted(report.deleted) == sorted([TAOYUAN, SECRETARIES])


async def test_a_renamed_branch_gets_a_new_tag_and_the_old_one_goes(bot: Any, county: Any) -> None:
    await bind_county(bot, county)
    await sync(bot)
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            update(organisations)
            .where(organisations.c.id == county.tree.branch)
            .values(name="桃园村党支部")
        )
    await sync(bot)
    assert bot.api.tag_named(TAOYUAN) is None
    assert bot.api.tagged("帮扶·桃园村党支部") == {"o-wang", "o-zhang"}


async def test_names_too_long_or_shared_get_the_organisations_id(bot: Any, county: Any) -> None:
    long = "青山镇桃源村第一党支部联合党支部"  # 16 characters: 50 bytes with the prefix
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            update(organisations).where(organisations.c.id == county.tree.branch).values(name=long)
        )
        await conn.execute(
            update(organisations)
            .where(organisations.c.id == county.tree.other_branch)
            .values(name="新村党支部")
        )
        other = (
            await conn.execute(
                insert(organisations).values(
                    kind="committee", name="白云镇党委", parent_id=county.tree.county
                )
            )
        ).inserted_primary_key[0]
        await conn.execute(
            insert(organisations).values(kind="branch", name="新村党支部", parent_id=other)
        )
        names = await tags.org_tags(conn)
    await bind_county(bot, county)
    report = await sync(bot)
    assert names[county.tree.branch].endswith(f"#{county.tree.branch}")
    assert names[county.tree.other_branch] == f"帮扶·新村党支部#{county.tree.other_branch}"
    assert all(len(name.encode()) <= 30 for name in names.values())
    assert len(set(names.values())) == len(names)
    assert bot.api.tagged(names[county.tree.branch]) == {"o-wang", "o-zhang"}
    assert not any(call.errcode == 45158 for call in bot.api.calls) and not report.refused


async def test_a_member_at_twenty_tags_is_reached_once_another_way(bot: Any, county: Any) -> None:
    await settled(bot)
    openids = await add_members(bot, county.tree.branch, 60)
    for n in range(20):  # staff's own tags fill one member's twenty
        bot.api.add_tag(f"手工{n}", [openids[7]])
    report = await sync(bot)
    assert report.refused >= 1  # 45059 for that one; the other 49 of the batch are tagged
    assert bot.api.tagged(TAOYUAN) == set(openids) - {openids[7]}
    await bot.driver().text(openids[7], "你好")  # his window is open
    await notice(bot, "branch:桃源村党支部")
    (by_tag,) = bot.api.mass_jobs()  # an openid list of one cannot be: he gets a message
    assert set(by_tag.delivered) == set(openids) - {openids[7]}
    assert bot.api.sent_texts(openids[7]) == ["明天上午开会。"]


async def test_an_account_short_of_tags_makes_the_general_ones_first(bot: Any, county: Any) -> None:
    for n in range(97):
        bot.api.add_tag(f"手工{n}")
    await bind_county(bot, county)
    report = await sync(bot)
    assert report.created == [EVERYONE, "帮扶·党员", SECRETARIES]
    # Then the other roles, the township, and its branches last.
    assert report.without_room.index(TOWNSHIP) < report.without_room.index(TAOYUAN)
    await notice(bot, "branch:李家村党支部")  # no tag for it: an openid list
    (job,) = bot.api.mass_jobs()
    assert sorted(job.attempted) == ["o-li", "o-zhao"] and job.clientmsgid.endswith("-0")


async def test_a_tag_edited_by_hand_is_put_right_before_a_notice_goes(
    bot: Any, county: Any
) -> None:
    await bind_county(bot, county)
    await sync(bot)
    bot.api.follow("o-outsider")
    tag_id = bot.api.tag_named(TAOYUAN)
    assert tag_id is not None
    bot.api.add_tag("另一个", ["o-outsider"])
    await bot.services.client.tag_batch(tag_id=tag_id, openids=["o-outsider"])  # by hand
    await notice(bot, "branch:桃源村党支部")
    (job,) = bot.api.mass_jobs()
    assert job.clientmsgid.endswith("-tag")
    assert sorted(job.delivered) == ["o-wang", "o-zhang"]  # not the outsider


async def test_a_tag_carrying_someone_outside_the_notice_is_not_used(bot: Any, county: Any) -> None:
    await bind_county(bot, county)
    await sync(bot)
    month = broadcasts.month_of(bot.clock.now(), bot.services.settings.tz)
    async with bot.services.engine.begin() as conn:
        for n in range(broadcasts.MASS_PER_MONTH):  # 王德福 had this month's four
            earlier = (
                await conn.execute(
                    insert(broadcast_table).values(
                        author_id=None,
                        text=f"第{n + 1}条",
                        audience="everyone",
                        training=False,
                        status="sent",
                        recipients=1,
                        mass_msg_ids="",
                        mass_sent=0,
                        mass_errors=0,
                        created_at=bot.clock.now(),
                    )
                )
            ).inserted_primary_key[0]
            await conn.execute(
                insert(broadcast_recipients).values(
                    broadcast_id=earlier,
                    openid="o-wang",
                    person_id=county.wang_id,
                    channel="mass",
                    month=month,
                )
            )
    await bot.driver().text("o-wang", "你好")  # his window is open
    await notice(bot, "branch:桃源村党支部")
    # The tag carries 王德福, whom this notice reaches another way: an openid list instead
    # would need two, so 张建国 gets it through the outbox too; nobody gets it twice.
    assert bot.api.mass_jobs() == []
    assert bot.api.sent_texts("o-wang") == ["明天上午开会。"]


async def test_a_subscription_account_sends_by_tag(
    start_bot: Any,
    fake_api: Any,
) -> None:
    from tests.factories import make_person, make_tree

    fake_api.account_type = "subscription"
    bot = await start_bot(wechat_account_type="subscription")
    engine, now = bot.services.engine, bot.clock.now()
    tree = await make_tree(engine, now)
    wang, _ = await make_person(engine, now, name="王德福", branch=tree.branch, serial=231)
    zhang, _ = await make_person(engine, now, name="张建国", branch=tree.branch, serial=457)
    async with engine.begin() as conn:
        for openid, person in (("o-wang", wang), ("o-zhang", zhang)):
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person, channel="import", bound_at=now
                )
            )
    for openid in ("o-wang", "o-zhang"):
        await follow(bot, openid)
    await notice(bot, "township:青山镇党委")
    (job,) = bot.api.mass_jobs()  # no openid lists on this account: the tag is the way
    assert sorted(job.delivered) == ["o-wang", "o-zhang"]

    # A second notice the same day: the account's one mass send a day is used (45028). It
    # waits for tomorrow morning, rather than go one by one and end as secretaries' to-dos.
    await notice(bot, "township:青山镇党委", text="后天下午学习。")
    assert len(bot.api.mass_jobs()) == 1
    async with engine.connect() as conn:
        queued = (await conn.execute(select(outbox.c.id).where(outbox.c.kind == "notice"))).all()
        report = await broadcasts.latest_report(conn, bot.services.settings.tz)
    assert queued == [] and "微信今天的群发次数已用完，11月11日08:00 再发" in report
    bot.clock.advance(hours=12)  # 22:00: still today's quota... and then quiet hours
    await bot.flush_outbox()
    assert len(bot.api.mass_jobs()) == 1
    bot.clock.advance(hours=10, minutes=1)  # 08:01 the next morning
    await bot.flush_outbox()
    second = bot.api.mass_jobs()[1]
    assert second.content == "后天下午学习。" and sorted(second.delivered) == ["o-wang", "o-zhang"]


async def test_a_send_by_tag_taken_up_after_a_crash_goes_once(bot: Any, county: Any) -> None:
    await bind_county(bot, county)
    async with bot.services.engine.begin() as conn:
        broadcast_id, _ = await broadcasts.create(
            conn,
            author=None,
            text="明天开会。",
            audience="township:青山镇党委",
            training=False,
            now=bot.clock.now(),
            tz=bot.services.settings.tz,
        )
    # The first process planned and sent by tag, then died before recording that it had:
    # played here by letting it finish and putting the claim back as a dead process leaves it.
    await bot.flush_outbox()
    async with bot.services.engine.begin() as conn:
        row = (
            await conn.execute(select(broadcast_table).where(broadcast_table.c.id == broadcast_id))
        ).one()
    assert row.tag_id is not None and row.planned_at is not None
    first = len(bot.api.mass_jobs())
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            update(broadcast_table)
            .where(broadcast_table.c.id == broadcast_id)
            .values(status="sending", sent_at=bot.clock.now())
        )
    # Meanwhile staff put an outsider on the tag: planned afresh, the notice would now go by
    # openid list, a second mass job to the same people. The stored plan makes the same call.
    bot.api.follow("o-outsider")
    await bot.services.client.tag_batch(tag_id=row.tag_id, openids=["o-outsider"])
    bot.clock.advance(minutes=10)
    await bot.flush_outbox()
    assert len(bot.api.mass_jobs()) == first  # the repeat was refused by clientmsgid
    for openid in ("o-wang", "o-zhang", "o-li", "o-zhao"):
        assert received(bot, openid) == ["明天开会。"], openid


async def test_the_hourly_job_keeps_tags_in_step_and_survives_failing_calls(
    bot: Any, county: Any
) -> None:
    assert "broadcasts.tags" in [job.id for job in bot.services.jobs]
    await settled(bot)
    openids = await add_members(bot, county.tree.branch, 120)
    await run_jobs(bot.services, starting=True)  # a restart's catch-up leaves tags alone
    assert writes(bot) == []
    bot.api.fail_at_random("tags/members/batchtagging", -1, rate=0.5, seed=3)
    report = await sync(bot)
    assert report.failed_calls > 0 and bot.api.tagged(TAOYUAN) < set(openids)
    bot.api.fail_at_random("tags/members/batchtagging", -1, rate=0.0)
    await run_jobs(bot.services)  # the scheduler's run finishes the job
    assert bot.api.tagged(TAOYUAN) == set(openids)


async def test_only_followers_we_have_seen_are_tagged(bot: Any, county: Any) -> None:
    await bind_county(bot, county)
    await bot.driver().event("o-li", "unsubscribe")
    bot.api.unfollow("o-li")
    async with bot.services.engine.begin() as conn:  # bound from an import, never seen
        await conn.execute(
            insert(bindings).values(
                openid="o-imported",
                person_id=county.li_id,
                channel="import",
                bound_at=bot.clock.now(),
            )
        )
    report = await sync(bot)
    assert bot.api.tagged(LIJIA) == {"o-zhao"} and report.refused == 0
    bot.api.unfollow("o-zhao")  # unfollowed, and we have not heard of it
    again = await sync(bot)
    assert again.refused == 5 and again.failed_calls == 0  # 40003 on each of his five tags
    assert bot.api.tagged(TOWNSHIP) == {"o-wang", "o-zhang"}
    before = len(bot.api.calls)
    third = await sync(bot)  # noted as gone: not tried again
    assert third.refused == 0 and not any(
        "o-zhao" in call.payload.get("openid_list", []) for call in bot.api.calls[before:]
    )
    bot.clock.advance(minutes=1)
    await follow(bot, "o-zhao")  # back: tagged again at the next sync
    await sync(bot)
    assert "o-zhao" in bot.api.tagged(LIJIA)


async def test_followers_lost_wholesale_cost_a_bounded_number_of_calls(
    bot: Any, county: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(tags, "ALONE_PER_SYNC", 60)
    await settled(bot)
    openids = await add_members(bot, county.tree.branch, 120)
    for openid in openids:  # gone, and we never heard (say, the account was moved)
        bot.api.unfollow(openid)
    before = len(bot.api.calls)
    first = await sync(bot)
    calls = len(bot.api.calls) - before
    # 党员, 全体, 青山镇, 桃源村: each tried in three batches; 50 users one by one in all.
    assert first.tried_alone == 50 and first.refused == 50
    assert calls < 4 * 3 + 50 + 20 and first.left_for_later > 0
    second = await sync(bot)  # those 50 are noted as gone: the next ones get their turn
    assert second.refused == 50 and not set(second.not_following) & set(first.not_following)
