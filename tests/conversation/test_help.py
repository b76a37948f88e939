"""帮助 and 菜单 per role, and greetings: each person reads exactly the words they may use."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.county import bind
from tests.factories import make_person

# Every word 帮助 may offer (conversations/commands.toml [[help]]).
ALL = [
    "待办",
    "代办",
    "走访",
    "临时慰问",
    "开展走访",
    "批量备案",
    "还款登记",
    "通知",
    "走访进度",
    "基金",
    "报名情况",
    "发送情况",
    "申请",
    "借款",
    "进度",
    "报名",
    "异议",
    "人工",
    "解绑",
]
# Shown only while there is something to do (a visit assigned, a training open, a notice
# running, a secretary to call): used here with nothing to do, they say so kindly.
OF_THE_MOMENT = {"走访", "报名", "异议", "人工", "待办"}
REFUSED = re.compile(r"只有.*能(用|看)|不归您|请先绑定")
# A word withheld may also just find nothing for this person (进度 for staff who never apply).
NOTHING = re.compile(r"现在没有|还没有")


def listed(text: str) -> list[str]:
    """The words a help text offers, in order."""
    return re.findall(r"^(\S+) —— ", text, flags=re.MULTILINE)


async def supervisor(bot: Any, county: Any, chat: Any) -> Any:
    engine, now = bot.services.engine, bot.clock.now()
    _, number = await make_person(
        engine, now, name="周监", branch=None, roles=("supervisor",), serial=991
    )
    qian = chat("o-zhou")
    await bind(qian, "周监", number)
    return qian


async def bound(chat: Any, county: Any, who: str) -> Any:
    people = {
        "王德福": county.wang_number,
        "张建国": county.secretary_number,
        "赵明": county.officer_number,
        "孙丽": county.staff_number,
        "李大山": county.li_number,
    }
    person = chat(f"o-{who}")
    await bind(person, who, people[who])
    return person


async def test_a_member_reads_their_own_words_and_whom_they_are(
    bot: Any, county: Any, chat: Any
) -> None:
    text = await (await bound(chat, county, "王德福")).send("帮助")
    assert text.splitlines()[0] == "王德福您好，您是桃源村党支部党员。"
    assert listed(text) == ["申请", "借款", "进度", "人工", "解绑"]
    assert "人工 —— 请支部书记联系您" in text and "【自己的事】" in text
    assert len(text.splitlines()) <= 12


async def test_the_branch_secretary_reads_his_work_first_and_no_call_to_himself(
    bot: Any, county: Any, chat: Any
) -> None:
    text = await (await bound(chat, county, "张建国")).send("帮助")
    assert text.splitlines()[0] == "张建国您好，您是桃源村党支部书记。"
    assert listed(text) == ["待办", "代办", "临时慰问", "走访进度", "申请", "借款", "进度", "解绑"]
    assert "人工" not in text  # he is the secretary his members call
    assert text.index("【要办的事】") < text.index("【自己的事】")


async def test_a_township_officer_reads_the_union_of_his_roles(
    bot: Any, county: Any, chat: Any
) -> None:
    text = await (await bound(chat, county, "赵明")).send("菜单")
    assert text.splitlines()[0] == "赵明您好，您是青山镇党委委员、李家村党支部党员。"
    assert listed(text) == ["待办", "走访进度", "申请", "借款", "进度", "解绑"]


async def test_department_staff_read_the_county_words_and_none_of_the_members(
    bot: Any, county: Any, chat: Any
) -> None:
    text = await (await bound(chat, county, "孙丽")).send("帮助")
    assert text.splitlines()[0] == "孙丽您好，您是组织部的同志。"
    assert listed(text) == [
        "待办",
        "开展走访",
        "批量备案",
        "还款登记",
        "通知",
        "走访进度",
        "基金",
        "报名情况",
        "发送情况",
        "解绑",
    ]
    assert len(text.splitlines()) <= 16


async def test_the_supervision_group_reads_what_it_may_see(
    bot: Any, county: Any, chat: Any
) -> None:
    text = await (await supervisor(bot, county, chat)).send("帮助")
    assert text.splitlines()[0] == "周监您好，您是基金监督小组成员。"
    assert listed(text) == ["基金", "报名情况", "发送情况", "解绑"]


@pytest.mark.parametrize("who", ["王德福", "张建国", "赵明", "孙丽", "supervisor"])
async def test_every_word_offered_works_and_every_word_withheld_is_refused(
    bot: Any, county: Any, chat: Any, who: str
) -> None:
    person = (
        await supervisor(bot, county, chat)
        if who == "supervisor"
        else await bound(chat, county, who)
    )
    offered = listed(await person.send("帮助"))
    assert len(offered) == len(set(offered))
    for word in ALL:
        if word == "解绑":
            continue
        answer = await person.send(word)
        await person.send("取消")
        if word in offered:
            assert not REFUSED.search(answer), (who, word, answer)
        elif word not in OF_THE_MOMENT:
            assert REFUSED.search(answer) or NOTHING.search(answer), (who, word, answer)


async def test_a_member_menu_button_a_person_cannot_use_answers_with_their_words(
    bot: Any, county: Any, chat: Any
) -> None:
    sun = await bound(chat, county, "孙丽")
    answer = await sun.event("click", "APPLY")
    assert answer.startswith("孙丽您好") and "还款登记" in answer


@pytest.mark.parametrize("said", ["你好", "您好！", "Hi", "在吗？", "有人吗", "hello"])
async def test_a_stranger_greeting_is_told_how_to_start(
    bot: Any, county: Any, chat: Any, said: str
) -> None:
    answer = await chat("o-stranger").send(said)
    assert answer.startswith("您好！") and "绑定" in answer and "身份证号后六位" in answer
    assert len(answer.splitlines()) <= 3


async def test_a_stranger_saying_anything_else_is_told_how_to_start(
    bot: Any, county: Any, chat: Any
) -> None:
    answer = await chat("o-stranger").send("我想问问帮扶的事")
    assert "绑定" in answer and "身份证号后六位" in answer


async def test_a_member_greeting_gets_a_greeting_and_their_words(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = await bound(chat, county, "王德福")
    answer = await wang.send("你好")
    assert answer.startswith("王德福您好") and listed(answer)[0] == "申请"


async def test_a_greeting_in_a_flow_asks_the_same_question_again(
    bot: Any, county: Any, chat: Any
) -> None:
    wang = await bound(chat, county, "王德福")
    first = await wang.send("申请")
    answer = await wang.send("你好")
    assert answer.startswith("您好！我们接着填。")
    assert first.splitlines()[-1] in answer
