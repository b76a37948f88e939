"""「到下一件事」: the clock goes to the next scheduled thing, worked out from the data, and
the jobs then run as for any other step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.cases.models import cases, public_notices
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.members.models import people
from bangfu_bot.sandbox.agenda import Agenda, next_thing
from bangfu_bot.seed.county import seed_demo
from bangfu_bot.visits.enums import Occasion
from bangfu_bot.visits.service import open_campaign
from tests.sandbox.conftest import Page
from tests.sandbox.test_api import texts

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in the county


async def test_the_next_thing_ends_the_notices_on_the_board(demo_page: Page) -> None:
    groups = await demo_page.personas()
    on_notice = next(p for p in groups["党员"] if p["case"] == "正在公示")
    secretary = next(p for p in groups["支部书记"] if p["where"] == on_notice["where"])
    await demo_page.ok("/sandbox/api/bind", {"openid": secretary["openid"]})
    async with demo_page.services.engine.connect() as conn:
        last_day = (
            await conn.execute(
                select(public_notices.c.ends_on)
                .select_from(public_notices.join(cases, cases.c.id == public_notices.c.case_id))
                .where(cases.c.person_id == on_notice["id"])
            )
        ).scalar_one()
    before = await demo_page.ok("/sandbox/api/state")

    moved = await demo_page.ok("/sandbox/api/clock", {"next": True})

    # The day after the last day of the notice, at the same time of day.
    closes = last_day + timedelta(days=1)
    assert f"{closes.month}月{closes.day}日" in moved["date"] and moved["time"] == before["time"]
    assert f"{on_notice['name']}的公示期满" in moved["next"]
    # The jobs ran: the notice closed, and the secretary's chat shows the step and its effect.
    async with demo_page.services.engine.connect() as conn:
        status = (
            await conn.execute(select(cases.c.status).where(cases.c.person_id == on_notice["id"]))
        ).scalar_one()
    assert status == "notice_closed"
    chat = await demo_page.chat(secretary)
    (line,) = [e for e in chat if e["side"] == "note" and "到下一件事" in e["text"]]
    assert on_notice["name"] in line["text"]
    assert any("公示已结束" in text for text in texts(chat[chat.index(line) :]))

    # The next one is later still, and something else.
    after = await demo_page.ok("/sandbox/api/clock", {"next": True})
    assert after["days_ahead"] > moved["days_ahead"] and after["next"] != moved["next"]


async def test_at_night_the_next_thing_is_the_morning_s_messages(demo_page: Page) -> None:
    groups = await demo_page.personas()
    secretary = groups["支部书记"][0]
    member = next(p for p in groups["党员"] if p["where"] == secretary["where"])
    night = await demo_page.ok("/sandbox/api/clock", {"hours": 12})
    assert night["time"] == "22:00"
    for persona in (secretary, member):
        await demo_page.ok("/sandbox/api/bind", {"openid": persona["openid"]})
    await demo_page.say(member, "人工")
    await demo_page.services.dispatcher.send_due()

    morning = await demo_page.ok("/sandbox/api/clock", {"next": True})

    assert morning["time"] == "08:00" and "排队待发的消息发出" in morning["next"]
    arrived = await demo_page.wait_for(
        secretary, lambda e: e["kind"] == "cs" and member["name"] in e["text"]
    )
    assert arrived["at"].endswith("08:00")


async def test_nothing_scheduled_leaves_the_clock_where_it_is(page: Page) -> None:
    before = await page.ok("/sandbox/api/state")
    status, data = await page.post("/sandbox/api/clock", {"next": True})
    assert status == 409 and "没有排着的事" in data["error"]
    after = await page.ok("/sandbox/api/state")
    assert (after["date"], after["time"]) == (before["date"], before["time"])


async def test_the_agenda_steps_through_the_loans_reminders(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW, tz=TZ)
    agenda = Agenda(tz=TZ)
    async with engine.connect() as conn:
        plans = (
            await conn.execute(
                select(people.c.name, instalments.c.number, instalments.c.due_on)
                .select_from(
                    loans.join(people, people.c.id == loans.c.person_id).join(
                        instalments, instalments.c.loan_id == loans.c.id
                    )
                )
                .where(loans.c.status == "disbursed")
            )
        ).all()
        now, seen = NOW, []
        # Without the jobs running, the agenda only predicts: it runs out after the last
        # instalment's reminders.
        while (thing := await next_thing(conn, now=now, agenda=agenda)) is not None:
            assert thing.at > now and thing.at.astimezone(TZ).strftime("%H:%M") == "10:00"
            seen.append(thing)
            now = thing.at
            assert len(seen) < 100
    assert "公示期满" in seen[0].what
    reminders = [t for t in seen if "借款第" in t.what and "还款提醒" in t.what]
    assert len(reminders) >= 3, [t.what for t in seen]
    assert any("组织部联系担保方" in t.what for t in seen)
    # Each one falls 30, 7 or 1 days before an instalment of that borrower, or on its day.
    for thing in reminders:
        day = thing.at.astimezone(TZ).date()
        assert any(
            name in thing.what
            and f"第{number}期" in thing.what
            and (due - day).days in (30, 7, 1, 0)
            for name, number, due in plans
        )


async def test_the_agenda_knows_a_visit_campaign_s_reminders_and_deadline(
    engine: AsyncEngine,
) -> None:
    await seed_demo(engine, now=NOW, tz=TZ)
    async with engine.begin() as conn:
        opened = await open_campaign(
            conn, occasion=Occasion.SPRING_FESTIVAL, now=NOW, tz=TZ, cash_fen=50000
        )
    deadline = opened.deadline
    async with engine.connect() as conn:
        now, days = NOW, {}
        while (thing := await next_thing(conn, now=now, agenda=Agenda(tz=TZ))) is not None:
            if thing.at.astimezone(TZ).date() > deadline:
                break
            days[thing.at.astimezone(TZ).date()] = thing.what
            now = thing.at
    for before in (14, 7, 3):
        assert f"离截止还有 {before} 天的提醒" in days[deadline - timedelta(days=before)]
    assert "没走访的名单交给乡镇党委" in days[deadline - timedelta(days=7)]
    assert "走访截止" in days[deadline]
