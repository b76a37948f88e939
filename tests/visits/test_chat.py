"""Visits by chat, through the fake WeChat: open a campaign, report from 待办, 走访进度,
临时慰问."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from bangfu_bot.fund.models import fund_movements
from bangfu_bot.members.models import bindings
from bangfu_bot.members.models import people as roster
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from bangfu_bot.visits import service as visits
from bangfu_bot.visits.jobs import jobs, remind
from bangfu_bot.visits.models import visits as visit_rows
from tests.conversation.chat import Chat
from tests.visits.conftest import TZ, County, contribute, local, make_county, person

TEMPLATE = "tpl-visits"


@pytest.fixture
async def bot(start_bot: Any) -> Any:
    """A bot on an account with a notice template."""
    bot = await start_bot(wechat_template_id=TEMPLATE)
    bot.api.add_template(TEMPLATE, {"thing1": "thing", "thing2": "thing", "time3": "time"})
    return bot


@pytest.fixture
async def county(bot: Any) -> County:
    engine = bot.services.engine
    county = await make_county(engine)
    await contribute(engine, 100_000_00)
    async with engine.begin() as conn:
        for person_id, openid in (
            (county.sun, "o-sun"),
            (county.zhang, "o-zhang"),
            (county.zhao, "o-zhao"),
            (county.cadre_liu, "o-liu"),
            (county.households["户主一三"], "o-member"),
        ):
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person_id, channel="chat", bound_at=bot.clock.now()
                )
            )
    return county


async def fill(chat: Chat, answers: list[tuple[str, str]]) -> str:
    """Answer in turn; each answer's reply must contain the expected text."""
    reply = ""
    for answer, expected in answers:
        reply = await chat.send(answer)
        assert expected in reply, (answer, reply)
    return reply


async def open_campaign(bot: Any, households: int = 31) -> None:
    staff = Chat(bot, "o-sun")
    first = await staff.send("开展走访")
    assert "开展一次走访慰问" in first and "春节是2027年2月6日" in first
    assert "重阳是2027年10月8日" in first and "1. 春节" in first
    summary = await fill(
        staff,
        [
            ("1", "哪天前走访完"),
            ("跳过", "每户慰问金多少元"),
            ("500", "每户送什么"),
            ("米一袋、油一桶", "请核对"),
        ],
    )
    assert "节日：2027年2月6日（春节）" in summary
    assert "请在2027年2月5日前走访完" in summary
    assert "标准：每户慰问金 500元，慰问品：米一袋、油一桶" in summary
    opened = await staff.send("1")
    assert "已开展“2027年春节走访慰问”" in opened and f"名单共 {households} 户" in opened


async def test_a_campaign_opened_and_a_visit_reported_by_chat(bot: Any, county: County) -> None:
    secretary = Chat(bot, "o-zhang")
    await secretary.send("帮助")  # opens the 48-hour window for customer-service pushes
    await open_campaign(bot)
    await bot.flush_outbox()
    assert any(
        text.startswith("2027年春节走访慰问：请在2月5日前走访") for text in secretary.pushed()
    )
    todos = await secretary.send("待办")
    assert "1. 2027年春节走访慰问：请在2月5日前走访" in todos
    opened = await secretary.send("1")
    assert "报告走访：2027年春节走访慰问，2月5日前走访完" in opened
    assert "9. 老红军\n" in opened and "走访的是哪一户" in opened
    summary = await fill(
        secretary,
        [
            ("老红军", "哪天去的"),
            ("今天", "按标准送的吗？（标准：500元）"),
            ("是", "慰问品是按标准送的吗？（标准：米一袋、油一桶）"),
            ("是", "家里情况"),
            ("身体还好，缺冬衣", "走访照片"),
            ("跳过", "请核对走访情况"),
        ],
    )
    assert "走访对象：老红军（桃源村党支部）" in summary
    assert "慰问金：500元（从帮扶基金支出）" in summary
    done = await secretary.send("1")
    assert "记下了：老红军家，11月10日走访，慰问金500元，米一袋、油一桶。" in done
    assert "慰问金已从帮扶基金支出" in done
    async with bot.services.engine.connect() as conn:
        relief = (
            await conn.execute(select(fund_movements).where(fund_movements.c.kind == "relief"))
        ).one()
    assert relief.amount_fen == 50000 and relief.occurred_on == date(2026, 11, 10)

    # Reported households are off the list: naming one again is caught at the summary.
    again = await secretary.send("走访")
    assert "老红军" not in again
    summary = await fill(
        secretary,
        [
            ("老红军", "哪天去的"),
            ("今天", "慰问金"),
            ("否", "实际送了多少"),
            ("没有", "慰问品"),
            ("否", "实际送了什么"),
            ("没有", "家里情况"),
            ("跳过", "走访照片"),
            ("跳过", "已经报过了"),
        ],
    )
    assert "老红军家这次已经报过了，不能再报。要报别的户，请回复“修改 1”。" in summary
    assert "已经报过了" in await secretary.send("1")
    fixed = await secretary.send("修改 1")
    assert "走访的是哪一户" in fixed
    summary = await secretary.send("1")
    assert "走访对象：户主一四（桃源村党支部）" in summary and "慰问金：没有" in summary
    assert "记下了：户主一四家，11月10日走访，没有送钱物。" in await secretary.send("1")

    progress = await Chat(bot, "o-zhao").send("走访进度")
    assert progress.splitlines()[0] == "2027年春节走访慰问：2月5日截止，还剩 87 天"
    assert "青山镇党委：已走访 2/21 户，慰问金 500元" in progress
    assert "桃源村党支部：已走访 2/11 户" in progress


async def test_who_may_do_what(bot: Any, county: County) -> None:
    member = Chat(bot, "o-member")
    assert "只有组织部能用" in await member.send("开展走访")
    assert await member.send("走访") == "您现在没有要走访的户。"
    assert "只有支部书记" in await member.send("走访进度")
    assert "只有支部书记能用" in await member.send("临时慰问")
    assert "请先绑定" in await Chat(bot, "o-stranger").send("走访")
    assert await Chat(bot, "o-sun").send("走访进度") == "现在没有走访活动。"


async def test_an_event_visit_by_chat_then_reported(bot: Any, county: County) -> None:
    secretary = Chat(bot, "o-zhang")
    assert "登记一次临时慰问" in await secretary.send("临时慰问")
    summary = await fill(
        secretary,
        [
            ("户主一四", "出了什么事"),
            ("1", "简单说说"),
            ("住县医院了", "准备送多少"),
            ("3百", "准备送什么"),
            ("水果", "请核对"),
        ],
    )
    assert "准备的慰问金：300元" in summary
    opened = await secretary.send("1")
    assert "记下了：户主一四家生病住院。" in opened and "11月17日前" in opened
    report = await secretary.send("走访")
    assert "户主一四家生病住院慰问" in report and "1. 户主一四\n" in report
    await fill(
        secretary,
        [
            ("1", "哪天去的"),
            ("昨天", "慰问金"),
            ("是", "慰问品"),
            ("是", "家里情况"),
            ("跳过", "走访照片"),
            ("跳过", "走访对象：户主一四"),
        ],
    )
    done = await secretary.send("1")
    assert "11月9日走访，慰问金300元，水果" in done and "都走访完了" in done


async def test_the_job_reminds_through_the_outbox(bot: Any, county: County) -> None:
    assert [job.id for job in jobs()] == ["visits.reminders"]
    bot.api.follow("o-liu")
    await open_campaign(bot)
    await bot.flush_outbox()
    assert len(bot.api.sent_templates("o-liu")) == 1  # the list, outside the 48-hour window
    bot.clock.set(bot.clock.now().replace(year=2027, month=1, day=22))
    await remind(bot.services.job_context)
    await remind(bot.services.job_context)  # a second run (or a restart) sends nothing more
    await bot.flush_outbox()
    async with bot.services.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox).where(outbox.c.openid == "o-liu", outbox.c.kind == "visit_reminder")
            )
        ).all()
    assert len(rows) == 1 and "截止，还有 14 天" in rows[0].content
    assert rows[0].status in {"sent", "delivered"} and rows[0].channel == "template"
    assert len(bot.api.sent_templates("o-liu")) == 2


async def test_a_county_of_300_households_through_the_fake_wechat(start_bot: Any) -> None:
    bot = await start_bot(wechat_template_id=TEMPLATE)
    bot.api.add_template(TEMPLATE, {"thing1": "thing", "thing2": "thing", "time3": "time"})
    engine = bot.services.engine
    county = await make_county(engine, ledger_households=300)
    await contribute(engine, 1_000_000_00)
    people = {
        "o-sun": county.sun,
        "o-zhang": county.zhang,
        "o-li": county.li_sec,
        "o-liu": county.cadre_liu,
        "o-zhao": county.zhao,
        "o-qian": county.qian,
    }
    async with engine.begin() as conn:
        for openid, person_id in people.items():
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person_id, channel="chat", bound_at=bot.clock.now()
                )
            )
    for openid in people:
        bot.api.follow(openid)
    bot.clock.set(local(date(2026, 12, 1)))
    await open_campaign(bot, households=301)  # by chat, as 孙丽
    async with engine.connect() as conn:
        rows = list((await conn.execute(select(visit_rows))).all())
    zhang = await person(engine, county.zhang)
    li = await person(engine, county.li_sec)

    async def report_some(day: date) -> set[int]:
        """张建国 visits all his households; 李书记 every other one of his."""
        visited = set()
        for n, row in enumerate(rows):
            reporter = (
                zhang
                if row.assignee_id == county.zhang
                else (li if row.assignee_id == county.li_sec and n % 2 == 0 else None)
            )
            if reporter is None:
                continue
            async with engine.begin() as conn:
                await visits.report_visit(
                    conn,
                    visit_id=row.id,
                    reporter=reporter,
                    visited_on=day,
                    cash_fen=50000,
                    goods=None,
                    note=None,
                    photos=[],
                    now=local(day),
                    tz=TZ,
                )
            visited.add(row.id)
        return visited

    await bot.flush_outbox()
    before = {openid: len(bot.api.sent_templates(openid)) for openid in people}
    visited: set[int] = set()
    day = date(2026, 12, 2)
    while day <= date(2027, 2, 6):
        bot.clock.set(local(day))
        if day == date(2027, 1, 25):
            visited = await report_some(day)
        await remind(bot.services.job_context)
        await remind(bot.services.job_context)  # a second run (or a restart) sends nothing more
        await bot.flush_outbox()
        day += timedelta(days=1)
    sent = {openid: len(bot.api.sent_templates(openid)) - before[openid] for openid in people}
    # 14, 7 and 3 days before the deadline, once each, while households are left: 张建国
    # finished on 25 January, after the first.
    assert (sent["o-liu"], sent["o-li"], sent["o-zhang"]) == (3, 3, 1)
    async with engine.connect() as conn:
        watch = {
            row.assignee_id: row.text
            for row in await conn.execute(select(todos).where(todos.c.kind == "visit_watch"))
        }
        left_qingshan = await visits.not_visited(
            conn, rows[0].campaign_id, township_id=county.qingshan
        )
        left_lushui = await visits.not_visited(conn, rows[0].campaign_id, township_id=county.lushui)
    assert set(watch) == {county.zhao, county.qian}
    assert (sent["o-zhao"], sent["o-qian"]) == (1, 1)  # the list's push, once each
    expected_qingshan = [
        row
        for row in rows
        if row.id not in visited and row.branch_id in (county.taoyuan, county.lijia)
    ]
    assert len(left_qingshan) == len(expected_qingshan) > 0
    assert {row.name for row in left_qingshan}.isdisjoint(
        {row.name for row in await _names(engine, visited)}
    )
    assert f"还有 {len(expected_qingshan)} 户没走访" in watch[county.zhao]
    assert len(left_lushui) == sum(1 for row in rows if row.branch_id == county.hekou)
    assert f"还有 {len(left_lushui)} 户没走访" in watch[county.qian]


async def _names(engine: Any, visit_ids: set[int]) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            await conn.execute(
                select(roster.c.name)
                .select_from(visit_rows.join(roster, roster.c.id == visit_rows.c.person_id))
                .where(visit_rows.c.id.in_(visit_ids))
            )
        )
