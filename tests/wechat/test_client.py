"""The outbound WeChat client, exercised over HTTP against the fake WeChat API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from bangfu_bot.clock import FrozenClock
from bangfu_bot.wechat.client import (
    ErrorKind,
    MemoryTokenStore,
    StoredToken,
    WeChatAPIError,
    WeChatClient,
    classify,
)
from bangfu_bot.wechat.fake_api import Call, FakeWeChatAPI

APPID = "wx0123456789abcdef"
SECRET = "s3cret"
TEMPLATE = "TPL_CASE_PROGRESS"
TEMPLATE_KEYS = {
    "thing1": "thing",
    "time2": "time",
    "phrase3": "phrase",
    "character_string4": "character_string",
}

StartFake = Callable[..., Awaitable[FakeWeChatAPI]]


@pytest.fixture
def clock() -> FrozenClock:
    # 10:00 on 30 November in Beijing time: the month ends 14 hours later.
    return FrozenClock(datetime(2026, 11, 30, 2, 0, tzinfo=UTC))


@pytest.fixture
async def start_fake(clock: FrozenClock) -> AsyncIterator[StartFake]:
    started: list[FakeWeChatAPI] = []

    async def start(account_type: str = "service") -> FakeWeChatAPI:
        api = FakeWeChatAPI(appid=APPID, secret=SECRET, clock=clock, account_type=account_type)
        api.add_template(TEMPLATE, TEMPLATE_KEYS)
        await api.start()
        started.append(api)
        return api

    yield start
    for api in started:
        await api.stop()


@pytest.fixture
async def fake(start_fake: StartFake) -> FakeWeChatAPI:
    return await start_fake()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def reported() -> list[tuple[str, int]]:
    """What the client fed to on_call (the Prometheus hook)."""
    return []


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession,
    store: MemoryTokenStore,
    clock: FrozenClock,
    reported: list[tuple[str, int]],
) -> Callable[..., WeChatClient]:
    def make(api_base: str, **overrides: object) -> WeChatClient:
        options: dict[str, object] = {
            "appid": APPID,
            "secret": SECRET,
            "api_base": api_base,
            "token_store": store,
            "session": session,
            "clock": clock,
            "on_call": lambda endpoint, errcode: reported.append((endpoint, errcode)),
        }
        options.update(overrides)
        return WeChatClient(**options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def client(fake: FakeWeChatAPI, make_client: Callable[..., WeChatClient]) -> WeChatClient:
    assert fake.base_url is not None
    return make_client(fake.base_url)


def calls_to(fake: FakeWeChatAPI, endpoint: str) -> list[Call]:
    return [call for call in fake.calls if call.endpoint == endpoint]


def forced_refreshes(fake: FakeWeChatAPI) -> list[Call]:
    return [c for c in calls_to(fake, "stable_token") if c.payload["force_refresh"] is True]


def chatting(fake: FakeWeChatAPI, *openids: str) -> None:
    """Users who follow the account and just wrote to it (48 h window open)."""
    for openid in openids:
        fake.follow(openid)
        fake.user_wrote(openid)


# -- access token -------------------------------------------------------------------------


async def test_token_is_fetched_once_and_reused(fake, client, reported):
    chatting(fake, "u1")

    for n in range(3):
        await client.send_text(openid="u1", content=f"第{n}条")

    fetches = calls_to(fake, "stable_token")
    assert len(fetches) == 1
    assert fetches[0].payload["force_refresh"] is False
    assert reported == [("stable_token", 0)] + [("message/custom/send", 0)] * 3


async def test_a_known_token_costs_no_store_read(fake, make_client, store):
    class CountingStore:
        loads = 0

        async def load(self, appid):
            CountingStore.loads += 1
            return await store.load(appid)

        async def save(self, appid, token):
            await store.save(appid, token)

    chatting(fake, "u1")
    client = make_client(fake.base_url, token_store=CountingStore())
    for n in range(5):
        await client.send_text(openid="u1", content=f"第{n}条")
    assert CountingStore.loads <= 2  # before the first refresh, not once per call
    assert len(fake.sent_texts("u1")) == 5


async def test_concurrent_first_calls_share_one_refresh(fake, client):
    chatting(fake, "u1")

    await asyncio.gather(*(client.send_text(openid="u1", content="好") for _ in range(5)))

    assert len(calls_to(fake, "stable_token")) == 1
    assert len(fake.sent_texts("u1")) == 5


async def test_processes_sharing_a_store_share_the_token(fake, client, make_client):
    other_process = make_client(fake.base_url)

    first = await client.access_token()
    second = await other_process.access_token()

    assert first == second
    assert len(calls_to(fake, "stable_token")) == 1


async def test_token_refreshed_only_within_a_minute_of_expiry(fake, client, clock, store):
    first = await client.access_token()

    clock.advance(seconds=7200 - 120)
    assert await client.access_token() == first

    clock.advance(seconds=70)  # 50 s left: too close to use
    second = await client.access_token()

    assert second != first
    stored = await store.load(APPID)
    assert stored == StoredToken(second, clock.now() + timedelta(seconds=7200))
    assert [c.payload["force_refresh"] for c in calls_to(fake, "stable_token")] == [False, False]


async def test_wrong_secret_is_fatal_and_nothing_is_stored(fake, make_client, store):
    client = make_client(fake.base_url, secret="wrong")

    with pytest.raises(WeChatAPIError) as caught:
        await client.access_token()

    assert (caught.value.errcode, caught.value.kind) == (40125, ErrorKind.FATAL)
    assert caught.value.endpoint == "stable_token"
    assert await store.load(APPID) is None


async def test_invalid_token_forces_one_refresh_and_one_retry(fake, client):
    chatting(fake, "u1")
    await client.access_token()
    fake.fail_next("message/custom/send", 40001)

    await client.send_text(openid="u1", content="您好")

    assert [c.errcode for c in calls_to(fake, "message/custom/send")] == [40001, 0]
    assert len(forced_refreshes(fake)) == 1
    assert fake.sent_texts("u1") == ["您好"]


async def test_second_token_error_is_raised_not_looped(fake, client):
    chatting(fake, "u1")
    fake.fail_next("message/custom/send", 40001, times=5)

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="您好")

    assert caught.value.errcode == 40001
    assert len(calls_to(fake, "message/custom/send")) == 2
    assert len(forced_refreshes(fake)) == 1
    assert fake.sent_texts() == []


async def test_token_expired_on_the_platform_is_replaced(fake, client):
    chatting(fake, "u1")
    await client.access_token()
    fake.expire_tokens()

    await client.send_text(openid="u1", content="您好")

    assert [c.errcode for c in calls_to(fake, "message/custom/send")] == [42001, 0]
    assert len(forced_refreshes(fake)) == 1


async def test_no_second_refresh_when_another_process_already_refreshed(
    fake, client, session, store, clock
):
    chatting(fake, "u1")
    await client.access_token()
    # Hold our call on the platform while another process force-refreshes the token,
    # which invalidates the one our call carries.
    held = fake.hold_next("message/custom/send")
    sending = asyncio.create_task(client.send_text(openid="u1", content="您好"))
    await asyncio.wait_for(held.arrived.wait(), 10)

    body = {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": True,
    }
    async with session.post(f"{fake.base_url}/cgi-bin/stable_token", json=body) as resp:
        answer = await resp.json()
    expires_at = clock.now() + timedelta(seconds=answer["expires_in"])
    await store.save(APPID, StoredToken(answer["access_token"], expires_at))
    held.release()
    await sending

    assert [c.errcode for c in calls_to(fake, "message/custom/send")] == [40001, 0]
    assert len(forced_refreshes(fake)) == 1  # the other process's, not ours
    assert fake.sent_texts("u1") == ["您好"]


# -- error classification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (43004, ErrorKind.UNDELIVERABLE),
        (43101, ErrorKind.UNDELIVERABLE),
        (45015, ErrorKind.UNDELIVERABLE),
        (45047, ErrorKind.UNDELIVERABLE),
        (-1, ErrorKind.RETRY),
        (-2, ErrorKind.RETRY),
        (45009, ErrorKind.RETRY),
        (40013, ErrorKind.FATAL),
        (48001, ErrorKind.FATAL),
        (47003, ErrorKind.FATAL),
        (45065, ErrorKind.FATAL),
    ],
)
def test_classify(errcode, kind):
    assert classify(errcode) is kind


async def test_unfollowed_and_blocked_users_are_undeliverable(fake, client):
    chatting(fake, "gone", "refuser")
    fake.unfollow("gone")
    fake.block("refuser")

    errors = []
    for openid in ("gone", "refuser"):
        with pytest.raises(WeChatAPIError) as caught:
            await client.send_text(openid=openid, content="您好")
        errors.append((caught.value.errcode, caught.value.kind))

    assert errors == [(43004, ErrorKind.UNDELIVERABLE), (43101, ErrorKind.UNDELIVERABLE)]


@pytest.mark.parametrize("errcode", [45009, -1])
async def test_busy_platform_is_retryable_and_keeps_the_token(fake, client, errcode):
    chatting(fake, "u1")
    fake.fail_next("message/custom/send", errcode)

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="您好")
    assert caught.value.kind is ErrorKind.RETRY
    assert forced_refreshes(fake) == []

    await client.send_text(openid="u1", content="您好")
    assert fake.sent_texts("u1") == ["您好"]


async def test_timeout_is_a_retryable_network_error(fake, make_client, reported):
    chatting(fake, "u1")
    client = make_client(fake.base_url, timeout_s=0.2)
    await client.access_token()
    fake.hold_next("message/custom/send")  # answered only when the fake stops

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="您好")

    assert (caught.value.errcode, caught.value.kind) == (-2, ErrorKind.RETRY)
    assert reported[-1] == ("message/custom/send", -2)


@pytest.mark.parametrize(
    ("status", "body"),
    [(502, "<html>Bad Gateway</html>"), (200, "<html>not json</html>")],
    ids=["http-502", "garbage-body"],
)
async def test_no_usable_answer_is_a_retryable_network_error(
    aiohttp_server, make_client, store, clock, status, body
):
    async def broken_gateway(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_route("*", "/cgi-bin/{tail:.*}", broken_gateway)
    server = await aiohttp_server(app)
    await store.save(APPID, StoredToken("valid", clock.now() + timedelta(hours=1)))
    client = make_client(str(server.make_url("")))

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="您好")

    assert (caught.value.errcode, caught.value.kind) == (-2, ErrorKind.RETRY)


# -- customer-service messages ------------------------------------------------------------


async def test_chinese_reaches_the_user_unescaped(fake, client, session):
    chatting(fake, "u1")
    text = "您好，您的帮扶申请已受理。"

    await client.send_text(openid="u1", content=text)

    assert fake.sent_texts("u1") == [text]
    # What an ASCII-escaping client would have shown the user instead:
    escaped = json.dumps({"touser": "u1", "msgtype": "text", "text": {"content": "你好"}})
    url = f"{fake.base_url}/cgi-bin/message/custom/send"
    params = {"access_token": await client.access_token()}
    async with session.post(url, params=params, data=escaped.encode()) as resp:
        assert (await resp.json())["errcode"] == 0
    assert fake.sent_texts("u1")[-1] == "\\u4f60\\u597d"


async def test_outside_the_48_hour_window_is_undeliverable(fake, client, clock):
    chatting(fake, "u1")
    clock.advance(hours=48, seconds=1)

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="您好")

    assert (caught.value.errcode, caught.value.kind) == (45015, ErrorKind.UNDELIVERABLE)
    assert fake.sent_texts() == []


async def test_sixth_message_in_the_window_is_refused_until_the_user_writes(fake, client):
    chatting(fake, "u1")
    for n in range(5):
        await client.send_text(openid="u1", content=f"第{n + 1}条")

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(openid="u1", content="第6条")
    assert (caught.value.errcode, caught.value.kind) == (45047, ErrorKind.UNDELIVERABLE)

    fake.user_wrote("u1")
    await client.send_text(openid="u1", content="第6条")
    assert len(fake.sent_texts("u1")) == 6


async def test_menu_click_opens_a_one_minute_window_of_three(fake, client, clock):
    fake.follow("u1")
    fake.user_clicked("u1")
    for _ in range(3):
        await client.send_text(openid="u1", content="好")
    with pytest.raises(WeChatAPIError) as quota:
        await client.send_text(openid="u1", content="好")

    fake.user_clicked("u1")
    clock.advance(seconds=61)
    with pytest.raises(WeChatAPIError) as expired:
        await client.send_text(openid="u1", content="好")

    assert (quota.value.errcode, expired.value.errcode) == (45047, 45015)


# -- template messages --------------------------------------------------------------------


async def test_template_sent_with_values_and_deduplicated_by_client_msg_id(fake, client):
    fake.follow("u1")
    data = {"thing1": "困难帮扶申请", "time2": "2026-11-30 10:00", "phrase3": "已受理"}

    first = await client.send_template(
        openid="u1", template_id=TEMPLATE, data=data, client_msg_id="case-7-accepted"
    )
    again = await client.send_template(
        openid="u1", template_id=TEMPLATE, data=data, client_msg_id="case-7-accepted"
    )

    assert first["msgid"] == again["msgid"]
    [sent] = fake.sent_templates("u1")
    assert sent["data"] == data
    payload = calls_to(fake, "message/template/send")[0].payload
    assert payload["data"]["thing1"] == {"value": "困难帮扶申请"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"thing1": "一" * 21}, "thing1"),
        ({"phrase3": "正在审核中的"}, "phrase3"),
        ({"thing1": "第一行\n第二行"}, "thing1"),
        ({"first": "您好", "thing1": "申请"}, "first"),
        ({"keyword9": "申请"}, "keyword9"),
    ],
    ids=["thing-over-20", "phrase-over-5", "line-break", "retired-first", "unknown-key"],
)
async def test_template_field_rules_give_47003_naming_the_field(fake, client, data, field):
    fake.follow("u1")

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_template(openid="u1", template_id=TEMPLATE, data=data)

    assert (caught.value.errcode, caught.value.kind) == (47003, ErrorKind.FATAL)
    assert field in caught.value.errmsg
    assert fake.sent_templates() == []


TYPED = "TPL_TYPED"
TYPED_KEYS = {
    "phrase1": "phrase",
    "amount2": "amount",
    "date3": "date",
    "time4": "time",
    "character_string5": "character_string",
    "name6": "name",
    "number7": "number",
}
TYPED_OK = {
    "phrase1": "即将到期",
    "amount2": "2174.50元",
    "date3": "2026年12月17日",
    "time4": "2026年12月10日 10:00",
    "character_string5": "LOAN-7/1",
    "name6": "王琼翠",
    "number7": "3",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phrase1", "到期了a"),  # a phrase is 汉字 only
        ("amount2", "2,174元"),  # no thousands separator
        ("amount2", "两千元"),
        ("date3", "下周三"),
        ("time4", "2026年12月10日"),  # a time needs the hour
        ("character_string5", "借款7"),  # ASCII only
        ("character_string5", "A" * 33),
        ("name6", "王琼翠的老伴李长贵先生"),  # over 10 汉字
        ("number7", "三"),
        ("number7", ""),
    ],
)
async def test_each_field_type_is_held_to_its_rule(fake, client, field, value):
    fake.follow("u1")
    fake.add_template(TYPED, TYPED_KEYS)
    await client.send_template(openid="u1", template_id=TYPED, data=TYPED_OK)

    with pytest.raises(WeChatAPIError) as caught:
        await client.send_template(openid="u1", template_id=TYPED, data={**TYPED_OK, field: value})

    assert caught.value.errcode == 47003 and field in caught.value.errmsg
    assert len(fake.sent_templates()) == 1


async def test_subscription_account_cannot_use_service_only_apis(start_fake, make_client):
    fake = await start_fake(account_type="subscription")
    fake.follow("u1")
    fake.follow("u2")
    client = make_client(fake.base_url)

    errors = []
    for attempt in (
        client.send_template(openid="u1", template_id=TEMPLATE, data={"thing1": "申请"}),
        client.mass_send_to_openids(openids=["u1", "u2"], content="通知", clientmsgid="m1"),
        client.create_qrcode(scene_str="case-7", permanent=True),
    ):
        with pytest.raises(WeChatAPIError) as caught:
            await attempt
        errors.append((caught.value.errcode, caught.value.kind))

    assert errors == [(48001, ErrorKind.FATAL)] * 3


# -- mass send ----------------------------------------------------------------------------


async def test_fifth_mass_message_in_a_month_is_filtered(fake, client, clock):
    fake.follow("u1")
    fake.follow("u2")
    for n in range(4):
        await client.mass_send_to_all(content=f"通知{n}", clientmsgid=f"nov-{n}")

    fifth = await client.mass_send_to_all(content="通知4", clientmsgid="nov-4")
    clock.advance(hours=14)  # midnight in Beijing: December
    sixth = await client.mass_send_to_all(content="十二月通知", clientmsgid="dec-0")

    assert fake.mass_job(fifth["msg_id"]) | {"MsgID": 0} == {
        "MsgID": 0,
        "Status": "send fail",
        "TotalCount": 2,
        "FilterCount": 0,
        "SentCount": 0,
        "ErrorCount": 0,
    }
    assert fake.mass_job(sixth["msg_id"])["SentCount"] == 2


async def test_duplicate_clientmsgid_is_refused(fake, client):
    fake.follow("u1")
    first = await client.mass_send_to_all(content="通知", clientmsgid="notice-1")

    with pytest.raises(WeChatAPIError) as caught:
        await client.mass_send_to_all(content="通知", clientmsgid="notice-1")

    assert (caught.value.errcode, caught.value.kind) == (45065, ErrorKind.FATAL)
    assert [job.msg_id for job in fake.mass_jobs()] == [first["msg_id"]]


async def test_mass_send_by_tag_reaches_only_tagged_followers(fake, client):
    for openid in ("u1", "u2", "u3"):
        fake.follow(openid)
    tag_id = await client.create_tag(name="困难党员")
    await client.tag_users(tag_id=tag_id, openids=["u1", "u3"])

    answer = await client.mass_send_by_tag(tag_id=tag_id, content="慰问通知", clientmsgid="t-1")

    [job] = fake.mass_jobs()
    assert (job.msg_id, job.delivered, job.content) == (answer["msg_id"], ["u1", "u3"], "慰问通知")
    audience = calls_to(fake, "message/mass/sendall")[0].payload["filter"]
    assert audience == {"is_to_all": False, "tag_id": tag_id}  # no obsolete group_id


async def test_mass_send_to_openids_needs_at_least_two(fake, client):
    fake.follow("u1")

    with pytest.raises(WeChatAPIError) as caught:
        await client.mass_send_to_openids(openids=["u1"], content="通知", clientmsgid="o-1")

    assert caught.value.errcode == 40130


# -- tags, menu, QR codes, users ----------------------------------------------------------


async def test_tagging_120_users_takes_three_calls_of_at_most_50(fake, client):
    openids = [f"user{n:03d}" for n in range(120)]
    for openid in openids:
        fake.follow(openid)
    tag_id = await client.create_tag(name="帮扶对象")

    await client.tag_users(tag_id=tag_id, openids=openids)

    sizes = [len(c.payload["openid_list"]) for c in calls_to(fake, "tags/members/batchtagging")]
    assert sizes == [50, 50, 20]
    assert await client.get_tags() == [{"id": tag_id, "name": "帮扶对象", "count": 120}]


async def test_a_tags_followers_are_read_page_by_page(fake, client):
    openids = [f"user{n:05d}" for n in range(10_050)]
    for openid in openids:
        fake.follow(openid)
    tag_id = fake.add_tag("帮扶·全体", openids)
    fake.unfollow(openids[0])  # carries the tag, but only followers are listed

    members = await client.tag_members(tag_id=tag_id)

    assert members == openids[1:]
    pages = [c.payload["next_openid"] for c in calls_to(fake, "user/tag/get")]
    assert pages == ["", openids[10_000], openids[-1]]  # two pages, then an empty one


async def test_untagging_and_deleting_a_tag(fake, client):
    for openid in ("u1", "u2"):
        fake.follow(openid)
    tag_id = await client.create_tag(name="帮扶·桃源村党支部")
    await client.tag_batch(tag_id=tag_id, openids=["u1", "u2"])
    await client.tag_batch(tag_id=tag_id, openids=["u1"], untag=True)
    assert fake.tagged("帮扶·桃源村党支部") == {"u2"}

    await client.delete_tag(tag_id=tag_id)

    assert await client.get_tags() == []
    with pytest.raises(WeChatAPIError) as caught:
        await client.delete_tag(tag_id=2)  # 星标组, the platform's own
    assert caught.value.errcode == 45058


async def test_tagging_refuses_a_whole_batch_for_one_bad_user(fake, client):
    for openid in ("u1", "u2", "u3"):
        fake.follow(openid)
    fake.unfollow("u2")
    tag_id = await client.create_tag(name="帮扶·全体")
    for n in range(20):
        fake.add_tag(f"手工{n}", ["u3"])

    for batch, errcode in (
        (["u1", "u2"], 40003),
        (["u1", "u3"], 45059),
        ([f"x{n}" for n in range(51)], 40032),
    ):
        with pytest.raises(WeChatAPIError) as caught:
            await client.tag_batch(tag_id=tag_id, openids=batch)
        assert caught.value.errcode == errcode
    assert fake.tagged("帮扶·全体") == set()  # all or nothing
    with pytest.raises(WeChatAPIError) as caught:
        await client.create_tag(name="帮扶·" + "很长的名字" * 2)  # 38 bytes
    assert caught.value.errcode == 45158


async def test_menu_is_stored_and_oversized_menus_are_refused(fake, client):
    menu = {
        "button": [
            {"type": "click", "name": "申请帮扶", "key": "APPLY"},
            {
                "name": "我的",
                "sub_button": [{"type": "click", "name": "办理进度", "key": "PROGRESS"}],
            },
        ]
    }
    await client.create_menu(menu=menu)
    assert fake.menu == menu

    too_wide = {"button": [{"type": "click", "name": f"按钮{n}", "key": f"K{n}"} for n in range(4)]}
    with pytest.raises(WeChatAPIError) as caught:
        await client.create_menu(menu=too_wide)
    assert (caught.value.errcode, caught.value.kind) == (40016, ErrorKind.FATAL)
    assert fake.menu == menu


async def test_qrcodes_carry_their_scene(fake, client):
    permanent = await client.create_qrcode(scene_str="case-7", permanent=True)
    temporary = await client.create_qrcode(scene_str="invite-3", permanent=False)

    assert fake.qr_scene(permanent["ticket"]) == "case-7"
    assert fake.qr_scene(temporary["ticket"]) == "invite-3"
    assert temporary["expire_seconds"] == 2592000
    assert permanent["url"].startswith("http://weixin.qq.com/q/")


async def test_user_info_follows_the_subscription(fake, client):
    fake.follow("u1", nickname="老张")

    following = await client.user_info(openid="u1")
    fake.unfollow("u1")
    gone = await client.user_info(openid="u1")

    assert (following["subscribe"], following["nickname"]) == (1, "老张")
    assert gone == {"subscribe": 0, "openid": "u1"}
    assert calls_to(fake, "user/info")[0].payload == {"openid": "u1", "lang": "zh_CN"}


async def test_fake_plain_token_endpoint_keeps_the_previous_token_five_minutes(
    fake, session, clock
):
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}

    async def fetch_token() -> str:
        async with session.get(f"{fake.base_url}/cgi-bin/token", params=params) as resp:
            return (await resp.json())["access_token"]

    async def tags_errcode(token: str) -> int:
        url = f"{fake.base_url}/cgi-bin/tags/get"
        async with session.get(url, params={"access_token": token}) as resp:
            return (await resp.json()).get("errcode", 0)

    old = await fetch_token()
    new = await fetch_token()
    assert (await tags_errcode(old), await tags_errcode(new)) == (0, 0)

    clock.advance(minutes=5)
    assert (await tags_errcode(old), await tags_errcode(new)) == (42001, 0)
    assert await tags_errcode("") == 41001


class LaggingStore(MemoryTokenStore):
    """A shared token store whose next read, once `lag_next()` is called, returns what was
    stored when it began (a database read's snapshot) only when the test `ends` it, like a
    busy database under a process's calls."""

    def __init__(self) -> None:
        super().__init__()
        self.lagging = False
        self.began = asyncio.Event()
        self.ends = asyncio.Event()

    def lag_next(self) -> None:
        self.lagging = True

    async def load(self, appid: str) -> StoredToken | None:
        seen = await super().load(appid)
        if self.lagging:
            self.lagging = False
            self.began.set()
            await self.ends.wait()
        return seen


async def test_a_read_begun_before_a_refresh_does_not_bring_the_old_token_back(fake, make_client):
    chatting(fake, "u1")
    store = LaggingStore()
    await make_client(fake.base_url, token_store=store).access_token()  # a process now gone
    fake.expire_tokens()  # the platform has let that token go; the store still holds it
    client = make_client(fake.base_url, token_store=store)  # the restarted process

    # One call begins its read of the store before the refresh is saved, and ends it after;
    # meanwhile another call meets the expired token and refreshes it; a third starts after.
    store.lag_next()
    lagging = asyncio.create_task(client.send_text(openid="u1", content="您好"))
    await asyncio.wait_for(store.began.wait(), 10)
    await client.send_text(openid="u1", content="您好")
    store.ends.set()
    await lagging
    await client.send_text(openid="u1", content="您好")

    sends = [c.errcode for c in calls_to(fake, "message/custom/send")]
    assert [code for code in sends if code] == [42001]  # only the first met the old token
    assert sends.count(0) == 3
    assert len(forced_refreshes(fake)) == 1
