"""A Spring Festival campaign over a county's ledger: the list, who visits whom, reports,
the fund, reminders as the days pass, and the township officers' not-visited list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import figures_now
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import bindings
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from bangfu_bot.visits import service as visits
from bangfu_bot.visits.enums import AssignedAs, Occasion, Source
from bangfu_bot.visits.models import visit_campaigns, visit_sends
from bangfu_bot.visits.models import visits as visit_rows
from tests.visits.conftest import OPENED, TZ, County, contribute, local, make_county, person


async def bind(engine: Any, person_id: int, openid: str) -> None:
    """Give someone a WeChat binding so pushes can reach them."""
    from sqlalchemy import insert

    async with engine.begin() as conn:
        await conn.execute(
            insert(bindings).values(
                openid=openid, person_id=person_id, channel="chat", bound_at=OPENED
            )
        )


async def open_spring(engine: Any, **options: Any) -> visits.Opened:
    async with engine.begin() as conn:
        return await visits.open_campaign(
            conn,
            occasion=Occasion.SPRING_FESTIVAL,
            now=OPENED,
            tz=TZ,
            cash_fen=50000,
            goods="米一袋、油一桶",
            **options,
        )


async def rows_of(engine: Any, campaign_id: int) -> dict[int, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(visit_rows).where(visit_rows.c.campaign_id == campaign_id))
        return {row.person_id: row for row in rows}


async def report(
    engine: Any,
    county_person: int,
    visit_id: int,
    *,
    on: date,
    cash: int = 50000,
    at: Any = None,
    goods: str | None = "米一袋",
) -> str:
    reporter = await person(engine, county_person)
    async with engine.begin() as conn:
        return await visits.report_visit(
            conn,
            visit_id=visit_id,
            reporter=reporter,
            visited_on=on,
            cash_fen=cash,
            goods=goods,
            note="身体还好",
            photos=[],
            now=at or local(on),
            tz=TZ,
        )


@pytest.fixture
async def county(engine: Any) -> County:
    return await make_county(engine)


async def test_the_list_comes_from_the_ledger_and_the_pre_1949_members(
    engine: Any, county: County
) -> None:
    async with engine.connect() as conn:
        listed = await visits.visit_list(conn, ledger_year=2026)
    names = {household.name for household in listed}
    assert len(listed) == 31
    assert "老红军" in names  # pre-1949, no ledger entry: always listed
    assert "退出户" not in names  # exited from the ledger: never
    assert "老战士" not in names  # pre-1949 but his latest entry is exited
    assert "迁走户" not in names  # left the roster
    veteran = next(h for h in listed if h.name == "老红军")
    assert veteran.source == Source.PRE_1949 and veteran.paired_cadre is None
    # An earlier year's ledger is a different list.
    async with engine.connect() as conn:
        assert {h.name for h in await visits.visit_list(conn, ledger_year=2025)} == {"老红军"}


async def test_opening_assigns_each_household_and_hands_out_the_lists(
    engine: Any, county: County
) -> None:
    opened = await open_spring(engine)
    assert (opened.occasion_on, opened.deadline) == (date(2027, 2, 6), date(2027, 2, 5))
    assert opened.households == 31 and opened.pre_1949 == 1
    rows = await rows_of(engine, opened.campaign_id)
    h = county.households
    # Paired cadre on the roster → the cadre.
    assert rows[h["户主一一"]].assignee_id == county.cadre_liu
    assert rows[h["户主一一"]].assigned_as == AssignedAs.PAIRED_CADRE
    # Paired cadre not on the roster, or none → the branch secretary.
    assert rows[h["户主一二"]].assignee_id == county.li_sec  # n=1: "外单位王某", 李家村
    assert rows[h["户主一四"]].assignee_id == county.zhang  # n=3: no cadre, 桃源村
    assert rows[h["户主一五"]].assignee_id == county.li_sec  # n=4: 李家村
    assert rows[h["老红军"]].assignee_id == county.zhang
    # 河口村 has no secretary: nobody, unless a cadre is paired.
    assert rows[h["户主一三"]].assignee_id is None  # n=2
    assert rows[h["户主一三"]].assigned_as == AssignedAs.NOBODY
    assert opened.unassigned == sum(1 for row in rows.values() if row.assignee_id is None)
    assert "没有书记" in opened.text and "已开展“2027年春节走访慰问”" in opened.text
    assert opened.assignees == 3
    async with engine.connect() as conn:
        lists = (await conn.execute(select(todos).where(todos.c.kind == "visit"))).all()
    assert {row.assignee_id for row in lists} == {county.cadre_liu, county.zhang, county.li_sec}
    zhang_list = next(row for row in lists if row.assignee_id == county.zhang)
    assert zhang_list.text.startswith("2027年春节走访慰问：请在2月5日前走访")
    # One branch: names only; a cadre with households in several branches sees the branch.
    assert "老红军" in zhang_list.text and "（桃源村党支部）" not in zhang_list.text
    liu_list = next(row for row in lists if row.assignee_id == county.cadre_liu)
    assert "户主一一（桃源村党支部）、户主二六（桃源村党支部）" in liu_list.text


async def test_a_paired_cadre_name_shared_by_two_people_is_narrowed_to_the_branch(
    engine: Any, county: County
) -> None:
    from tests.visits.conftest import add_entry, add_person

    twin_here = await add_person(engine, "王干部", county.hekou)
    await add_person(engine, "王干部", county.taoyuan)
    member = await add_person(engine, "河口户", county.hekou)
    await add_entry(engine, member, paired="王干部")
    lonely = await add_person(engine, "李家户", county.lijia)
    await add_entry(engine, lonely, paired="王干部")  # neither is in 李家村
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    assert rows[member].assignee_id == twin_here
    # The 桃源村 王干部 is in the same township as 李家村: that narrows it to one.
    assert rows[lonely].assigned_as == AssignedAs.PAIRED_CADRE


async def test_a_secretary_in_hardship_is_visited_by_another_secretary(
    engine: Any, county: County
) -> None:
    from tests.visits.conftest import add_entry, add_person

    await add_entry(engine, county.zhang, paired=None)
    deputy = await add_person(engine, "副书记", county.taoyuan, roles=("member", "secretary"))
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    assert rows[county.zhang].assignee_id == deputy


async def test_a_second_campaign_for_the_same_festival_is_refused(
    engine: Any, county: County
) -> None:
    await open_spring(engine)
    with pytest.raises(visits.VisitRefused, match="已经开展了"):
        await open_spring(engine)
    # January still prepares the same festival.
    async with engine.begin() as conn:
        with pytest.raises(visits.VisitRefused, match="已经开展了"):
            await visits.open_campaign(
                conn,
                occasion=Occasion.SPRING_FESTIVAL,
                now=local(date(2027, 1, 5)),
                tz=TZ,
                cash_fen=0,
                ledger_year=2026,
            )


async def test_an_empty_ledger_opens_nothing(engine: Any) -> None:
    with pytest.raises(visits.VisitRefused, match="名单是空的"):
        await open_spring(engine)


async def test_a_visit_is_paid_from_the_fund_and_reported_once(engine: Any, county: County) -> None:
    await contribute(engine, 10_000_00)
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    veteran = rows[county.households["老红军"]]
    text = await report(engine, county.zhang, veteran.id, on=date(2027, 1, 20))
    assert "记下了：老红军家，1月20日走访，慰问金500元，米一袋" in text
    assert "已从帮扶基金支出" in text and "还有" in text
    async with engine.connect() as conn:
        movement = (await conn.execute(select(fund_movements))).all()[-1]
        figures = await figures_now(conn)
    assert (movement.kind, movement.amount_fen, movement.visit_id) == ("relief", 50000, veteran.id)
    assert movement.occurred_on == date(2027, 1, 20)
    assert movement.recorded_by == county.zhang
    assert figures.relief_fen == 50000 and figures.cash_fen == 10_000_00 - 50000
    stored = (await rows_of(engine, opened.campaign_id))[veteran.person_id]
    assert stored.fund_movement_id == movement.id and stored.reported_by == county.zhang
    # Twice for one household in one campaign: refused, and no second payment.
    with pytest.raises(visits.VisitRefused, match="已经报过了") as twice:
        await report(engine, county.zhang, veteran.id, on=date(2027, 1, 21))
    assert "1月20日，张建国报的" in twice.value.message and not twice.value.fixable
    async with engine.connect() as conn:
        assert (await figures_now(conn)).relief_fen == 50000


async def test_only_the_assignee_reports_and_not_after_the_deadline(
    engine: Any, county: County
) -> None:
    await contribute(engine, 10_000_00)
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    cadres_household = rows[county.households["户主一一"]]
    with pytest.raises(visits.VisitRefused, match="没有分给您"):
        await report(engine, county.zhang, cadres_household.id, on=date(2027, 1, 20))
    with pytest.raises(visits.VisitRefused, match="已经截止"):
        await report(
            engine,
            county.cadre_liu,
            cadres_household.id,
            on=date(2027, 2, 5),
            at=local(date(2027, 2, 6)),
        )
    with pytest.raises(visits.VisitRefused, match="今天以后") as future:
        await report(
            engine,
            county.cadre_liu,
            cadres_household.id,
            on=date(2027, 1, 21),
            at=local(date(2027, 1, 20)),
        )
    assert future.value.fixable
    # On the deadline itself it still counts.
    await report(
        engine,
        county.cadre_liu,
        cadres_household.id,
        on=date(2027, 2, 5),
        at=local(date(2027, 2, 5), hour=23),
    )


async def test_late_reports_when_the_campaign_allows_them(engine: Any, county: County) -> None:
    await contribute(engine, 10_000_00)
    opened = await open_spring(engine, rules=visits.Rules(late_reports=True))
    rows = await rows_of(engine, opened.campaign_id)
    household = rows[county.households["户主一一"]]
    text = await report(
        engine, county.cadre_liu, household.id, on=date(2027, 2, 4), at=local(date(2027, 2, 10))
    )
    assert text.startswith("记下了")


async def test_a_fund_without_cash_refuses_the_visit_and_keeps_nothing(
    engine: Any, county: County
) -> None:
    await contribute(engine, 300_00)  # 300 yuan: less than one household's 500
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    household = rows[county.households["老红军"]]
    with pytest.raises(visits.VisitRefused, match="不够支出"):
        await report(engine, county.zhang, household.id, on=date(2027, 1, 20))
    assert (await rows_of(engine, opened.campaign_id))[household.person_id].visited_on is None
    async with engine.connect() as conn:
        assert (await figures_now(conn)).relief_fen == 0
    # Goods only, no cash: no fund movement needed.
    text = await report(engine, county.zhang, household.id, on=date(2027, 1, 20), cash=0)
    assert "慰问金" not in text and "米一袋" in text


async def test_a_visit_is_noted_in_the_ledger_entry(engine: Any, county: County) -> None:
    await contribute(engine, 10_000_00)
    opened = await open_spring(engine)
    member = county.households["户主一二"]
    rows = await rows_of(engine, opened.campaign_id)
    await report(engine, county.li_sec, rows[member].id, on=date(2027, 1, 20))
    async with engine.connect() as conn:
        entry = (
            await conn.execute(
                select(ledger_entries.c.assistance).where(
                    ledger_entries.c.person_id == member, ledger_entries.c.year == 2026
                )
            )
        ).scalar_one()
    assert entry == ["2027年春节走访慰问（2027年1月20日）：慰问金500元，米一袋"]


async def count_outbox(engine: Any, *, kind: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.openid, func.count())
            .where(outbox.c.kind == kind)
            .group_by(outbox.c.openid)
        )
        return {openid: int(count) for openid, count in rows}


async def run_days(engine: Any, first: date, last: date) -> list[visits.Sent]:
    """Run the reminder job hourly-ish (three times a day) from `first` through `last`."""
    runs = []
    day = first
    while day <= last:
        for hour in (0, 9, 22):
            async with engine.begin() as conn:
                runs.append(await visits.send_due(conn, now=local(day, hour), tz=TZ))
        day += timedelta(days=1)
    return runs


async def test_reminders_go_once_each_and_stop_when_the_assignee_is_done(
    engine: Any, county: County
) -> None:
    await contribute(engine, 100_000_00)
    for person_id, openid in (
        (county.zhang, "o-zhang"),
        (county.li_sec, "o-li"),
        (county.cadre_liu, "o-liu"),
        (county.zhao, "o-zhao"),
        (county.qian, "o-qian"),
    ):
        await bind(engine, person_id, openid)
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    # Nothing is due in December.
    await run_days(engine, date(2026, 12, 1), date(2027, 1, 21))
    assert await count_outbox(engine, kind="visit_reminder") == {}
    # 14 days before 5 February: 22 January.
    await run_days(engine, date(2027, 1, 22), date(2027, 1, 22))
    assert await count_outbox(engine, kind="visit_reminder") == {
        "o-zhang": 1,
        "o-li": 1,
        "o-liu": 1,
    }
    # 刘帮扶 visits all six of his households before the 7-day reminder.
    for row in rows.values():
        if row.assignee_id == county.cadre_liu:
            await report(
                engine, county.cadre_liu, row.id, on=date(2027, 1, 25), at=local(date(2027, 1, 25))
            )
    await run_days(engine, date(2027, 1, 23), date(2027, 2, 10))
    assert await count_outbox(engine, kind="visit_reminder") == {
        "o-zhang": 3,
        "o-li": 3,
        "o-liu": 1,
    }
    async with engine.connect() as conn:
        sends = {
            (row.person_id, row.what)
            for row in await conn.execute(
                select(visit_sends).where(visit_sends.c.what.like("remind:%"))
            )
        }
        texts = [
            row.content
            for row in await conn.execute(
                select(outbox.c.content)
                .where(outbox.c.openid == "o-zhang", outbox.c.kind == "visit_reminder")
                .order_by(outbox.c.id)
            )
        ]
    assert (county.zhang, "remind:14") in sends and (county.cadre_liu, "remind:7") not in sends
    assert "截止，还有 14 天" in texts[0] and "截止，还有 7 天" in texts[1]
    assert "截止，还有 3 天" in texts[2] and "老红军" in texts[2]
    # His to-do closed itself when the last household was reported.
    async with engine.connect() as conn:
        liu_todo = (
            await conn.execute(
                select(todos).where(
                    todos.c.assignee_id == county.cadre_liu, todos.c.kind == "visit"
                )
            )
        ).one()
    assert liu_todo.done_at is not None


async def test_after_downtime_only_the_latest_reminder_goes(engine: Any, county: County) -> None:
    await bind(engine, county.zhang, "o-zhang")
    await open_spring(engine)
    # The bot was down from 20 January to 30 January: on the 30th only the 7-day one goes.
    await run_days(engine, date(2027, 1, 30), date(2027, 1, 30))
    async with engine.connect() as conn:
        contents = list(
            (
                await conn.execute(
                    select(outbox.c.content).where(outbox.c.kind == "visit_reminder")
                )
            ).scalars()
        )
    assert len(contents) == 1 and "截止，还有 6 天" in contents[0]


async def test_an_assignee_without_wechat_gets_the_reminder_once_bound(
    engine: Any, county: County
) -> None:
    await open_spring(engine)
    await run_days(engine, date(2027, 1, 22), date(2027, 1, 22))
    assert await count_outbox(engine, kind="visit_reminder") == {}
    await bind(engine, county.zhang, "o-zhang")
    await run_days(engine, date(2027, 1, 23), date(2027, 1, 24))
    assert await count_outbox(engine, kind="visit_reminder") == {"o-zhang": 1}


async def test_a_campaign_opened_late_skips_the_reminders_already_past(
    engine: Any, county: County
) -> None:
    await bind(engine, county.zhang, "o-zhang")
    async with engine.begin() as conn:
        await visits.open_campaign(
            conn,
            occasion=Occasion.SPRING_FESTIVAL,
            now=local(date(2027, 1, 30)),
            tz=TZ,
            cash_fen=0,
            ledger_year=2026,
        )
    await run_days(engine, date(2027, 1, 30), date(2027, 2, 5))
    async with engine.connect() as conn:
        contents = list(
            (
                await conn.execute(
                    select(outbox.c.content).where(outbox.c.kind == "visit_reminder")
                )
            ).scalars()
        )
    assert len(contents) == 1 and "截止，还有 3 天" in contents[0]


async def test_township_officers_get_the_not_visited_list_a_week_before(
    engine: Any, county: County
) -> None:
    await contribute(engine, 100_000_00)
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    h = county.households
    visited = {h["户主一一"], h["户主一二"], h["老红军"]}
    for person_id in visited:
        row = rows[person_id]
        await report(engine, row.assignee_id, row.id, on=date(2027, 1, 20))
    await run_days(engine, date(2027, 1, 20), date(2027, 1, 28))
    async with engine.connect() as conn:
        assert (
            await conn.execute(
                select(func.count()).select_from(todos).where(todos.c.kind == "visit_watch")
            )
        ).scalar_one() == 0
    await run_days(engine, date(2027, 1, 29), date(2027, 2, 5))
    async with engine.connect() as conn:
        watch = {
            row.assignee_id: row
            for row in await conn.execute(select(todos).where(todos.c.kind == "visit_watch"))
        }
        expected = await visits.not_visited(conn, opened.campaign_id, township_id=county.qingshan)
    assert set(watch) == {county.zhao, county.qian}  # each once
    qingshan_left = [
        row
        for row in rows.values()
        if row.branch_id in (county.taoyuan, county.lijia) and row.person_id not in visited
    ]
    assert len(expected) == len(qingshan_left)
    assert f"还有 {len(qingshan_left)} 户没走访，2月5日截止" in watch[county.zhao].text
    assert "户主一一" not in watch[county.zhao].text and "老红军" not in watch[county.zhao].text
    assert "桃源村党支部 户主一四（张建国）" in watch[county.zhao].text
    lushui_left = [row for row in rows.values() if row.branch_id == county.hekou]
    assert f"还有 {len(lushui_left)} 户没走访" in watch[county.qian].text
    assert "（没有分派）" in watch[county.qian].text
    assert all(row.township_id == county.qingshan for row in expected)
    assert {row.name for row in expected}.isdisjoint({"户主一一", "户主一二", "老红军"})


async def test_progress_by_township_and_branch(engine: Any, county: County) -> None:
    await contribute(engine, 100_000_00)
    opened = await open_spring(engine)
    rows = await rows_of(engine, opened.campaign_id)
    h = county.households
    for name in ("户主一一", "户主一五", "老红军"):
        row = rows[h[name]]
        await report(engine, row.assignee_id, row.id, on=date(2027, 1, 20))
    async with engine.connect() as conn:
        table = await visits.progress(conn, opened.campaign_id)
        county_text = await visits.progress_text(
            conn, viewer=await person(engine, county.sun), today=date(2027, 1, 21)
        )
        township_text = await visits.progress_text(
            conn, viewer=await person(engine, county.zhao), today=date(2027, 1, 21)
        )
        branch_text = await visits.progress_text(
            conn, viewer=await person(engine, county.zhang), today=date(2027, 1, 21)
        )
        member_text = await visits.progress_text(
            conn, viewer=await person(engine, h["户主一三"]), today=date(2027, 1, 21)
        )
    by_branch = {row.branch: row for row in table}
    assert by_branch["桃源村党支部"].households == 11  # 10 ledger + 老红军
    assert by_branch["桃源村党支部"].visited == 2 and by_branch["桃源村党支部"].cash_fen == 100000
    assert by_branch["李家村党支部"].visited == 1 and by_branch["河口村党支部"].visited == 0
    assert sum(row.households for row in table) == 31
    assert county_text.splitlines()[0] == "2027年春节走访慰问：2月5日截止，还剩 15 天"
    assert "全县：已走访 3/31 户，慰问金 1500元" in county_text
    assert (
        "青山镇党委：已走访 3/21 户" in county_text and "绿水乡党委：已走访 0/10 户" in county_text
    )
    assert "青山镇党委：已走访 3/21 户" in township_text
    assert "李家村党支部：已走访 1/10 户" in township_text and "绿水乡" not in township_text
    assert "桃源村党支部：已走访 2/11 户" in branch_text
    assert "户主一四（张建国）" in branch_text and "老红军" not in branch_text.splitlines()[-1]
    assert "只有支部书记" in member_text


async def test_an_event_visit_for_one_household(engine: Any, county: County) -> None:
    await contribute(engine, 10_000_00)
    secretary = await person(engine, county.zhang)
    now = local(date(2027, 3, 3))
    async with engine.begin() as conn:
        text = await visits.open_event_visit(
            conn,
            secretary=secretary,
            member_name="户主一四",
            event_kind="生病住院",
            situation="住县医院",
            cash_fen=30000,
            goods=None,
            now=now,
            tz=TZ,
        )
    assert "记下了：户主一四家生病住院" in text and "3月10日前" in text
    async with engine.begin() as conn:
        with pytest.raises(visits.VisitRefused, match="还没走访"):
            await visits.open_event_visit(
                conn,
                secretary=secretary,
                member_name="户主一四",
                event_kind="受灾",
                situation="房子漏雨",
                cash_fen=0,
                goods=None,
                now=now,
                tz=TZ,
            )
        with pytest.raises(visits.VisitRefused, match="本支部没有") as elsewhere:
            await visits.open_event_visit(
                conn,
                secretary=secretary,
                member_name="户主一二",
                event_kind="受灾",
                situation="房子漏雨",
                cash_fen=0,
                goods=None,
                now=now,
                tz=TZ,
            )
        assert elsewhere.value.fixable
        context = await visits.report_context(conn, reporter=secretary, today=now.date())
    assert isinstance(context, dict)
    assert context["campaign"] == "户主一四家生病住院慰问" and context["left"] == 1
    assert context["cash"] == "300元"
    async with engine.begin() as conn:
        answer = await visits.report_from_answers(
            conn,
            reporter=secretary,
            context=context,
            now=now,
            tz=TZ,
            answers={
                "household": "户主一四",
                "visited_on": "2027-03-03",
                "cash_as_planned": True,
                "goods_as_planned": False,
                "goods": "水果",
                "note": None,
                "photo": [],
            },
        )
    assert "慰问金300元，水果" in answer and "都走访完了" in answer
    async with engine.connect() as conn:
        movement = (
            await conn.execute(select(fund_movements).where(fund_movements.c.kind == "relief"))
        ).one()
        campaign = (await conn.execute(select(visit_campaigns))).one()
        todo = (await conn.execute(select(todos).where(todos.c.kind == "visit"))).one()
    assert movement.amount_fen == 30000
    assert (campaign.occasion, campaign.event_kind) == ("event", "生病住院")
    assert todo.done_at is not None and todo.subject_id == county.households["户主一四"]


async def test_the_report_context_lists_the_reporters_households(
    engine: Any, county: County
) -> None:
    opened = await open_spring(engine)
    liu = await person(engine, county.cadre_liu)
    async with engine.connect() as conn:
        context = await visits.report_context(conn, reporter=liu, today=date(2027, 1, 10))
        nothing = await visits.report_context(
            conn, reporter=await person(engine, county.sun), today=date(2027, 1, 10)
        )
        closed = await visits.report_context(conn, reporter=liu, today=date(2027, 2, 6))
    assert isinstance(context, dict) and context["left"] == 6
    assert context["households"].splitlines()[0] == "1. 户主一一（桃源村党支部）"
    assert context["campaign_id"] == opened.campaign_id and context["cash"] == "500元"
    assert nothing == "您现在没有要走访的户。"
    assert isinstance(closed, str) and "已经截止" in closed
    choices = context["choices"]
    assert visits.pick_household("2", choices) == choices[1]
    assert visits.pick_household("第２户", choices) == choices[1]  # full-width, as typed
    assert "没找到“①”" in str(visits.pick_household("①", choices))
    assert visits.pick_household("户主二六", choices) == choices[1]
    assert "没有第 9 户" in str(visits.pick_household("9", choices))
    assert "没找到“王五”" in str(visits.pick_household("王五", choices))
    lines, problems = visits.visit_preview(
        {"household": "1", "cash_as_planned": False, "cash": 20000, "goods_as_planned": True},
        context,
    )
    assert problems == [] and lines == [
        "走访对象：户主一一（桃源村党支部）",
        "慰问金：200元（从帮扶基金支出）",
        "慰问品：米一袋、油一桶",
    ]


async def test_an_event_of_another_kind_is_told_in_the_secretarys_words(
    engine: Any, county: County
) -> None:
    secretary = await person(engine, county.zhang)
    async with engine.begin() as conn:
        text = await visits.open_event_visit(
            conn,
            secretary=secretary,
            member_name="户主一四",
            event_kind="其他",
            situation="房子漏雨",
            cash_fen=0,
            goods="油布",
            now=local(date(2027, 3, 3)),
            tz=TZ,
        )
        name = (await conn.execute(select(visit_campaigns.c.name))).scalar_one()
        with pytest.raises(visits.VisitRefused, match="自己家"):
            await visits.open_event_visit(
                conn,
                secretary=secretary,
                member_name="张建国",
                event_kind="受灾",
                situation="房子漏雨",
                cash_fen=0,
                goods=None,
                now=local(date(2027, 3, 3)),
                tz=TZ,
            )
    assert text.startswith("记下了：户主一四家房子漏雨。") and "慰问品：油布" in text
    assert name == "户主一四家临时慰问"
