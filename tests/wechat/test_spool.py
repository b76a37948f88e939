"""The spool: pushes answered `success` before they committed survive a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bangfu_bot.conversation.bot import say
from bangfu_bot.wechat.spool import Spool
from tests.wechat.test_webhook import OPENID, stored_pushes, wait_for_texts


def test_entries_survive_a_crash_and_are_adopted(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.add("msg:1", "<xml>一</xml>")
    first.add("msg:2", "<xml>二</xml>")
    first.resolve("msg:1")
    first.close()  # died with msg:2 pending
    second = Spool(tmp_path)
    second.open()
    assert second.pending() == [("msg:2", "<xml>二</xml>")]
    assert len(list(tmp_path.glob("*.jsonl"))) == 1  # the orphan file was taken over
    second.resolve("msg:2")
    second.close()
    assert list(tmp_path.glob("*.jsonl")) == []


def test_a_live_process_keeps_its_journal(tmp_path: Path) -> None:
    live = Spool(tmp_path)
    live.open()
    live.add("msg:9", "<xml/>")
    other = Spool(tmp_path)
    other.open()
    assert other.pending() == []
    assert live.pending() == [("msg:9", "<xml/>")]
    other.close()
    live.close()


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "spool-1-dead.jsonl").write_text(
        '{"key": "msg:5", "xml": "<xml/>"}\n{"key": "ms', encoding="utf-8"
    )
    spool = Spool(tmp_path)
    spool.open()
    assert spool.pending() == [("msg:5", "<xml/>")]
    spool.close()


async def test_push_journaled_before_a_crash_is_answered_by_the_next_process(
    start_bot: Any, make_settings: Any, fake_api: Any
) -> None:
    settings = make_settings()
    fake_api.user_wrote(OPENID)  # the member did write: WeChat opened the 48-hour window
    # What a process that answered `success` and then died leaves behind: its journal.
    from bangfu_bot.wechat.fake import PushDriver

    push = PushDriver(
        url="unused",
        token="t",
        appid="a",
        clock=_Clock(),
        session=None,  # type: ignore[arg-type]
    ).message_xml(OPENID, "text", {"Content": "帮助"}, msg_id=4242)
    dead = Spool(settings.spool_dir)
    dead.open()
    dead.add("msg:4242", push)
    dead.close()
    bot = await start_bot()
    assert await wait_for_texts(bot.api, OPENID) == [say("help_unbound")]
    assert await stored_pushes(bot) == 1
    journals = list(Path(settings.spool_dir).glob("*.jsonl"))
    assert all(journal.read_text() == "" for journal in journals)


class _Clock:
    def now(self):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        return datetime.now(UTC)
