"""The dispatcher in batches: calls under way at once, each row exactly once, a batch's mixed
outcomes, the in-flight mark before the call, stopping mid-batch, the bulk queue."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.notify.outbox import DeliveryRules, Dispatcher
from bangfu_bot.notify.queue import outbox_row, queue_message, queue_messages
from bangfu_bot.settings import SettingsError, load_settings
from tests.county import bind

TEMPLATE = "TM-notice-001"
TEMPLATE_KEYS = {"thing1": "thing", "thing2": "thing", "time3": "time"}


@pytest.fixture
async def bot(start_bot: Any) -> Any:
    """A verified service account with the notice template, 8 calls under way at once."""
    bot = await start_bot(wechat_template_id=TEMPLATE, outbox_concurrency="8")
    bot.api.add_template(TEMPLATE, TEMPLATE_KEYS)
    return bot


def notice(openid: str, key: str, content: str, bot: Any) -> dict[str, Any]:
    return outbox_row(
        key=key, openid=openid, kind="notice", content=content, reason="test", now=bot.clock.now()
    )


async def queue_all(bot: Any, rows: list[dict[str, Any]]) -> None:
    async with bot.services.engine.begin() as conn:
        await queue_messages(conn, rows)


async def rows(bot: Any, table: Any = outbox) -> list[Any]:
    async with bot.services.engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def by_key(bot: Any) -> dict[str, Any]:
    return {row.idempotency_key: row for row in await rows(bot)}


async def attempts_of(bot: Any, row: Any) -> list[tuple[str, int]]:
    return [
        (a.channel, a.errcode) for a in await rows(bot, outbox_attempts) if a.outbox_id == row.id
    ]


async def test_many_rows_each_sent_exactly_once_and_each_users_in_order(bot: Any) -> None:
    writers = [f"o-writer-{n}" for n in range(3)]
    for openid in writers:
        await bot.driver().text(openid, "你好")  # their windows are open
    others = [f"o-other-{n}" for n in range(150)]
    for openid in others:
        bot.api.follow(openid)
    queued = [notice(w, f"w:{w}:{k}", f"第{k}条", bot) for k in range(1, 5) for w in writers]
    queued += [notice(o, f"o:{o}", f"给{o}的通知", bot) for o in others]
    await queue_all(bot, queued)
    await queue_all(bot, queued)  # the same intents again: nothing new
    services = bot.services
    other = Dispatcher(
        engine=services.engine,
        client=services.client,
        clock=bot.clock,
        rules=DeliveryRules.from_settings(services.settings),
    )
    await asyncio.gather(services.dispatcher.send_due(), other.send_due())
    await bot.flush_outbox()
    for openid in writers:  # one user's messages arrive in the order they were written
        assert bot.api.sent_texts(openid) == ["第1条", "第2条", "第3条", "第4条"]
    templates = Counter(t["client_msg_id"] for t in bot.api.sent_templates())
    assert len(templates) == len(others) and set(templates.values()) == {1}
    written = await rows(bot)
    assert len(written) == len(queued)
    assert {(r.status, r.attempts) for r in written} == {("sent", 1)}
    attempts = Counter(a.outbox_id for a in await rows(bot, outbox_attempts))
    assert len(attempts) == len(queued) and set(attempts.values()) == {1}


async def test_the_next_batch_does_not_count_on_a_window_already_used(start_bot: Any) -> None:
    bot = await start_bot(wechat_template_id=TEMPLATE, outbox_concurrency="1")  # 32 a batch
    bot.api.add_template(TEMPLATE, TEMPLATE_KEYS)
    others = [f"o-other-{n}" for n in range(30)]
    for openid in others:
        bot.api.follow(openid)
    await bot.driver().text("o-writer", "你好")  # 5 customer-service messages allowed
    await queue_all(
        bot,
        [notice(o, f"o:{o}", "通知", bot) for o in others]
        + [notice("o-writer", f"w:{k}", f"第{k}条", bot) for k in range(1, 7)],
    )
    await bot.flush_outbox()
    # Two of the writer's rows are in the first batch, four in the second, claimed while
    # the first was still under way: it still knew only three were left.
    assert bot.api.sent_texts("o-writer") == ["第1条", "第2条", "第3条", "第4条", "第5条"]
    assert [t["data"]["thing2"] for t in bot.api.sent_templates("o-writer")] == ["第6条"]
    assert {a.errcode for a in await rows(bot, outbox_attempts)} == {0}


async def test_calls_are_made_concurrently(bot: Any) -> None:
    openids = [f"o-slow-{n}" for n in range(40)]
    for openid in openids:
        bot.api.follow(openid)
    await queue_all(bot, [notice(o, f"slow:{o}", "通知", bot) for o in openids])
    held = bot.api.hold_next("message/template/send", times=8)
    sending = asyncio.create_task(bot.flush_outbox())
    # WeChat holds the first calls: all eight are under way at once, none waits for another.
    await asyncio.wait_for(held.arrived.wait(), 10)
    assert bot.api.sent_templates() == []
    held.release()
    await sending
    assert len(bot.api.sent_templates()) == 40


async def test_a_batch_with_mixed_outcomes_records_each(bot: Any, county: Any, chat: Any) -> None:
    secretary = chat("o-zhang")
    await bind(secretary, "张建国", county.secretary_number)
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    bot.clock.advance(hours=49)  # 王德福's window has closed
    await secretary.send("帮助")
    await bot.driver().text("o-busy", "你好")  # a window open: a customer-service message
    bot.api.follow("o-fine")
    bot.api.unfollow("o-wang")  # the template to 王德福 is refused: his secretary tells him
    await bot.flush_outbox()
    bot.api.fail_next("message/custom/send", errcode=45009)  # the platform is busy once
    await queue_all(
        bot,
        [
            notice("o-fine", "fine", "明天开会。", bot),
            notice("o-wang", "wang", "您的申请已批准。", bot),
            notice("o-busy", "busy", "请带身份证。", bot),
        ],
    )
    await bot.flush_outbox()
    rows_now = await by_key(bot)
    fine, escalated, busy = rows_now["fine"], rows_now["wang"], rows_now["busy"]
    assert (fine.status, fine.channel, fine.attempts, fine.last_errcode) == (
        "sent",
        "template",
        1,
        0,
    )
    assert fine.wechat_msgid == bot.api.sent_templates("o-fine")[0]["msgid"]
    assert await attempts_of(bot, fine) == [("template", 0)]
    assert (escalated.status, escalated.channel, escalated.last_errcode) == (
        "escalated",
        "escalated",
        43004,
    )
    assert await attempts_of(bot, escalated) == [("template", 43004)]
    assert "请打电话或上门告诉王德福：您的申请已批准。" in await secretary.send("待办")
    assert (busy.status, busy.channel, busy.attempts, busy.last_errcode) == (
        "pending",
        "custom",
        1,
        45009,
    )
    assert (busy.next_attempt_at - busy.created_at).total_seconds() == 10  # backoff
    assert await attempts_of(bot, busy) == [("custom", 45009)]
    bot.clock.advance(seconds=11)
    await bot.flush_outbox()
    busy = (await by_key(bot))["busy"]
    assert (busy.status, busy.channel, busy.attempts) == ("sent", "custom", 2)
    assert bot.api.sent_texts("o-busy")[-1] == "请带身份证。"
    assert await attempts_of(bot, busy) == [("custom", 45009), ("custom", 0)]


async def test_a_row_is_marked_with_its_channel_before_the_call(bot: Any) -> None:
    bot.api.follow("o-a")
    held = bot.api.hold_next("message/template/send")
    await queue_all(bot, [notice("o-a", "held", "通知", bot)])
    sending = asyncio.create_task(bot.flush_outbox())
    await asyncio.wait_for(held.arrived.wait(), 10)
    # While WeChat holds the call, the row says it is out by template: a process killed now
    # leaves that trace for `_recover_stale_claims`.
    row = (await by_key(bot))["held"]
    assert (row.status, row.channel) == ("sending", "template")
    assert bot.api.sent_templates() == []
    held.release()
    await sending
    assert (await by_key(bot))["held"].status == "sent"


async def test_stopping_mid_batch_returns_rows_not_yet_called(start_bot: Any) -> None:
    bot = await start_bot(wechat_template_id=TEMPLATE, outbox_concurrency="1")
    bot.api.add_template(TEMPLATE, TEMPLATE_KEYS)
    openids = [f"o-stop-{n}" for n in range(4)]
    for openid in openids:
        bot.api.follow(openid)
    held = bot.api.hold_next("message/template/send")
    await queue_all(bot, [notice(o, f"stop:{o}", "通知", bot) for o in openids])
    dispatcher = bot.services.dispatcher
    dispatcher.wake()
    await asyncio.wait_for(held.arrived.wait(), 10)
    row = (await by_key(bot))["stop:o-stop-0"]
    assert (row.status, row.channel) == ("sending", "template")
    # WeChat answers once close() has begun (it marks the dispatcher stopping before it
    # first waits): the call under way finishes; the others are not made.
    asyncio.get_running_loop().call_soon(held.release)
    await dispatcher.close()
    statuses = {key: (row.status, row.channel) for key, row in (await by_key(bot)).items()}
    assert statuses == {
        "stop:o-stop-0": ("sent", "template"),
        **{f"stop:{o}": ("pending", None) for o in openids[1:]},
    }
    assert len(await rows(bot, outbox_attempts)) == 1
    await bot.flush_outbox()  # due again for whoever sends next
    templates = Counter(t["touser"] for t in bot.api.sent_templates())
    assert templates == Counter(openids)


async def test_bulk_queue_writes_the_same_rows_and_ignores_written_keys(bot: Any) -> None:
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        await queue_message(
            conn,
            key="one",
            openid="o-a",
            kind="notice",
            content="通知",
            reason="test",
            now=now,
            urgent=True,
        )
        await queue_messages(
            conn,
            [
                outbox_row(
                    key="one", openid="o-a", kind="notice", content="另一条", reason="x", now=now
                ),
                outbox_row(
                    key="two",
                    openid="o-a",
                    kind="notice",
                    content="通知",
                    reason="test",
                    now=now,
                    urgent=True,
                ),
            ],
        )
    one, two = await rows(bot)
    assert one.content == "通知"  # the first write of an intent stands
    columns = [c.name for c in outbox.c if c.name not in ("id", "idempotency_key")]
    assert [getattr(one, c) for c in columns] == [getattr(two, c) for c in columns]


def test_concurrency_is_a_setting(tmp_path: Path) -> None:
    assert DeliveryRules.from_settings(load_settings({})).concurrency == 16
    assert (
        DeliveryRules.from_settings(load_settings({"BANGFU_OUTBOX_CONCURRENCY": "64"})).concurrency
        == 64
    )
    config = tmp_path / "bangfu.toml"
    config.write_text("outbox_concurrency = 4\n", encoding="utf-8")
    assert load_settings({}, config_file=config).outbox_concurrency == 4
    with pytest.raises(SettingsError, match="BANGFU_OUTBOX_CONCURRENCY"):
        load_settings({"BANGFU_OUTBOX_CONCURRENCY": "0"})


async def test_a_process_killed_mid_dispatch_of_ten_thousand_rows(
    database_url: str, fake_api: Any, fake_api_url: str, tmp_path: Path, clock: Any, start_bot: Any
) -> None:
    """`serve` as a real process, SIGKILLed while it sends 10,000 templates; a restarted bot
    on the same store sends each row exactly once, or says why not."""
    import signal
    import sys
    from datetime import UTC, datetime, timedelta

    from bangfu_bot import db
    from tests.test_cli_wechat import real_env

    # The process runs on the real clock: so does the fake WeChat, or the tokens it hands
    # that process would have expired by the fixture's date when the restart uses them.
    clock.set(datetime.now(UTC))
    fake_api.add_template(TEMPLATE, TEMPLATE_KEYS)
    openids = [f"o-kill-{n}" for n in range(10_000)]
    for openid in openids:
        fake_api.follow(openid)  # nobody wrote lately: every row goes as a template
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    async with engine.begin() as conn:  # urgent: quiet hours do not hold them, whenever CI runs
        await queue_messages(
            conn,
            [
                outbox_row(
                    key=f"kill:{openid}",
                    openid=openid,
                    kind="notice",
                    content="明天上午九点开会。",
                    reason="test",
                    now=datetime.now(UTC),
                    urgent=True,
                )
                for openid in openids
            ],
        )
    await engine.dispose()  # the process has the store to itself
    # Nothing here talks to the process's webhook: port 0 lets it bind any free port, where
    # a port picked beforehand could be taken by someone else before the process binds it.
    env = {
        **real_env(database_url, fake_api_url, tmp_path),
        "BANGFU_PORT": "0",
        "BANGFU_HOST": "127.0.0.1",
        "BANGFU_WECHAT_TEMPLATE_ID": TEMPLATE,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as written:  # the process keeps its own descriptor
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bangfu_bot.cli",
            "serve",
            env={"PATH": "/usr/bin:/bin", **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=written,
        )
    deadline = time.monotonic() + 120
    while (
        len(fake_api.sent_templates()) < 1_000
        and process.returncode is None
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.02)
    assert process.returncode is None, log.read_text(errors="replace")[-2000:]
    process.send_signal(signal.SIGKILL)  # no shutdown, no finally: rows left as they were
    await process.wait()
    before_restart = len(fake_api.sent_templates())
    assert 1_000 <= before_restart < 10_000
    async with engine.connect() as conn:
        in_flight = (
            await conn.execute(select(outbox.c.id).where(outbox.c.status == "sending"))
        ).all()
    await engine.dispose()
    assert in_flight  # the kill left claimed rows behind

    # The restart, once the dead process's claims are stale (five minutes).
    clock.set(datetime.now(UTC) + timedelta(minutes=10))
    bot = await start_bot(wechat_template_id=TEMPLATE, outbox_concurrency="64")
    for _ in range(30):
        statuses = Counter(row.status for row in await rows(bot))
        if set(statuses) == {"sent"}:
            break
        await bot.flush_outbox()
    unsent = [row.id for row in await rows(bot) if row.status != "sent"]
    tried = [
        (a.outbox_id, a.channel, a.errcode, a.errmsg)
        for a in await rows(bot, outbox_attempts)
        if a.outbox_id in unsent
    ]
    assert statuses == Counter({"sent": 10_000}), tried  # what was tried, if not
    delivered = Counter(template["touser"] for template in fake_api.sent_templates())
    assert delivered == Counter(openids)  # each member once: a retried call carried its
    # client_msg_id, and the platform dropped the second copy
