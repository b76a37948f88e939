"""The sandbox page's endpoints, as its script uses them: through the real webhook."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bangfu_bot.cases.models import cases
from bangfu_bot.members.models import bindings
from bangfu_bot.wechat.models import inbound_messages
from tests.sandbox.conftest import Page

APPLY = [
    ("3", "农村还是城镇"),  # 生病
    ("农村", "领低保吗"),
    ("不是", "叫什么名字"),
    ("李秀英", "什么人"),
    ("1", "多大"),
    ("68", "身体怎样"),
    ("有高血压，在家", "还有其他"),
    ("没有", "种地、养殖"),
    ("500", "打工"),
    ("0", "补贴"),
    ("0", "养老金"),
    ("0", "别的收入"),
    ("0", "生产生活情况"),
    ("老伴生病住院，欠了债", "最需要哪种帮扶"),
    ("1", "拍照发过来"),
    ("跳过", "都对吗"),
    ("1", "申请已经交上去了"),
]


def texts(entries: list[dict[str, Any]], side: str | None = None) -> list[str]:
    return [e["text"] for e in entries if side in (None, e["side"])]


async def test_an_empty_roster_offers_the_demo_county(page: Page) -> None:
    state = await page.ok("/sandbox/api/state")
    assert state["title"] == "沙盒·演练"
    assert state["roster"] == 0 and not state["demo"]
    assert state["fake"] and state["safe_mode"] and state["clock_movable"]
    assert [b["name"] for b in state["menu"]] == ["申请帮扶", "查进度", "更多"]
    assert all(not people for people in (await page.personas()).values())
    first = await page.ok("/sandbox/api/demo", {})
    again = await page.ok("/sandbox/api/demo", {})
    assert "示范县建好了" in first["lines"][0] and "已经有了" in again["lines"][0]
    assert again["state"]["roster"] == 300 and again["state"]["demo"]


async def test_personas_by_role_and_by_name(demo_page: Page) -> None:
    groups = await demo_page.personas()
    assert list(groups) == ["党员", "支部书记", "党委委员", "组织部", "监督小组"]
    assert all(1 <= len(people) <= 10 for people in groups.values())
    assert len(groups["组织部"]) == 3 and len(groups["监督小组"]) == 1
    for label, people in groups.items():
        for person in people:
            assert person["openid"] == f"sandbox-{person['id']}"
            assert person["role_label"] == label and not person["bound"]
    # Members part-way through the procedure are on offer too, to see 进度 at each stage.
    assert {p["case"] for p in groups["党员"]} >= {None, "等支部评议", "正在公示"}
    secretary = groups["支部书记"][0]
    found = await demo_page.personas(q=secretary["name"][:2])
    assert secretary["id"] in [p["id"] for p in found["支部书记"]]
    assert all(secretary["name"][:2] in p["name"] for ps in found.values() for p in ps)
    assert not any((await demo_page.personas(q="没有这个人")).values())


async def test_help_as_a_persona_through_the_signed_webhook(demo_page: Page) -> None:
    member = (await demo_page.personas())["党员"][0]
    entries = await demo_page.say(member, "帮助")
    # Never chatted: the persona follows first, so the welcome shows as on a phone.
    assert [(e["side"], e["kind"]) for e in entries] == [
        ("me", "follow"),
        ("bot", "reply"),
        ("me", "text"),
        ("bot", "reply"),
    ]
    assert "欢迎关注" in entries[1]["text"]
    assert entries[2]["text"] == "帮助"
    assert "绑定" in entries[3]["text"]
    again = await demo_page.say(member, "帮助", mode="plain", after=entries[-1]["seq"])
    assert [e["kind"] for e in again] == ["text", "reply"]  # no second follow
    async with demo_page.services.engine.connect() as conn:
        pushes = (
            await conn.execute(
                select(inbound_messages.c.msg_type, inbound_messages.c.event)
                .where(inbound_messages.c.openid == member["openid"])
                .order_by(inbound_messages.c.id)
            )
        ).all()
    assert [tuple(p) for p in pushes] == [("event", "subscribe"), ("text", None), ("text", None)]


async def test_menu_photo_and_voice(demo_page: Page) -> None:
    member = (await demo_page.personas())["党员"][0]
    send = "/sandbox/api/send"
    clicked = await demo_page.ok(
        send, {"openid": member["openid"], "kind": "click", "key": "PROGRESS"}
    )
    assert texts(clicked["entries"])[-2:] == [
        "（点了菜单「查进度」）",
        texts(clicked["entries"])[-1],
    ]
    assert "绑定" in texts(clicked["entries"])[-1]
    photo = await demo_page.ok(
        send, {"openid": member["openid"], "kind": "photo", "after": clicked["next"]}
    )
    assert texts(photo["entries"], "me") == ["（发了一张照片）"]
    voice = await demo_page.ok(
        send,
        {"openid": member["openid"], "kind": "voice", "text": "帮助。", "after": photo["next"]},
    )
    assert texts(voice["entries"], "me") == ["（语音）帮助。"]
    status, _ = await demo_page.post(
        send, {"openid": member["openid"], "kind": "click", "key": "NOT_A_BUTTON"}
    )
    assert status == 400
    status, _ = await demo_page.post(send, {"openid": "o-real-user", "text": "帮助"})
    assert status == 400  # only sandbox personas can be played
    status, data = await demo_page.post(send, {"openid": "sandbox-999999", "text": "帮助"})
    assert status == 404 and "没有这个人" in data["error"]


async def test_bind_apply_and_the_secretary_hears_of_it(demo_page: Page) -> None:
    groups = await demo_page.personas()
    secretary = groups["支部书记"][0]
    member = next(
        p for p in groups["党员"] if p["where"] == secretary["where"] and p["case"] is None
    )
    for persona in (secretary, member):
        bound = await demo_page.ok("/sandbox/api/bind", {"openid": persona["openid"]})
        assert bound["persona"]["bound"]
        assert f"绑定好了！{persona['name']}" in texts(bound["entries"])[-1]
        said = texts(bound["entries"], "me")
        assert said[1:3] == ["绑定", persona["name"]] and said[-1] == "1"
    again = await demo_page.ok("/sandbox/api/bind", {"openid": member["openid"]})
    assert "已经绑定好了" in texts(again["entries"])[-1]
    async with demo_page.services.engine.connect() as conn:
        rows = (await conn.execute(select(bindings.c.openid, bindings.c.channel))).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [(secretary["openid"], "chat"), (member["openid"], "chat")]
    )

    started = await demo_page.ok(
        "/sandbox/api/send", {"openid": member["openid"], "kind": "click", "key": "APPLY"}
    )
    assert "困难主要是哪一种" in texts(started["entries"])[-1]
    for said, expected in APPLY:
        reply = texts(await demo_page.say(member, said), "bot")[-1]
        assert expected in reply, (said, reply)
    pushed = await demo_page.wait_for(
        secretary, lambda e: e["kind"] == "cs" and f"新的帮扶申请：{member['name']}" in e["text"]
    )
    assert pushed["side"] == "push" and pushed["label"] == "客服消息"
    todo = await demo_page.say(secretary, "待办")
    assert member["name"] in texts(todo, "bot")[-1]
    async with demo_page.services.engine.connect() as conn:
        statuses = (
            (await conn.execute(select(cases.c.status).where(cases.c.person_id == member["id"])))
            .scalars()
            .all()
        )
    assert statuses == ["submitted"]


async def test_moving_the_clock_ends_a_notice_and_shows_what_could_not_be_sent(
    demo_page: Page,
) -> None:
    groups = await demo_page.personas()
    on_notice = next(p for p in groups["党员"] if p["case"] == "正在公示")
    secretary = next(p for p in groups["支部书记"] if p["where"] == on_notice["where"])
    await demo_page.ok("/sandbox/api/bind", {"openid": secretary["openid"]})
    before = await demo_page.ok("/sandbox/api/state")
    status, data = await demo_page.post("/sandbox/api/clock", {"days": 0})
    assert status == 400 and "1 到 30 天" in data["error"]
    after = await demo_page.ok("/sandbox/api/clock", {"days": 7})
    assert after["days_ahead"] == before["days_ahead"] + 7 and after["date"] != before["date"]
    async with demo_page.services.engine.connect() as conn:
        status_now = (
            await conn.execute(select(cases.c.status).where(cases.c.person_id == on_notice["id"]))
        ).scalar_one()
    assert status_now == "notice_closed"
    chat = await demo_page.chat(secretary)
    (moved,) = [e for e in chat if e["side"] == "note" and "过了 7 天" in e["text"]]
    # A week of silence closed the 48-hour window: the to-do goes as a template message,
    # the to-do kind's template with its fields filled from the to-do.
    (templated,) = [e for e in chat if e["kind"] == "template" and "公示已结束" in e["text"]]
    assert templated["label"] == "模板消息"
    # The to-do template as the phone shows it: its title, then a labelled line per field.
    assert templated["text"].splitlines()[:2] == [
        "待办事项提醒",
        "待办事项：何学光的公示已结束，没有异议",
    ]
    assert chat.index(templated) > chat.index(moved)  # what the jobs sent shows under the line


async def test_at_night_pushes_wait_for_the_morning(demo_page: Page) -> None:
    groups = await demo_page.personas()
    secretary = groups["支部书记"][0]
    member = next(p for p in groups["党员"] if p["where"] == secretary["where"])
    # Night first: to-dos the jobs open now (December's ledger review) push to nobody yet.
    night = await demo_page.ok("/sandbox/api/clock", {"hours": 12})
    assert night["time"] == "22:00"
    for persona in (secretary, member):
        await demo_page.ok("/sandbox/api/bind", {"openid": persona["openid"]})
    assert "支部书记" in texts(await demo_page.say(member, "人工"), "bot")[-1]
    await demo_page.services.dispatcher.send_due()
    chat = await demo_page.ok("/sandbox/api/chat", openid=secretary["openid"], after="0")
    (queued,) = [w for w in chat["waiting"] if member["name"] in w["text"]]
    assert "08:00 发出" in queued["at"]
    await demo_page.ok("/sandbox/api/clock", {"hours": 12})
    arrived = await demo_page.wait_for(
        secretary, lambda e: e["kind"] == "cs" and member["name"] in e["text"]
    )
    assert arrived["at"].endswith("10:00")
    still = await demo_page.ok("/sandbox/api/chat", openid=secretary["openid"], after="0")
    assert not [w for w in still["waiting"] if member["name"] in w["text"]]


async def test_scan_without_a_login_page_open_says_so(demo_page: Page) -> None:
    official = (await demo_page.personas())["组织部"][0]
    await demo_page.ok("/sandbox/api/bind", {"openid": official["openid"]})
    status, data = await demo_page.post("/sandbox/api/scan", {"openid": official["openid"]})
    assert status == 409 and "/desk/login" in data["error"]
