"""The loan's approval chain on the desk: a township officer's decision, the department's
inspection and guarantee, a township officer's write-off — each as the chat's step, with
what follows (the member told, the next to-dos), refused whole when it may not happen."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from bangfu_bot.fund.models import fund_movements
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import loan_events
from bangfu_bot.loans.models import loans as loan_table
from bangfu_bot.members.service import person_by_id
from bangfu_bot.todos.models import todos
from tests.county import bind
from tests.desk.test_login import browsers, csrf_of  # noqa: F401
from tests.desk.test_money_pages import Money, flash_of, login, money  # noqa: F401
from tests.factories import make_person


async def applies(bot: Any, member_id: int, project: str = "香菇种植") -> int:
    """A loan of 4,000 yuan the member has just applied for."""
    async with bot.services.engine.begin() as conn:
        member = await person_by_id(conn, member_id)
        return await loans.apply(
            conn,
            member=member,
            amount_fen=400_000,
            project=project,
            earnings="两季收成",
            schedule_kind="bullet",
            terms=loans.Terms(),
            now=bot.clock.now(),
        )


async def applied(bot: Any, county: Any) -> int:
    """A loan that 刘长顺 of 桃源村 (青山镇, 赵明's township) has just applied for."""
    member_id, _ = await make_person(
        bot.services.engine, bot.clock.now(), name="刘长顺", branch=county.tree.branch, serial=333
    )
    return await applies(bot, member_id)


async def status_of(bot: Any, loan_id: int) -> str:
    async with bot.services.engine.connect() as conn:
        return str(await conn.scalar(select(loan_table.c.status).where(loan_table.c.id == loan_id)))


async def events_of(bot: Any, loan_id: int) -> list[tuple[str, str]]:
    async with bot.services.engine.connect() as conn:
        rows = await conn.execute(
            select(loan_events.c.to_status, loan_events.c.channel)
            .where(loan_events.c.loan_id == loan_id)
            .order_by(loan_events.c.id)
        )
        return [(row.to_status, row.channel) for row in rows]


async def open_todos(bot: Any, loan_id: int) -> list[tuple[str, int]]:
    async with bot.services.engine.connect() as conn:
        rows = await conn.execute(
            select(todos.c.kind, todos.c.assignee_id).where(
                todos.c.loan_id == loan_id, todos.c.done_at.is_(None)
            )
        )
        return sorted((row.kind, row.assignee_id) for row in rows)


async def test_the_approval_chain_runs_on_the_desk(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    loan_id = await applied(bot, county)
    page = f"/desk/loans/{loan_id}"
    zhao = await login(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    assert 'id="decide"' not in (await sun.get(page))[2]  # the committee decides, not staff
    _, _, html = await zhao.get(page)
    assert 'id="decide"' in html and "香菇种植" in html
    csrf = csrf_of(html)

    # Refused with what to fill in; nothing moves.
    _, _, html = await zhao.post(f"{page}/decide", {"csrf": csrf, "decision": "reject"})
    assert (await flash_of(html)).startswith("refused:不批准要写理由")
    _, _, html = await zhao.post(f"{page}/decide", {"csrf": csrf, "decision": "maybe"})
    assert (await flash_of(html)).startswith("refused:请选")
    _, _, html = await zhao.post(
        f"{page}/decide", {"csrf": csrf, "decision": "approve", "reason": "好" * 201}
    )
    assert (await flash_of(html)).startswith("refused:理由最多 200 个字")
    assert await status_of(bot, loan_id) == "applied"

    _, _, html = await zhao.post(f"{page}/decide", {"csrf": csrf, "decision": "approve"})
    assert await flash_of(html) == "done:已记下：党委已批准，等组织部实地考核。"
    assert ("loan_inspect", county.staff_id) in await open_todos(bot, loan_id)
    # The same decision again (a second tab, a double click): who came first is said.
    _, _, html = await zhao.post(
        f"{page}/decide", {"csrf": csrf, "decision": "reject", "reason": "晚了"}
    )
    assert "刚由赵明办过了" in await flash_of(html)

    _, _, home = await sun.get("/desk")  # the to-do on 工作台 opens the loan
    assert f'<a href="/desk/loans/{loan_id}">党委已批准刘长顺借款' in home
    _, _, html = await sun.get(page)
    assert 'id="inspect"' in html and 'id="decide"' not in html
    form = {
        "csrf": csrf_of(html),
        "on": "2026-11-09",
        "inspector": "孙丽",
        "finding": "菌棚已搭好",
        "passed": "yes",
    }
    for wrong in ({"on": "2026-11-11"}, {"inspector": "123"}, {"finding": "  "}, {"passed": ""}):
        _, _, html = await sun.post(f"{page}/inspect", {**form, **wrong})
        assert (await flash_of(html)).startswith("refused:"), wrong
    assert await status_of(bot, loan_id) == "approved"
    _, _, html = await sun.post(f"{page}/inspect", form)
    assert await flash_of(html) == "done:已记下：考核通过，等乡镇财政担保。"
    assert "菌棚已搭好" in html and "2026年11月9日" in html

    form = {"csrf": csrf_of(html), "guarantor": "青山镇财政所", "document": "青财担〔2026〕8号"}
    _, _, html = await sun.post(f"{page}/guarantee", {**form, "document": "号" * 61})
    assert (await flash_of(html)).startswith("refused:请填好担保方和担保文号")
    _, _, html = await sun.post(f"{page}/guarantee", form)
    assert await flash_of(html) == "done:已记下：已担保，等放款。"
    assert f'action="/desk/loans/{loan_id}/disburse"' in html  # the maker's step next

    assert await events_of(bot, loan_id) == [
        ("applied", "chat"),
        ("approved", "web"),
        ("inspected", "web"),
        ("guaranteed", "web"),
    ]
    # The disbursement's to-do for each of the department's three (孙丽, 钱进, 吴刚).
    left = await open_todos(bot, loan_id)
    assert {kind for kind, _ in left} == {"loan_disburse"} and len(left) == 3


async def test_a_refusal_and_a_failed_inspection_reach_the_member(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    async with bot.services.engine.begin() as conn:  # 王德福's first loan, repaid long ago
        await conn.execute(
            loan_table.update().where(loan_table.c.id == money.wang_loan).values(status="repaid")
        )
    second = await applies(bot, county.wang_id, "养鸡")
    zhao = await login(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await zhao.get(f"/desk/loans/{second}")
    _, _, html = await zhao.post(
        f"/desk/loans/{second}/decide",
        {"csrf": csrf_of(html), "decision": "reject", "reason": "今年的名额\x07已用完。"},
    )
    assert await flash_of(html) == "done:已记下：没有批准。"
    await bot.flush_outbox()
    (told,) = [text for text in wang.pushed() if "没有批准" in text]
    # The control character gone, as the chat keeps text; the typed stop not doubled.
    assert "没有批准：今年的名额已用完。有疑问" in told
    assert await open_todos(bot, second) == []

    third = await applies(bot, county.wang_id, "养鸡")
    _, _, html = await zhao.post(
        f"/desk/loans/{third}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await sun.post(
        f"/desk/loans/{third}/inspect",
        {
            "csrf": csrf_of((await sun.get("/desk"))[2]),
            "on": "2026-11-10",
            "inspector": "孙丽",
            "finding": "鸡舍还没有建",
            "passed": "no",
        },
    )
    assert await flash_of(html) == "done:已记下：没有批准。"
    await bot.flush_outbox()
    assert [text for text in wang.pushed() if "鸡舍还没有建" in text]
    assert await status_of(bot, third) == "rejected"


@pytest.mark.parametrize("who", ["zhang", "jian"])
async def test_nobody_outside_the_chain_takes_a_step(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any, who: str
) -> None:
    loan_id = await applied(bot, county)
    viewer = (
        await login(bot, chat, browsers, "o-zhang", "张建国", county.secretary_number)
        if who == "zhang"
        else await login(bot, chat, browsers, "o-jian", "钱监督", money.supervisor_number)
    )
    status, _, html = await viewer.get("/desk")
    status, _, html = await viewer.post(
        f"/desk/loans/{loan_id}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )
    if who == "jian":
        assert status == 403  # the supervision group reads only
    else:
        assert "refused:" in await flash_of(html)  # a secretary: the policy says no
    assert await events_of(bot, loan_id) == [("applied", "chat")]


async def test_an_overdue_loan_is_written_off_by_its_township(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    page = f"/desk/loans/{money.wang_loan}"
    zhao = await login(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    assert 'id="write-off"' not in (await zhao.get(page))[2]  # not behind: nothing to offer
    bot.clock.advance(days=60)  # the first instalment, due 2026-12-31, is 9 days behind
    zhao = await login(bot, chat, browsers, "o-zhao2", "赵明", county.officer_number)
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    assert 'id="write-off"' not in (await sun.get(page))[2]  # the committee's, not staff's
    _, _, html = await zhao.get(page)
    assert 'id="write-off"' in html and "逾期 9 天" in html
    form = {"csrf": csrf_of(html), "reason": "本人病故，家中无力偿还"}
    _, _, html = await zhao.post(f"{page}/write-off", form)
    assert (await flash_of(html)).startswith("refused:核销要写理由")
    assert await status_of(bot, money.wang_loan) == "disbursed"

    _, _, html = await zhao.post(f"{page}/write-off", {**form, "understood": "1"})
    assert await flash_of(html) == "done:已核销 王德福的借款本金 5000元。理由已记下。"
    assert "本人病故，家中无力偿还" in html and "已核销" in html
    async with bot.services.engine.connect() as conn:
        loss = await conn.scalar(
            select(func.sum(fund_movements.c.amount_fen)).where(
                fund_movements.c.loan_id == money.wang_loan,
                fund_movements.c.kind == "write_off",
            )
        )
    assert loss == 500_000
    _, _, html = await zhao.post(f"{page}/write-off", {**form, "understood": "1"})
    assert "refused:" in await flash_of(html)  # once only
    assert [to for to, _ in await events_of(bot, money.wang_loan)][-1] == "written_off"
    assert date(2027, 1, 9) == bot.clock.now().date()
