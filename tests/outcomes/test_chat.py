"""The outcomes through the webhook, as people see them: 年度计划, 签到, 去世登记."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bangfu_bot.members.models import bindings, people
from bangfu_bot.outcomes import service as outcomes
from bangfu_bot.outcomes.models import passings
from tests.cases.test_procedure import personas


async def test_the_year_plan_word(bot: Any, county: Any, chat: Any) -> None:
    wang, _, _, staff = await personas(chat, county)
    assert "只有组织部和监督小组能看" in await wang.send("年度计划")
    assert "还没有定年度计划" in await staff.send("年度计划")
    plan = outcomes.parse_plan('trainings = 3\n[raise]\ncounty_finance = "10万"', year=2026)
    async with bot.services.engine.begin() as conn:
        await outcomes.set_plan(conn, plan=plan, actor=None, channel="cli", now=bot.clock.now())
    shown = await staff.send("年度计划")
    assert "2026年度计划" in shown and "县财政 100000元" in shown and "技术培训 3 场" in shown


async def test_sign_in_without_a_training(bot: Any, county: Any, chat: Any) -> None:
    wang, _, _, _ = await personas(chat, county)
    assert "没有您能签到的培训" in await wang.send("签到")


async def test_a_secretary_records_a_passing_with_respect(bot: Any, county: Any, chat: Any) -> None:
    wang, secretary, _, _ = await personas(chat, county)
    assert "哪位党员去世了" in await secretary.send("去世登记")
    await secretary.send("王德福")
    await secretary.send("昨天")
    done = await secretary.send("1")
    assert "王德福同志去世" in done and "深表哀悼" in done
    async with bot.services.engine.connect() as conn:
        (row,) = (await conn.execute(select(passings))).all()
        person = (await conn.execute(select(people).where(people.c.id == row.person_id))).first()
        open_bindings = (
            await conn.execute(
                select(bindings).where(
                    bindings.c.person_id == row.person_id, bindings.c.unbound_at.is_(None)
                )
            )
        ).all()
    assert person.name == "王德福" and person.passed_away_on == row.passed_on
    assert open_bindings == []
    # His WeChat account is no longer his: nothing is sent to it as to him.
    assert "请先绑定" in await wang.send("进度")
    # A member may not record it.
    other = chat("o-other")
    assert "支部书记" in await other.send("去世登记") or "绑定" in await other.send("去世登记")
