"""Hostile pushes: a plain downgrade where only safe mode is accepted, a captured URL reused
for another body, XML nested a thousand deep (plain and inside AES). Each gets a clear
status, and nothing of it is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bangfu_bot.wechat.models import inbound_messages
from tests.wechat.test_webhook import OPENID, post_raw

DEEP = "<xml>" + "<a>" * 1000 + "x" + "</a>" * 1000 + "</xml>"


async def stored(bot: Any) -> int:
    async with bot.services.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(inbound_messages))).scalar_one()
        )


async def test_with_a_key_only_safe_mode_is_accepted(start_bot: Any) -> None:
    bot = await start_bot(wechat_modes="")  # unset: the default
    assert bot.services.settings.wechat_modes == frozenset({"safe"})
    for mode in ("plain", "compatible"):
        delivery = await bot.driver(mode).text(OPENID, "基金")
        assert delivery.statuses == [403], mode
    assert await stored(bot) == 0
    assert (await bot.driver("safe").text(OPENID, "你好")).statuses == [200]
    assert await stored(bot) == 1


async def test_compatible_mode_is_accepted_when_named(start_bot: Any) -> None:
    bot = await start_bot(wechat_modes="safe,compatible")
    assert (await bot.driver("compatible").text(OPENID, "你好")).statuses == [200]
    assert (await bot.driver("plain").text(OPENID, "你好")).statuses == [403]


async def test_a_captured_url_reused_for_another_body_is_refused(start_bot: Any) -> None:
    bot = await start_bot(wechat_modes="plain")
    driver = bot.driver("plain")
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "你好"}, 1), OPENID
    )
    assert (await post_raw(bot, query, body))[0] == 200
    assert (await post_raw(bot, query, body))[0] == 200  # WeChat's retry: the same body
    forged = driver.message_xml("o-department-staff", "text", {"Content": "基金"}, 2)
    for _ in range(12):
        status, text = await post_raw(bot, query, forged.encode("utf-8"))
        assert (status, text) == (403, "")
    assert await stored(bot) == 1  # the retry was a duplicate, the forgeries nothing


async def test_xml_nested_a_thousand_deep_is_a_400_in_plain_and_in_aes(start_bot: Any) -> None:
    bot = await start_bot()
    plain = bot.driver("plain")
    query, body = plain.envelope(DEEP, OPENID)
    assert (await post_raw(bot, query, body))[0] == 400
    safe = bot.driver("safe")
    query, body = safe.envelope(DEEP, OPENID)
    assert (await post_raw(bot, query, body))[0] == 400
    wide = "<xml>" + "<a>1</a>" * 2000 + "</xml>"
    query, body = plain.envelope(wide, OPENID)
    assert (await post_raw(bot, query, body))[0] == 400
    assert await stored(bot) == 0
    assert (await plain.text(OPENID, "你好")).statuses == [200]  # and it still serves


async def test_on_postgresql_another_process_refuses_the_reused_url(start_bot: Any) -> None:
    first = await start_bot(wechat_modes="plain")
    if first.services.engine.dialect.name != "postgresql":
        import pytest

        pytest.skip("one process serves an SQLite store")
    second = await start_bot(wechat_modes="plain")
    driver = first.driver("plain")
    query, body = driver.envelope(
        driver.message_xml(OPENID, "text", {"Content": "你好"}, 1), OPENID
    )
    assert (await post_raw(first, query, body))[0] == 200
    forged = driver.message_xml("o-department-staff", "text", {"Content": "基金"}, 2)
    assert (await post_raw(second, query, forged.encode("utf-8")))[0] == 403
    assert (await post_raw(second, query, body))[0] == 200  # a retry reaching the other one


def test_the_shipped_nginx_config_logs_no_query_strings() -> None:
    import re
    from pathlib import Path

    conf = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
    formats = re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", conf)
    assert formats, "a log_format of our own"
    for _name, pattern in formats:
        assert "$request " not in pattern and "$request_uri" not in pattern
        assert "$args" not in pattern and "$query_string" not in pattern
    logs = re.findall(r"access_log\s+(\S+)\s*(\w*);", conf)
    assert logs and all(fmt in {name for name, _ in formats} for _, fmt in logs)
