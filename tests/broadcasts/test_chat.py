"""通知 in chat: who a notice reaches is said as soon as its audience is known, and the
summary shows what members will read."""

from __future__ import annotations

from typing import Any

from tests.county import bind


async def test_the_reach_is_said_at_once_with_those_not_bound(
    bot: Any, county: Any, chat: Any
) -> None:
    staff = chat("o-sun")
    await bind(staff, "孙丽", county.staff_number)
    await staff.send("通知")
    await staff.send("今晚七点开党员大会。")
    # 李家村 has 李大山 and 赵明, neither bound: the place is asked again at once.
    await staff.send("一个支部")
    refused = await staff.send("李家村党支部")
    assert "李家村党支部共 2 人，还没有一个人绑定微信" in refused
    assert refused.rstrip().endswith("缺资金）。")  # the place question again
    await bind(chat("o-wang"), "王德福", county.wang_number)
    reach = await staff.send("桃源村党支部")
    assert "发给桃源村党支部：共 2 人，其中 1 人已绑定微信，能收到" in reach
    assert "另外 1 人还没绑定微信，收不到" in reach
    summary = await staff.send("否")
    assert "1. 通知内容：今晚七点开党员大会。" in summary
    assert "大家收到的就是第 1 项的内容。" in summary and "另外 1 人还没绑定微信" in summary
    assert "修改 2" in summary or "回复 1 发送" in summary


async def test_everyone_is_checked_when_chosen(bot: Any, county: Any, chat: Any) -> None:
    staff = chat("o-sun")
    await bind(staff, "孙丽", county.staff_number)
    await staff.send("通知")
    await staff.send("今晚七点开党员大会。")
    reach = await staff.send("全县")
    assert "发给全县：共 5 人，其中 1 人已绑定微信" in reach and "培训通知" in reach
