"""走访 and 通知 in Debian's headless Chromium, on the sandbox's demo county: the department
opens 走访 and a campaign, writes a training notice to a township, previews it, sends it;
a member of that township reads it in WeChat (the fake), signs up, and the notice's page
lists them. Screenshots: desk-visits.png, desk-campaign.png, desk-notice-form.png,
desk-notice-compose.png (the preview), desk-notice.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bangfu_bot.broadcasts.models import broadcasts
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.members.service import person_by_id
from bangfu_bot.visits import service as visits
from bangfu_bot.visits.enums import Occasion
from bangfu_bot.visits.models import visits as visit_table
from tests.desk.test_browser import chromium, desk_tab, shot  # noqa: F401 - fixture
from tests.sandbox.conftest import Page, demo_page, page, sandbox_env  # noqa: F401 - fixtures

TEXT = "12月15日上午9点在镇党校办食用菌种植培训，讲大棚管理和销路，中午管饭。\n请带好笔记本。"


async def test_department_opens_visits_and_sends_a_notice(
    demo_page: Page, chromium: Any, tmp_path: Path
) -> None:
    groups = await demo_page.personas()
    staff = groups["组织部"][0]
    engine = demo_page.services.engine
    async with engine.connect() as conn:
        township, member_id, member_name = (
            await conn.execute(
                select(organisations.c.parent_id, people.c.id, people.c.name)
                .select_from(people.join(organisations, organisations.c.id == people.c.branch_id))
                .where(people.c.active.is_(True))
                .order_by(people.c.id)
            )
        ).first()
        # A few more of the township have bound their WeChat, as some would have.
        neighbours = (
            (
                await conn.execute(
                    select(people.c.id)
                    .select_from(
                        people.join(organisations, organisations.c.id == people.c.branch_id)
                    )
                    .where(
                        people.c.active.is_(True),
                        organisations.c.parent_id == township,
                        people.c.id != member_id,
                    )
                    .order_by(people.c.id)
                    .limit(11)
                )
            )
            .scalars()
            .all()
        )
        township_name = await conn.scalar(
            select(organisations.c.name).where(organisations.c.id == township)
        )
    await a_campaign_under_way(demo_page, staff["id"])
    member = {"openid": f"sandbox-{member_id}"}
    await demo_page.ok("/sandbox/api/bind", member)
    for neighbour in neighbours:
        await demo_page.ok("/sandbox/api/bind", {"openid": f"sandbox-{neighbour}"})

    tab = await desk_tab(chromium, demo_page, staff)
    # The 工作台 shows the campaign under way against its deadline.
    panel = await tab.inner_text("section.panel")
    assert "春节走访慰问" in panel and "还剩" in panel and "户" in panel
    await shot(tab, tmp_path, "desk-home-visits.png")
    await tab.click("nav >> text=走访")
    await tab.wait_for_url("**/desk/visits")
    assert "走访慰问" in await tab.inner_text("h1")
    await shot(tab, tmp_path, "desk-visits.png")
    await tab.locator("table.list tbody a").first.click()
    await tab.wait_for_url("**/desk/visits/*")
    assert "春节" in await tab.inner_text("h1")
    pending = await tab.locator("section.wide table.list tbody tr").count()
    assert pending > 0
    await shot(tab, tmp_path, "desk-campaign.png")

    await tab.click("nav >> text=通知")
    await tab.wait_for_url("**/desk/notices")
    await tab.click("text=写通知")
    await tab.wait_for_url("**/desk/notices/new")
    await tab.fill("input[name=title]", "食用菌培训")
    await tab.fill("textarea[name=text]", TEXT)
    await tab.check("input[name=kind][value=township]")
    await tab.select_option("select[name=township]", township_name)
    await tab.check("input[name=training]")
    await shot(tab, tmp_path, "desk-notice-form.png")
    await tab.click("button:has-text('预览')")
    await tab.wait_for_url("**/desk/notices/preview")
    rendered = await tab.inner_text("#rendered")
    assert rendered == f"【食用菌培训】\n{TEXT}\n想参加请回复“报名”。"
    figures = await tab.inner_text("table.figures")
    assert "已绑定微信" in figures
    await shot(tab, tmp_path, "desk-notice-compose.png")
    await tab.click("#send")
    await tab.wait_for_url("**/desk/notices/*")
    assert "已排队发送" in await tab.inner_text(".flash.done")

    received = await demo_page.wait_for(member, lambda entry: TEXT in entry["text"])
    assert received["text"] == f"【食用菌培训】\n{TEXT}\n想参加请回复“报名”。"
    assert received["text"].endswith("想参加请回复“报名”。")
    answer = await demo_page.say(member, "报名")
    assert any("已为您报名" in entry["text"] for entry in answer), answer
    await tab.reload()
    main = await tab.inner_text("main")
    assert "报名（1 人）" in main and member_name in main
    await shot(tab, tmp_path, "desk-notice.png")
    async with engine.connect() as conn:
        notices = (await conn.execute(select(broadcasts.c.author_id))).scalars().all()
        staff_binding = await conn.scalar(
            select(bindings.c.person_id).where(bindings.c.openid == staff["openid"])
        )
    assert notices.count(staff_binding) == 1  # sent once, by the department's staff member


async def a_campaign_under_way(demo_page: Page, staff_id: int) -> None:
    """The next Spring Festival's campaign, opened by the department, six households
    visited by those they were given to."""
    services = demo_page.services
    now, tz = services.clock.now(), services.settings.tz
    async with services.engine.begin() as conn:
        opened = await visits.open_campaign(
            conn,
            occasion=Occasion.SPRING_FESTIVAL,
            now=now,
            tz=tz,
            cash_fen=50_000,
            goods="米一袋、油一桶",
            opened_by=await person_by_id(conn, staff_id),
        )
        listed = (
            await conn.execute(
                select(visit_table.c.id, visit_table.c.assignee_id)
                .where(
                    visit_table.c.campaign_id == opened.campaign_id,
                    visit_table.c.assignee_id.is_not(None),
                )
                .order_by(visit_table.c.id)
                .limit(6)
            )
        ).all()
    for visit_id, assignee_id in listed:
        async with services.engine.begin() as conn:
            await visits.report_visit(
                conn,
                visit_id=visit_id,
                reporter=await person_by_id(conn, assignee_id),
                visited_on=now.astimezone(tz).date(),
                cash_fen=50_000,
                goods="米一袋、油一桶",
                note=None,
                photos=[],
                now=now,
                tz=tz,
            )
