"""The guarantor is called once per overdue instalment: the reminder scan knows a call was
made by the keys of its to-dos, whatever their text says (it used to look for 「第N期」 in
it), and an instalment that falls overdue later is called about again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bangfu_bot.cases.procedure import people_with_role
from bangfu_bot.loans import jobs
from bangfu_bot.loans.models import instalments
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from tests.factories import make_person
from tests.loans.test_reminders import (  # noqa: F401 - the county fixture
    CALL_DAYS,
    NOW,
    TODAY,
    Lender,
    at,
    bind,
    county,
    repay,
)


async def scan(engine: Any, day: Any) -> int:
    async with engine.begin() as conn:
        return await jobs.remind(conn, now=at(day), today=day, call_days=CALL_DAYS)


async def calls(engine: Any) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        return [
            tuple(row)
            for row in (
                await conn.execute(
                    select(todos.c.assignee_id, todos.c.key)
                    .where(todos.c.kind == "guarantor_call")
                    .order_by(todos.c.id)
                )
            ).all()
        ]


async def pushes(engine: Any) -> int:
    async with engine.connect() as conn:
        return len(
            (
                await conn.execute(
                    select(outbox.c.id).where(outbox.c.idempotency_key.like("todo:%guarantor%"))
                )
            ).all()
        )


async def test_the_guarantor_is_called_once_per_overdue_instalment(
    county: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, tree, _ = county
    loan = await Lender(engine, tree.branch).loan("担保", TODAY - timedelta(CALL_DAYS + 1))
    async with engine.connect() as conn:
        staff = await people_with_role(conn, "department")
        second_due = (
            await conn.execute(
                select(instalments.c.due_on).where(
                    instalments.c.loan_id == loan, instalments.c.number == 2
                )
            )
        ).scalar_one()

    await scan(engine, TODAY)
    first = [(person, f"loan:{loan}:1:guarantor:{person}") for person in staff]
    assert await calls(engine) == first
    assert await pushes(engine) == 1  # 孙丽 is on WeChat, 钱进 is not

    # The to-dos' text changes (edited, or the wording in messages.toml), 「第1期」 gone,
    # and the department takes on someone new: the scan asks for the keys, so the guarantor
    # is not called again (nor by the newcomer), and no call is counted.
    async with engine.begin() as conn:
        await conn.execute(
            update(todos).where(todos.c.kind == "guarantor_call").values(text="已打过电话")
        )
    newcomer, _ = await make_person(
        engine, NOW, name="吴新", branch=None, roles=("department",), serial=990
    )
    await bind(engine, newcomer, "o-wu")
    say = jobs.say
    monkeypatch.setattr(
        jobs,
        "say",
        lambda key, **values: "请联系担保方。" if key == "guarantor_todo" else say(key, **values),
    )
    for later in (1, 2, 10):
        # Due: the overdue reminder (its key queued already), no call.
        assert await scan(engine, TODAY + timedelta(later)) == 1
    assert await calls(engine) == first
    assert await pushes(engine) == 1

    # The first instalment repaid, the second falls overdue: the guarantor is called again.
    await repay(engine, loan, 280_000, 30_000, TODAY + timedelta(11))
    await scan(engine, second_due + timedelta(CALL_DAYS + 1))
    assert await calls(engine) == first + [
        (person, f"loan:{loan}:2:guarantor:{person}") for person in [*staff, newcomer]
    ]
    assert await pushes(engine) == 3
