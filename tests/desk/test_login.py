"""The desk: logging in with WeChat (a scanned QR scene, or the code 登录 returns), the
session's end (logout, unbinding, 30 idle minutes), form tokens, and who sees which case."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from sqlalchemy import insert, select

from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.notify.intents import add_todo
from tests.county import bind
from tests.factories import _org, make_person


class Browser:
    """A browser on the desk: its own cookie jar, forms posted with their token."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **params: str) -> tuple[int, str, str]:
        async with self.session.get(self.bot.url(path), params=params) as response:
            return response.status, str(response.url.path), await response.text()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        async with self.session.post(self.bot.url(path), data=data) as response:
            return response.status, str(response.url.path), await response.text()

    async def wait(self) -> dict[str, Any]:
        async with self.session.get(self.bot.url("/desk/login/wait")) as response:
            return dict(await response.json())

    async def close(self) -> None:
        await self.session.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def browsers(bot: Any) -> Any:
    opened: list[Browser] = []

    def open_browser() -> Browser:
        browser = Browser(bot)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.close()


async def scan_login(bot: Any, browser: Browser, chat: Any) -> str:
    """Open the login page, scan its QR code as the chat's WeChat user; the bot's answer."""
    status, _, html = await browser.get("/desk/login")
    assert status == 200 and "<svg" in html
    ticket = bot.api.latest_qr("login:")
    assert ticket is not None
    delivery = await chat.driver.scan(chat.openid, ticket)
    assert delivery is not None
    return delivery.text or ""


async def test_scanning_the_login_code_signs_the_page_in(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    sun = chat("o-sun")
    await bind(sun, "孙丽", county.staff_number)
    browser = browsers()
    assert (await browser.get("/desk"))[1] == "/desk/login"  # nobody: the login page
    await browser.get("/desk/login")
    assert (await browser.wait())["state"] == "waiting"
    ticket = bot.api.latest_qr("login:")
    assert "工作台已登录" in ((await sun.driver.scan(sun.openid, ticket)).text or "")
    assert (await browser.wait())["state"] == "signed_in"
    status, path, html = await browser.get("/desk")
    assert (status, path) == (200, "/desk") and "孙丽" in html and "数据截至" in html
    assert "县委组织部" in html and 'http-equiv="refresh" content="60"' in html
    # The scene is spent: a second scan is refused, the page cannot claim it again.
    bot.clock.advance(seconds=5)  # a new push, not WeChat's retry of the first
    assert "用过或过期" in ((await sun.driver.scan(sun.openid, ticket)).text or "")
    assert (await browser.wait())["state"] == "used"


async def test_a_member_or_a_stranger_cannot_log_in_and_an_expired_scene_is_dead(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    browser = browsers()
    assert "只给组织部" in await scan_login(bot, browser, wang)
    assert (await browser.wait())["state"] == "waiting"
    assert "绑定" in await scan_login(bot, browser, chat("o-stranger"))
    sun = chat("o-sun")
    await bind(sun, "孙丽", county.staff_number)
    await browser.get("/desk/login")
    ticket = bot.api.latest_qr("login:")
    bot.clock.advance(minutes=6)
    # WeChat itself no longer shows an expired code; a forged scan of it is refused too.
    assert await sun.driver.scan(sun.openid, ticket) is None
    scene = bot.api.qr_scene(ticket) or ""
    assert "用过或过期" in await sun.event("SCAN", scene or "login:whatever")
    assert (await browser.wait())["state"] == "expired"


async def test_the_login_code_works_once_and_dies_after_five_misses(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    zhao = chat("o-zhao")
    await bind(zhao, "赵明", county.officer_number)
    answer = await zhao.send("登录")
    code = re.search(r"(\d{6})", answer).group(1)  # type: ignore[union-attr]
    browser = browsers()
    _, _, html = await browser.get("/desk/login")
    for miss in range(5):
        wrong = f"{(int(code) + miss + 1) % 1_000_000:06d}"
        _, path, html = await browser.post(
            "/desk/login/code", {"csrf": csrf_of(html), "name": "赵明", "code": wrong}
        )
        assert "验证码不对或已失效" in html
    _, path, html = await browser.post(
        "/desk/login/code", {"csrf": csrf_of(html), "name": "赵明", "code": code}
    )
    assert path == "/desk/login" and "验证码不对或已失效" in html  # dead after five
    code = re.search(r"(\d{6})", await zhao.send("登录")).group(1)  # type: ignore[union-attr]
    _, path, html = await browser.post(
        "/desk/login/code", {"csrf": csrf_of(html), "name": "赵明", "code": code}
    )
    assert path == "/desk" and "赵明" in html and "青山镇党委" in html
    # Spent: another browser cannot use it again.
    other = browsers()
    _, _, login_html = await other.get("/desk/login")
    _, path, _ = await other.post(
        "/desk/login/code", {"csrf": csrf_of(login_html), "name": "赵明", "code": code}
    )
    assert path == "/desk/login"


async def test_a_forged_form_token_is_refused(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser = browsers()
    _, _, html = await browser.get("/desk/login")
    status, _, html = await browser.post(
        "/desk/login/code", {"csrf": "forged", "name": "赵明", "code": "123456"}
    )
    assert status == 403 and "表单已失效" in html


async def signed_in(bot: Any, chat: Any, browsers: Any, openid: str, name: str, number: str):
    user = chat(openid)
    await bind(user, name, number)
    browser = browsers()
    assert "工作台已登录" in await scan_login(bot, browser, user)
    assert (await browser.wait())["state"] == "signed_in"
    return browser, user


async def test_logout_ends_every_session_and_an_old_token_is_dead(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    first, sun = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    second = browsers()
    assert "工作台已登录" in await scan_login(bot, second, sun)
    assert (await second.wait())["state"] == "signed_in"
    _, _, html = await first.get("/desk")
    old_token = csrf_of(html)
    _, path, html = await first.post("/desk/logout", {"csrf": old_token})
    assert path == "/desk/login" and "所有电脑上的登录都已结束" in html
    assert (await second.get("/desk"))[1] == "/desk/login"  # the other computer too
    # A replayed form from the ended session is refused.
    status, _, html = await second.post("/desk/logout", {"csrf": old_token})
    assert status == 403


async def test_idle_and_unbound_sessions_end(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, sun = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    bot.clock.advance(minutes=29)
    assert (await browser.get("/desk"))[1] == "/desk"
    bot.clock.advance(minutes=31)
    _, path, html = await browser.get("/desk")
    assert path == "/desk/login" and "30分钟没有操作" in html
    browser = browsers()
    assert "工作台已登录" in await scan_login(bot, browser, sun)
    assert (await browser.wait())["state"] == "signed_in"
    _, _, html = await browser.get("/desk")
    token = csrf_of(html)
    await sun.send("解绑")
    _, path, html = await browser.get("/desk")
    assert path == "/desk/login" and "已解绑" in html
    status, _, _ = await browser.post("/desk/logout", {"csrf": token})
    assert status == 403


async def make_case(bot: Any, county: Any, status: S, branch: int | None = None) -> int:
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        result = await conn.execute(
            insert(cases).values(
                person_id=county.wang_id,
                branch_id=county.tree.branch if branch is None else branch,
                kind="hardship",
                status=status,
                category="缺资金",
                help_wanted="资金",
                household_size=2,
                household_income_fen=300_000,
                looks_above_line=False,
                answers={"household": [{"name": "李秀英", "relation": "妻子", "age": 66}]},
                filed_by=county.wang_id,
                consent_recorded=False,
                created_at=now,
                updated_at=now,
            )
        )
        return int(result.inserted_primary_key[0])


async def test_a_township_officer_approves_on_the_desk_and_the_member_hears_it(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    case_id = await make_case(bot, county, S.REPORTED)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    status, _, html = await browser.get(f"/desk/cases/{case_id}")
    assert status == 200 and "王德福" in html and "批准" in html and "李秀英" in html
    assert county.wang_number not in html  # masked for the township
    _, _, listing = await browser.get("/desk/cases", status="reported")
    assert f"/desk/cases/{case_id}" in listing
    _, _, listing = await browser.get("/desk/cases", category="' OR 1=1 --")
    assert "没有符合条件的申请" in listing
    _, path, html = await browser.post(
        f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )
    assert path == f"/desk/cases/{case_id}" and "工作台" in html
    async with bot.services.engine.connect() as conn:
        event = (await conn.execute(select(case_events))).first()
    assert (event.to_status, event.channel, event.role) == ("approved", "web", "committee")
    await bot.flush_outbox()
    assert any("批准" in text for text in wang.pushed())


async def test_another_townships_case_is_403_and_the_supervisor_only_reads(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    async with bot.services.engine.begin() as conn:
        other_town = await _org(conn, "committee", "河西镇党委", county.tree.county)
        far_branch = await _org(conn, "branch", "河西村党支部", other_town)
    case_id = await make_case(bot, county, S.REPORTED, branch=far_branch)
    browser, zhao = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    status, _, html = await browser.get(f"/desk/cases/{case_id}")
    assert status == 403 and "不在您的管辖范围" in html
    _, _, page_html = await browser.get("/desk")
    status, _, _ = await browser.post(
        f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(page_html), "decision": "approve"}
    )
    assert status == 403
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    watcher, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)
    status, _, html = await watcher.get(f"/desk/cases/{case_id}")
    assert status == 200 and "只能查看" in html and 'action="/desk/cases/' not in html
    status, _, _ = await watcher.post(
        f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )
    assert status == 403
    async with bot.services.engine.connect() as conn:
        assert (await conn.execute(select(case_events))).first() is None


async def test_the_desk_and_the_chat_deciding_at_once_one_wins(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    case_id = await make_case(bot, county, S.REPORTED)
    zhou_id, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="周委员",
        branch=county.tree.other_branch,
        roles=("member", "committee"),
        serial=902,
    )
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    zhou = chat("o-zhou")
    await bind(zhou, "周委员", number)
    async with bot.services.engine.begin() as conn:
        await add_todo(
            conn,
            assignee_id=zhou_id,
            kind="approve",
            text="审批",
            now=bot.clock.now(),
            subject_id=county.wang_id,
            case_id=case_id,
            key=f"case:{case_id}:approve:{zhou_id}",
        )
    assert "审批" in await zhou.send("待办")
    await zhou.send("1")
    await zhou.send("批准")
    _, _, html = await browser.get(f"/desk/cases/{case_id}")
    desk, chat_answer = await asyncio.gather(
        browser.post(
            f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(html), "decision": "approve"}
        ),
        zhou.send("1"),
    )
    async with bot.services.engine.connect() as conn:
        moves = (await conn.execute(select(case_events))).all()
    assert [m.to_status for m in moves] == ["approved"]  # exactly one decision
    loser = desk[2] if moves[0].channel == "chat" else chat_answer
    assert "办过" in loser or "刚由" in loser, loser


@pytest.mark.parametrize("path", ["/desk", "/desk/cases", "/desk/cases/1"])
async def test_nobody_is_sent_to_the_login_page(bot: Any, browsers: Any, path: str) -> None:
    status, where, html = await browsers().get(path)
    assert (status, where) == (200, "/desk/login") and "登录帮扶工作台" in html


@pytest.mark.parametrize(
    "path", ["/desk/cases/1/decide", "/desk/cases/1/file", "/desk/cases/file-all", "/desk/logout"]
)
async def test_nobody_may_post_an_act(bot: Any, county: Any, browsers: Any, path: str) -> None:
    case_id = await make_case(bot, county, S.REPORTED)
    status, _, html = await browsers().post(
        path.replace("/1/", f"/{case_id}/"), {"csrf": "x", "decision": "approve"}
    )
    assert status == 403 and "请先登录" in html
    async with bot.services.engine.connect() as conn:
        assert (await conn.execute(select(case_events))).first() is None


async def test_a_secretary_sees_their_branch_and_acts_on_nothing_of_the_committee(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    mine = await make_case(bot, county, S.REPORTED)
    theirs = await make_case(bot, county, S.REPORTED, branch=county.tree.other_branch)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhang", "张建国", county.secretary_number)
    _, _, listing = await browser.get("/desk/cases")
    assert f"/desk/cases/{mine}" in listing and f"/desk/cases/{theirs}" not in listing
    status, _, html = await browser.get(f"/desk/cases/{mine}")
    assert status == 200 and "批准" not in html.split("申请与家庭")[0]
    assert (await browser.get(f"/desk/cases/{theirs}"))[0] == 403
    status, _, html = await browser.post(
        f"/desk/cases/{mine}/decide", {"csrf": csrf_of(html), "decision": "approve"}
    )
    assert "不能" in html or "没有" in html  # the authority policy's own refusal
    async with bot.services.engine.connect() as conn:
        assert (await conn.execute(select(case_events))).first() is None


async def test_a_return_needs_a_step_and_a_reason_and_is_audited_as_web(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    case_id = await make_case(bot, county, S.REPORTED)
    browser, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await browser.get(f"/desk/cases/{case_id}")
    _, _, html = await browser.post(
        f"/desk/cases/{case_id}/decide", {"csrf": csrf_of(html), "decision": "return"}
    )
    assert "写上理由" in html
    _, _, html = await browser.post(
        f"/desk/cases/{case_id}/decide",
        {
            "csrf": csrf_of(html),
            "decision": "return",
            "return_to": "under_evaluation",
            "reason": "<script>alert(1)</script>票数不清",
        },
    )
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    async with bot.services.engine.connect() as conn:
        event = (await conn.execute(select(case_events))).one()
    assert (event.to_status, event.channel) == ("returned", "web")


async def test_a_subscription_account_logs_in_by_code_only(
    start_bot: Any, county: Any, chat: Any
) -> None:
    bot = await start_bot(wechat_account_type="subscription")
    browser = Browser(bot)
    try:
        status, _, html = await browser.get("/desk/login")
        assert status == 200 and "<svg" not in html and "用验证码登录" in html
        assert bot.api.latest_qr("login:") is None
    finally:
        await browser.close()
