"""通知 on the desk: the department writes a notice, previews who it reaches and what they
will read, and sends it through the same service as the chat's 发通知; the members' WeChat
(the fake) gets it; the notice's receipts and 报名 list (and its XLSX) follow. Refusals
write nothing, forms need their token, and each role sees what is theirs."""

from __future__ import annotations

import asyncio
import html as html_lib
import io
import re
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from bangfu_bot.broadcasts.models import broadcasts, signups
from bangfu_bot.reports.models import desk_sessions
from tests.county import bind
from tests.desk.test_login import browsers, csrf_of, signed_in  # noqa: F401 - fixture
from tests.factories import make_person

TEXT = "11月20日上午9点在镇党校学习种植技术。"
BODY = "【种植培训】\n" + TEXT + "\n想参加请回复“报名”。"
TRAINING = {
    "title": "种植培训",
    "text": TEXT,
    "kind": "township",
    "township": "青山镇党委",
    "training": "1",
}


async def notices_count(bot: Any) -> int:
    async with bot.services.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(broadcasts)) or 0)


def figure(html: str, label: str) -> int:
    """A figure of the preview's table, by the start of its label."""
    found = re.search(label + r"[^<]*</th><td class=\"num\">(\d+) 人", html)
    assert found, html
    return int(found.group(1))


def hidden(html: str, form_action: str) -> dict[str, str]:
    """The fields a form on the page posts (as a browser would)."""
    form = re.search(rf'<form method="post" action="{form_action}".*?</form>', html, re.S)
    assert form, html
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(0))
    return {name: html_lib.unescape(value) for name, value in fields}


async def department(bot: Any, county: Any, chat: Any, browsers: Any) -> tuple[Any, str]:
    """孙丽 at the desk, with 王德福 and 李大山 bound; the compose page's form token."""
    await bind(chat("o-wang"), "王德福", county.wang_number)
    await bind(chat("o-li"), "李大山", county.li_number)
    browser, _ = await signed_in(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    status, _, html = await browser.get("/desk/notices/new")
    assert status == 200 and "写通知" in html and "青山镇党委" in html and "桃源村党支部" in html
    return browser, csrf_of(html)


async def test_compose_preview_send_reaches_the_members_once(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)

    status, path, html = await browser.post("/desk/notices/preview", {"csrf": token, **TRAINING})
    assert (status, path) == (200, "/desk/notices/preview") and "核对后发送" in html
    # 青山镇: 王德福, 张建国, 李大山, 赵明; 王德福 and 李大山 are bound.
    assert figure(html, "范围内的人") == 4 and figure(html, "已绑定微信") == 2
    assert figure(html, "按") == 2 and figure(html, "单独发送") == 0
    assert figure(html, "只能请支部书记转告") == 2
    rendered = re.search(r'<pre class="notice phone" id="rendered">(.*?)</pre>', html, re.S)
    assert rendered and html_lib.unescape(rendered.group(1)) == BODY
    assert await notices_count(bot) == 0  # a preview sends nothing

    form = hidden(html, "/desk/notices/send")
    assert form["text"] == TEXT and form["training"] == "1"
    status, path, page = await browser.post("/desk/notices/send", form)
    assert status == 200 and re.fullmatch(r"/desk/notices/\d+", path), (path, page)
    assert "已排队发送" in page and "共 2 人" in page
    # The same preview submitted again: still one notice.
    again = await browser.post("/desk/notices/send", form)
    assert again[1] == path and "没有重复发送" in again[2]
    async with bot.services.engine.connect() as conn:
        (row,) = (await conn.execute(select(broadcasts))).all()
    assert (row.text, row.audience, row.training, row.author_id, row.recipients, row.channel) == (
        BODY,
        "township:青山镇党委",
        True,
        county.staff_id,
        2,
        "web",
    )

    await bot.flush_outbox()
    (job,) = bot.api.mass_jobs()
    assert job.content == BODY and sorted(job.delivered) == ["o-li", "o-wang"]
    wang = chat("o-wang")
    assert "已为您报名" in await wang.send("报名")

    _, _, page = await browser.get(path)
    assert "按标签群发" in page or "按名单群发" in page
    assert "已发出" in page and "报名（1 人）" in page and "13800138000" in page
    _, _, listing = await browser.get("/desk/notices")
    assert f'href="{path}"' in listing and "【种植培训】" in listing and "培训报名" in listing
    async with browser.session.get(bot.url(path + "/signups.xlsx")) as response:
        assert response.status == 200
        assert "spreadsheetml" in response.headers["Content-Type"]
        workbook = load_workbook(io.BytesIO(await response.read()))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[1][:5] == ("序号", "姓名", "党委", "支部", "手机号")
    assert rows[2][:5] == (1, "王德福", "青山镇党委", "桃源村党支部", "13800138000")
    assert rows[2][5] == "2026-11-10 10:00"


async def test_two_submits_at_once_send_one_notice(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    _, _, html = await browser.post("/desk/notices/preview", {"csrf": token, **TRAINING})
    form = hidden(html, "/desk/notices/send")
    # Hold the sender's sessions, as a first submit still writing would: both submits wait
    # there, then go one after the other.
    async with bot.services.engine.connect() as holder:
        first = await holder.begin()
        await holder.execute(
            update(desk_sessions)
            .where(desk_sessions.c.person_id == county.staff_id)
            .values(last_seen_at=bot.clock.now())
        )
        sends = [asyncio.create_task(browser.post("/desk/notices/send", form)) for _ in range(2)]
        await asyncio.sleep(0.5)
        assert not any(send.done() for send in sends)
        await first.commit()
    pages = [page for _, _, page in await asyncio.gather(*sends)]
    assert sum("已排队发送" in page for page in pages) == 1
    assert sum("没有重复发送" in page for page in pages) == 1
    assert await notices_count(bot) == 1


async def test_back_to_the_form_keeps_the_draft(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    _, _, html = await browser.post("/desk/notices/preview", {"csrf": token, **TRAINING})
    _, _, html = await browser.post("/desk/notices/new", hidden(html, "/desk/notices/new"))
    assert "<h1>写通知</h1>" in html and 'value="种植培训"' in html and TEXT in html
    assert "<option selected>青山镇党委</option>" in html and 'value="1" checked' in html


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"text": "   "}, "通知还没有内容"),
        ({"text": "学" * 495}, "通知太长：共 502 字，最多 500 字"),
        ({"kind": "township", "township": "不存在镇党委"}, "没有叫“不存在镇党委”的党委"),
        ({"kind": "branch", "branch": ""}, "请选好发给哪个党委"),
    ],
)
async def test_a_draft_that_cannot_go_is_refused_in_chinese_and_kept(
    bot: Any, county: Any, chat: Any, browsers: Any, fields: dict[str, str], refusal: str
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    draft = {"csrf": token, **TRAINING, **fields}
    _, _, html = await browser.post("/desk/notices/preview", draft)
    assert refusal in html and "<h1>写通知</h1>" in html
    # Straight to send, past the preview (a crafted form): the service refuses too.
    status, _, html = await browser.post(
        "/desk/notices/send", {**draft, "drafted": "2026-11-10T02:00:00+00:00"}
    )
    assert status == 200 and "flash refused" in html, html
    assert await notices_count(bot) == 0
    await bot.flush_outbox()
    assert bot.api.mass_jobs() == []


async def test_an_audience_nobody_in_which_is_bound_cannot_be_sent(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    draft = {"csrf": token, "text": TEXT, "kind": "role", "role": "secretary"}
    _, _, html = await browser.post("/desk/notices/preview", draft)
    assert figure(html, "已绑定微信") == 0 and "发了没人收到" in html
    assert 'action="/desk/notices/send"' not in html
    _, _, html = await browser.post(
        "/desk/notices/send", {**draft, "drafted": "2026-11-10T02:00:00+00:00"}
    )
    assert "没有找到要发的人" in html
    assert await notices_count(bot) == 0


async def test_a_forged_or_missing_form_token_sends_nothing(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    _, _, html = await browser.post("/desk/notices/preview", {"csrf": token, **TRAINING})
    form = hidden(html, "/desk/notices/send")
    for forged in ({**form, "csrf": "forged"}, {k: v for k, v in form.items() if k != "csrf"}):
        status, _, page = await browser.post("/desk/notices/send", forged)
        assert status == 403 and "表单已失效" in page
    status, _, page = await browser.post("/desk/notices/preview", {**TRAINING, "csrf": "x"})
    assert status == 403
    status, _, _ = await browser.post("/desk/notices/send", {**form, "drafted": "yesterday"})
    assert status == 400
    assert await notices_count(bot) == 0


async def test_officers_secretaries_and_the_supervision_group_do_not_send(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )
    for openid, name, person_number, page_status, refusal in (
        ("o-zhao", "赵明", county.officer_number, 403, "「发通知」不归您办"),
        ("o-zhang", "张建国", county.secretary_number, 403, "「发通知」不归您办"),
        ("o-qian", "钱监督", number, 403, "只能查看"),
    ):
        browser, _ = await signed_in(bot, chat, browsers, openid, name, person_number)
        _, _, listing = await browser.get("/desk/notices")
        assert "还没有发过通知" in listing and "/desk/notices/new" not in listing
        status, _, html = await browser.get("/desk/notices/new")
        assert status == page_status and ("不能发通知" in html or "只能查看" in html)
        form = {"csrf": csrf_of(html), **TRAINING, "drafted": "2026-11-10T02:00:00+00:00"}
        status, _, html = await browser.post("/desk/notices/preview", form)
        assert status == 403
        status, _, html = await browser.post("/desk/notices/send", form)
        assert status == 403 and refusal in html, (name, html)
    assert await notices_count(bot) == 0


@pytest.mark.parametrize(
    "path",
    ["/desk/notices", "/desk/notices/new", "/desk/notices/1", "/desk/notices/1/signups.xlsx"],
)
async def test_nobody_is_sent_to_the_login_page(bot: Any, browsers: Any, path: str) -> None:
    status, where, html = await browsers().get(path)
    assert (status, where) == (200, "/desk/login") and "登录帮扶工作台" in html


@pytest.mark.parametrize("path", ["/desk/notices/preview", "/desk/notices/send"])
async def test_nobody_may_post(bot: Any, county: Any, browsers: Any, path: str) -> None:
    status, _, html = await browsers().post(
        path, {**TRAINING, "csrf": "x", "drafted": "2026-11-10T02:00:00+00:00"}
    )
    assert status == 403 and "请先登录" in html
    assert await notices_count(bot) == 0


async def test_each_role_reads_the_signups_within_sight(
    bot: Any, county: Any, chat: Any, browsers: Any
) -> None:
    browser, token = await department(bot, county, chat, browsers)
    _, _, html = await browser.post(
        "/desk/notices/preview", {"csrf": token, **TRAINING, "kind": "everyone"}
    )
    _, path, _ = await browser.post("/desk/notices/send", hidden(html, "/desk/notices/send"))
    await bot.flush_outbox()
    assert "已为您报名" in await chat("o-wang").send("报名")  # 桃源村
    assert "已为您报名" in await chat("o-li").send("报名")  # 李家村
    async with bot.services.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(signups)) == 2
    _, number = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name="钱监督",
        branch=None,
        roles=("supervisor",),
        serial=901,
    )

    secretary, _ = await signed_in(
        bot, chat, browsers, "o-zhang", "张建国", county.secretary_number
    )
    _, _, html = await secretary.get(path)
    assert "报名（1 人）" in html and "王德福" in html and "李大山" not in html
    officer, _ = await signed_in(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await officer.get(path)
    assert "报名（2 人）" in html
    watcher, _ = await signed_in(bot, chat, browsers, "o-qian", "钱监督", number)
    _, _, html = await watcher.get(path)
    assert "报名（2 人）" in html and "138****8000" in html and "13800138000" not in html
    async with watcher.session.get(bot.url(path + "/signups.xlsx")) as response:
        workbook = load_workbook(io.BytesIO(await response.read()))
    cells = [row[4] for row in workbook.active.iter_rows(min_row=3, values_only=True)]
    assert cells == ["138****8000", "138****8000"]
    async with secretary.session.get(bot.url(path + "/signups.xlsx")) as response:
        workbook = load_workbook(io.BytesIO(await response.read()))
    names = [row[1] for row in workbook.active.iter_rows(min_row=3, values_only=True)]
    assert names == ["王德福"]
    status, _, html = await watcher.get("/desk/notices/999")
    assert status == 404 and "没有这条通知" in html
