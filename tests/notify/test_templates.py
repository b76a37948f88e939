"""Template messages per kind of notice: what the member's phone shows outside the window.

The templates are added to the fake WeChat as a county would add them in the platform
(each kind's fields and types from conversations/templates.toml), and every assertion is
on what the fake delivered: the title and 「label：value」 lines the phone shows.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bangfu_bot.loans import jobs
from bangfu_bot.members.models import bindings
from bangfu_bot.notify.intents import tell
from bangfu_bot.notify.models import outbox_attempts
from bangfu_bot.notify.templates import Facts, load_catalogue
from tests.conftest import CONVERSATIONS
from tests.factories import make_tree
from tests.loans.test_reminders import Lender

GENERIC = "TM-generic"
IDS = {"reminder": "TM-reminder", "decision": "TM-decision"}
FIRST_DUE = date(2027, 12, 17)
# 10:00 in the county, seven days before the first instalment is due.
WEEK_BEFORE = datetime(2027, 12, 10, 2, 0, tzinfo=UTC)


def add_templates(api: Any, ids: dict[str, str]) -> None:
    """Add each kind's template to the fake platform under its id, as the county would."""
    catalogue = load_catalogue(CONVERSATIONS)
    for kind, template_id in ids.items():
        template = catalogue.kinds[kind]
        api.add_template(
            template_id,
            {item.key: item.type for item in template.fields},
            title=template.title,
            labels={item.key: item.label for item in template.fields},
        )


async def start(start_bot: Any, ids: dict[str, str], registered: dict[str, str]) -> Any:
    """A bot with these kinds' template ids configured and those templates added."""
    configured = ",".join(f"{kind}={template_id}" for kind, template_id in ids.items())
    bot = await start_bot(wechat_template_id=GENERIC, wechat_templates=configured)
    add_templates(bot.api, {"generic": GENERIC, **registered})
    bot.clock.set(WEEK_BEFORE)
    return bot


async def borrower(bot: Any) -> str:
    """王琼翠 with a disbursed loan of 5,000 yuan, her first instalment due on 17 December;
    returns her openid (she follows the account but has not written: no window)."""
    engine = bot.services.engine
    tree = await make_tree(engine, WEEK_BEFORE)
    lender = Lender(engine, tree.branch)
    await lender.loan("王琼翠", FIRST_DUE)
    openid = f"o-{lender.serial}-0"
    bot.api.follow(openid)
    return openid


async def remind(bot: Any) -> None:
    async with bot.services.engine.begin() as conn:
        await jobs.remind(conn, now=bot.clock.now(), today=WEEK_BEFORE.date(), call_days=30)
    await bot.flush_outbox()


def phone(bot: Any, openid: str) -> list[list[str]]:
    """Every template the member's phone shows, line by line."""
    return [bot.api.shown_template(sent) for sent in bot.api.sent_templates(openid)]


async def attempts(bot: Any) -> list[tuple[str, int]]:
    async with bot.services.engine.connect() as conn:
        rows = await conn.execute(
            select(outbox_attempts.c.channel, outbox_attempts.c.errcode).order_by(
                outbox_attempts.c.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_reminder_outside_the_window_shows_amount_and_date(start_bot: Any) -> None:
    bot = await start(start_bot, IDS, IDS)
    openid = await borrower(bot)
    await remind(bot)
    assert bot.api.sent_texts(openid) == []
    assert phone(bot, openid) == [
        [
            "还款提醒",
            "还款事项：第1期",
            "应还金额：2717.50元",
            "到期日期：2027年12月17日",
            "还款状态：即将到期",
        ]
    ]


async def test_inside_the_window_the_reminder_is_the_chat_text(start_bot: Any) -> None:
    bot = await start(start_bot, IDS, IDS)
    # She writes first (her openid is the borrower's to be), so the window is open before
    # any reminder can be due, whenever the scheduler looks.
    await bot.driver().text("o-101-0", "你好")
    openid = await borrower(bot)
    assert openid == "o-101-0"
    await remind(bot)
    (text,) = bot.api.sent_texts(openid)[-1:]
    assert text.startswith("王琼翠您好") and "2717.50元" in text
    assert phone(bot, openid) == []


async def test_a_kind_without_a_template_goes_with_the_generic_one(start_bot: Any) -> None:
    bot = await start(start_bot, {"decision": IDS["decision"]}, {"decision": IDS["decision"]})
    openid = await borrower(bot)
    await remind(bot)
    # The generic template still carries the facts, not the greeting.
    assert phone(bot, openid) == [
        [
            "帮扶助手消息",
            "事项：还款提醒",
            "内容：第1期 2717.50元 12月17日",
            "时间：2027年12月10日 10:00",
        ]
    ]
    (sent,) = bot.api.sent_templates(openid)
    assert sent["template_id"] == GENERIC


async def test_a_too_long_thing_is_cut_to_fit_not_refused(start_bot: Any) -> None:
    bot = await start(start_bot, IDS, IDS)
    openid = await borrower(bot)
    async with bot.services.engine.begin() as conn:
        (person_id,) = (
            await conn.execute(select(bindings.c.person_id).where(bindings.c.openid == openid))
        ).one()
        await tell(
            conn,
            person_id,
            "您的帮扶申请退回了，请补充材料。",
            key="case:1:returned",
            now=bot.clock.now(),
            reason="returned",
            facts=Facts(
                "decision",
                what="困难党员帮扶申请（桃源村党支部上报，青山镇党委审批）",
                phrase="退回补充材料",
                detail="请补充家庭收入证明和低保证，交给支部书记后重新上报给镇党委",
            ),
        )
    await bot.flush_outbox()
    # (The scheduler may have sent her week-before reminder meanwhile: read the decision.)
    ((title, what, result, detail, when),) = [
        lines for lines in phone(bot, openid) if lines[0] == "审批结果通知"
    ]
    assert title == "审批结果通知"
    assert what.startswith("申请事项：困难党员帮扶申请") and what.endswith("…")
    assert len(what.removeprefix("申请事项：")) <= 20
    assert result == "审批结果：退回补充材"  # a phrase is five 汉字
    assert len(detail.removeprefix("说明：")) <= 20 and detail.endswith("…")
    assert set(await attempts(bot)) == {("template", 0)}  # nothing refused


async def test_a_refused_template_falls_back_to_the_generic_one_once(
    start_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The reminder's id is configured but the template was never added (or was deleted).
    bot = await start(start_bot, IDS, {"decision": IDS["decision"]})
    openid = await borrower(bot)
    with caplog.at_level(logging.WARNING, logger="bangfu_bot.notify.outbox"):
        await remind(bot)
    ((_, subject, what, _),) = phone(bot, openid)
    assert (subject, what) == ("事项：还款提醒", "内容：第1期 2717.50元 12月17日")
    assert await attempts(bot) == [("template", 40037), ("template", 0)]
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "reminder" in refused[0] and "40037" in refused[0]
    assert "invalid template id" in refused[0]
