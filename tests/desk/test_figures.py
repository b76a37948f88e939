"""The desk's kept readings (desk/figures.py): 工作台's and 案件's scope-wide figures are read
once per scope for 30 seconds and shared by concurrent requests; the page's 数据截至 is the
time they were read; a viewer's own to-dos and the case rows are read again as soon as this
process writes to their tables; the money figures are shown while the next reading is
made; an act on the desk forgets them at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases, objections
from bangfu_bot.changes import Changes
from bangfu_bot.desk.figures import LIVE, REFRESHING, Figures
from bangfu_bot.notify.intents import add_todo
from tests.desk.test_login import browsers, csrf_of, make_case, signed_in  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


async def test_figures_are_read_once_in_a_window_and_again_after_it_or_an_act() -> None:
    clock = Clock()
    figures = Figures(clock.now, window=timedelta(seconds=30))
    reads: list[int] = []

    async def read() -> int:
        reads.append(len(reads) + 1)
        return len(reads)

    assert await figures.get("k", read) == (1, clock.at)
    first = clock.at
    clock.at += timedelta(seconds=29)
    assert await figures.get("k", read) == (1, first)  # kept, with the time it was read
    assert await figures.get("other", read) == (2, clock.at)  # each key on its own
    clock.at += timedelta(seconds=1)
    assert await figures.get("k", read) == (3, clock.at)  # the window is over
    figures.forget()
    assert await figures.get("k", read) == (4, clock.at)  # an act forgets
    assert reads == [1, 2, 3, 4]


async def test_concurrent_requests_share_one_reading_and_a_forgotten_one_is_not_kept() -> None:
    clock = Clock()
    figures = Figures(clock.now)
    gate = asyncio.Event()
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        await gate.wait()
        return reads

    waiting = [asyncio.create_task(figures.get("k", read)) for _ in range(2)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert reads == 1
    gate.set()
    assert [value for value, _ in await asyncio.gather(*waiting)] == [1, 1]
    assert reads == 1
    # An act while a reading is under way: those already waiting get it, it is not kept.
    gate.clear()
    figures.forget()
    before = asyncio.create_task(figures.get("k", read))
    await asyncio.sleep(0)
    figures.forget()
    gate.set()
    assert (await before)[0] == 2
    assert (await figures.get("k", read))[0] == 3


async def test_a_write_to_a_readings_tables_has_it_read_again_and_others_are_kept() -> None:
    clock = Clock()
    changes = Changes()
    figures = Figures(clock.now, changes)
    reads: list[str] = []

    def reader(name: str) -> Any:
        async def read() -> str:
            reads.append(name)
            return f"{name}{len(reads)}"

        return read

    assert (await figures.get("a", reader("a"), tables=["todos"]))[0] == "a1"
    assert (await figures.get("b", reader("b"), tables=["cases"]))[0] == "b2"
    changes.touch("todos")
    assert (await figures.get("a", reader("a"), tables=["todos"]))[0] == "a3"  # written
    assert (await figures.get("b", reader("b"), tables=["cases"]))[0] == "b2"  # not its table
    # A reading begun before a write is not what a request after the write gets.
    gate = asyncio.Event()

    async def slow() -> str:
        reads.append("slow")
        await gate.wait()
        return "old"

    changes.touch("todos")
    before = asyncio.create_task(figures.get("a", slow, tables=["todos"]))
    await asyncio.sleep(0)
    changes.touch("todos")
    after = asyncio.create_task(figures.get("a", reader("a"), tables=["todos"]))
    gate.set()
    assert (await before)[0] == "old" and (await after)[0].startswith("a")


async def test_a_stale_reading_is_shown_while_the_next_is_made() -> None:
    clock = Clock()
    figures = Figures(clock.now, Changes())
    gate = asyncio.Event()
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        if reads > 1:
            await gate.wait()
        return reads

    window = timedelta(minutes=5)
    first = clock.at
    assert await figures.get("m", read, window=window, stale=True) == (1, first)
    clock.at += 2 * window  # past it, however much its key stretches it
    # Past its window: the last reading, with its time, and the next one under way.
    assert await figures.get("m", read, window=window, stale=True) == (1, first)
    assert await figures.get("m", read, window=window, stale=True) == (1, first)
    await asyncio.sleep(0)
    assert reads == 2  # one reading for both
    gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert await figures.get("m", read, window=window, stale=True) == (2, clock.at)
    # A write to its tables is not waited out with the old figures: read at once.
    changes = Changes()
    figures = Figures(clock.now, changes)
    assert (await figures.get("m", read, tables=["loans"], stale=True))[0] == 3
    changes.touch("loans")
    assert (await figures.get("m", read, tables=["loans"], stale=True))[0] == 4


async def test_readings_past_their_window_are_read_again_a_few_at_a_time() -> None:
    clock = Clock()
    figures = Figures(clock.now, Changes())
    gate = asyncio.Event()
    gate.set()
    in_flight = most = reads = 0

    async def read() -> int:
        nonlocal in_flight, most, reads
        in_flight += 1
        most = max(most, in_flight)
        await gate.wait()
        in_flight -= 1
        reads += 1
        return reads

    for key in range(10):
        await figures.get(key, read, window=LIVE, stale=True)
    gate.clear()
    most = 0
    clock.at += 2 * LIVE
    shown = [await figures.get(key, read, window=LIVE, stale=True) for key in range(10)]
    assert [value for value, _ in shown] == list(range(1, 11))  # nobody waited
    for _ in range(5):
        await asyncio.sleep(0)
    assert most == REFRESHING  # the ten due together are read two at a time
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert reads == 20 and most == REFRESHING


async def test_the_pages_keep_scope_figures_and_say_when_they_were_read(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    tz = bot.services.settings.tz
    reported = await make_case(bot, county, S.REPORTED)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    now = bot.clock.now()
    bot.clock.advance(seconds=(50 - now.second) % 60, microseconds=-now.microsecond)
    read_at = bot.clock.now().astimezone(tz).strftime("%H:%M")

    _, _, listing = await browser.get("/desk/cases")
    assert f"数据截至 {read_at}" in listing and "<option>缺资金</option>" in listing
    _, _, home = await browser.get("/desk")
    assert f"数据截至 {read_at}" in home and "没有待办" in home

    # 20 seconds on, in the next minute: the choices and the grid are the ones read, and
    # the page says when; the new case's row and the officer's to-do show at once.
    fresh = await make_case(bot, county, S.REPORTED)
    async with bot.services.engine.begin() as conn:
        await conn.execute(update(cases).where(cases.c.id == fresh).values(category="因病"))
        await add_todo(
            conn,
            assignee_id=county.officer_id,
            kind="approve",
            text="审批新申请",
            now=bot.clock.now(),
            key=f"case:{fresh}:approve",
            case_id=fresh,
        )
    bot.clock.advance(seconds=20)
    later = bot.clock.now().astimezone(tz).strftime("%H:%M")
    assert later != read_at
    _, _, listing = await browser.get("/desk/cases")
    assert f"/desk/cases/{fresh}" in listing and "<option>因病</option>" not in listing
    assert f"数据截至 {read_at}" in listing
    _, _, home = await browser.get("/desk")
    assert "审批新申请" in home and f"数据截至 {read_at}" in home

    # After the window they are read again.
    bot.clock.advance(seconds=15)
    _, _, listing = await browser.get("/desk/cases")
    assert "<option>因病</option>" in listing and f"数据截至 {later}" in listing

    # An act on the desk forgets them: the next page shows what changed at once.
    await make_case(bot, county, S.REPORTED)  # 缺资金 again: no new choice
    async with bot.services.engine.begin() as conn:
        await conn.execute(update(cases).where(cases.c.id == reported).values(category="因灾"))
    _, _, listing = await browser.get("/desk/cases")
    assert "<option>因灾</option>" not in listing
    _, _, page = await browser.get(f"/desk/cases/{reported}")
    _, path, _ = await browser.post(
        f"/desk/cases/{reported}/decide", {"csrf": csrf_of(page), "decision": "approve"}
    )
    assert path == f"/desk/cases/{reported}"
    _, _, listing = await browser.get("/desk/cases")
    assert "<option>因灾</option>" in listing


async def test_the_home_page_lists_the_first_held_notices_and_links_to_all(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    held = [await make_case(bot, county, S.ON_NOTICE) for _ in range(12)]
    quiet = await make_case(bot, county, S.ON_NOTICE)  # on notice, no objection
    async with bot.services.engine.begin() as conn:
        for case_id in held:
            await conn.execute(
                insert(objections).values(
                    case_id=case_id,
                    raised_by=county.wang_id,
                    text="家里有两头牛",
                    raised_at=bot.clock.now(),
                )
            )
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, home = await browser.get("/desk")
    assert "公示中有异议（12）" in home and 'href="/desk/cases?held=1">全部 12 件' in home
    panel = home.split("公示中有异议")[1].split("</section>")[0]
    assert panel.count("<tr><td>") == 10
    _, _, listing = await browser.get("/desk/cases?held=1")
    for case_id in held:
        assert f'href="/desk/cases/{case_id}"' in listing
    assert f'href="/desk/cases/{quiet}"' not in listing
    assert 'name="held" value="1" checked' in listing
