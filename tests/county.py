"""Fixtures of a small county on the roster and a bot to chat with (a pytest plugin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from tests.conversation.chat import Chat
from tests.factories import Tree, make_person, make_tree


@dataclass
class County:
    """Who is on the roster in these tests."""

    tree: Tree
    wang_id: int
    wang_number: str
    secretary_id: int
    secretary_number: str
    li_id: int
    li_number: str
    officer_id: int
    officer_number: str
    staff_id: int
    staff_number: str


@pytest.fixture
async def county(bot: Any) -> County:
    """王德福 (member) and 张建国 (secretary) in 桃源村; 李大山 in 李家村; 赵明 (committee
    officer of 青山镇); 孙丽 (county department)."""
    engine, now = bot.services.engine, bot.clock.now()
    tree = await make_tree(engine, now)
    wang, wang_no = await make_person(engine, now, name="王德福", branch=tree.branch, serial=231)
    sec, sec_no = await make_person(
        engine,
        now,
        name="张建国",
        branch=tree.branch,
        roles=("member", "secretary"),
        serial=457,
        born=date(1970, 5, 2),
    )
    li, li_no = await make_person(
        engine, now, name="李大山", branch=tree.other_branch, serial=615, born=date(1949, 9, 9)
    )
    officer, officer_no = await make_person(
        engine,
        now,
        name="赵明",
        branch=tree.other_branch,
        roles=("member", "committee"),
        serial=773,
        born=date(1978, 1, 20),
    )
    staff, staff_no = await make_person(
        engine,
        now,
        name="孙丽",
        branch=None,
        roles=("department",),
        serial=884,
        born=date(1985, 8, 8),
    )
    return County(tree, wang, wang_no, sec, sec_no, li, li_no, officer, officer_no, staff, staff_no)


@pytest.fixture
def chat(bot: Any) -> Any:
    """Open a chat as some WeChat user."""

    def open_chat(openid: str) -> Chat:
        return Chat(bot, openid)

    return open_chat


async def bind(chat: Chat, name: str, number: str) -> None:
    """Bind a chat to a person the quick way (the binding flow is tested on its own)."""
    await chat.send("绑定")
    await chat.send(name)
    await chat.send(number[-6:])
    answer = await chat.send("1")
    assert answer.startswith("绑定好了"), answer
