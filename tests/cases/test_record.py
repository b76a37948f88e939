"""What a decider reads about a case: the summary in the approval and filing prompts, one
line per case in 批量备案, and the full record on 详情 (reports/chat.py shows it)."""

from __future__ import annotations

from typing import Any

from tests.cases.test_procedure import personas, report_after_notice


async def test_the_approval_prompt_carries_the_case(bot: Any, county: Any, chat: Any) -> None:
    wang, secretary, officer, staff = await personas(chat, county)
    await report_after_notice(bot, wang, secretary)
    await officer.send("待办")
    prompt = await officer.send("1")
    assert prompt.startswith("审批王德福的帮扶申请（桃源村党支部上报）：")
    for line in [
        "· 生病，想要：",
        # 3,500 + 1,200.50 a year for three people, against the seed's 865 per person.
        "· 家里 3 口人，一年收入 4700.50元，每人约 1567元；标准每人每年 865元，⚠高于标准",
        "赞成 6，反对 1，弃权 1（实到 8/应到 9），通过",
        "· 公示无异议",
        "看全部情况回复“详情”。",
        "批准还是退回？",
    ]:
        assert line in prompt, line
    # The whole prompt reads on one phone screen.
    assert len(prompt.splitlines()) <= 12 and len(prompt) <= 300


async def test_the_filing_prompt_and_the_batch_list_carry_the_case(
    bot: Any, county: Any, chat: Any
) -> None:
    wang, secretary, officer, staff = await personas(chat, county)
    await report_after_notice(bot, wang, secretary)
    for line in ["待办", "1", "1"]:
        await officer.send(line)
    assert "已批准" in await officer.send("1")
    batch = await staff.send("批量备案")
    assert "1. 王德福（桃源村党支部）：3 口人，每人约 1567元⚠高于标准；评议 6/1/1；异议 0 条" in (
        batch
    )
    await staff.send("取消")
    await staff.send("待办")
    prompt = await staff.send("1")
    assert "为王德福的帮扶申请备案（桃源村党支部，党委已批准）：" in prompt
    assert "⚠高于标准" in prompt and "· 公示无异议" in prompt and "结对帮扶干部" in prompt


async def test_the_summary_names_each_objection_and_how_it_was_resolved(
    bot: Any, county: Any, chat: Any
) -> None:
    from datetime import date

    from bangfu_bot.app import run_jobs
    from tests.cases.test_procedure import _number_of, evaluate, submit
    from tests.county import bind
    from tests.factories import make_person

    wang, secretary, officer, staff = await personas(chat, county)
    await submit(wang)
    await evaluate(secretary)
    await secretary.send("1")
    await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="周大姐",
        branch=county.tree.branch,
        serial=991,
        born=date(1960, 2, 2),
    )
    neighbour = chat("o-neighbour")
    await bind(neighbour, "周大姐", await _number_of(bot, "周大姐"))
    for line in ["异议", "王德福", "他儿子在城里开了店，收入不低"]:
        await neighbour.send(line)
    assert "已记下您的异议" in await neighbour.send("1")
    for line in ["待办", "1", "核实了，儿子的店去年关了，没有收入"]:
        await secretary.send(line)
    assert "已记下处理结果" in await secretary.send("1")
    bot.clock.advance(days=8)
    await run_jobs(bot.services)
    for line in ["待办", "1", "跳过"]:
        await secretary.send(line)
    assert "已上报党委" in await secretary.send("1")
    await officer.send("待办")
    prompt = await officer.send("1")
    assert "· 公示异议 1 条：" in prompt
    assert "“他儿子在城里开了店，收入不低” → 已处理：核实了，儿子的店去年关了，没有收入" in prompt
