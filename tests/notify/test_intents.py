"""One path for what the domain tells people (`notify.intents`): a to-do is written once per
key and pushed to its assignee once; messages to people and to WeChat users; the bulk write
costs the same few statements for ten intents or thousands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from bangfu_bot.members.models import bindings
from bangfu_bot.notify.intents import Tell, Todo, add_todo, tell, tell_user, write
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from tests.factories import make_person, make_tree

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


async def person(engine: Any, name: str, serial: int, *openids: str) -> int:
    person_id, _ = await make_person(engine, NOW, name=name, branch=None, serial=serial)
    async with engine.begin() as conn:
        for openid in openids:
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person_id, channel="chat", bound_at=NOW
                )
            )
    return person_id


async def written(engine: Any) -> tuple[list[Any], list[Any]]:
    """The to-dos and outbox rows, in id order."""
    async with engine.connect() as conn:
        tasks = (
            await conn.execute(
                select(todos.c.assignee_id, todos.c.kind, todos.c.text, todos.c.key).order_by(
                    todos.c.id
                )
            )
        ).all()
        messages = (
            await conn.execute(
                select(
                    outbox.c.idempotency_key,
                    outbox.c.openid,
                    outbox.c.kind,
                    outbox.c.content,
                    outbox.c.reason,
                    outbox.c.urgent,
                ).order_by(outbox.c.id)
            )
        ).all()
    return [tuple(row) for row in tasks], [tuple(row) for row in messages]


async def test_a_todo_is_written_and_pushed_to_its_assignee_once(engine: Any) -> None:
    await make_tree(engine, NOW)
    zhang = await person(engine, "张建国", 1, "o-zhang", "o-zhang-2")
    async with engine.begin() as conn:
        todo_id = await add_todo(
            conn,
            assignee_id=zhang,
            kind="call_member",
            text="请联系王德福",
            now=NOW,
            key="human:m1:1",
        )
    tasks, messages = await written(engine)
    assert tasks == [(zhang, "call_member", "请联系王德福", "human:m1:1")]
    # The push the to-do always had: one per WeChat user, keyed todo:<key>:<openid>.
    assert messages == [
        ("todo:human:m1:1:o-zhang", "o-zhang", "todo", "请联系王德福", "to-do call_member", False),
        (
            "todo:human:m1:1:o-zhang-2",
            "o-zhang-2",
            "todo",
            "请联系王德福",
            "to-do call_member",
            False,
        ),
    ]
    async with engine.connect() as conn:
        assert (await conn.execute(select(todos.c.id))).scalar_one() == todo_id


async def test_the_same_key_twice_is_one_todo_and_one_push(engine: Any) -> None:
    zhang = await person(engine, "张建国", 1, "o-zhang")
    liu = await person(engine, "刘书记", 2, "o-liu")
    async with engine.begin() as conn:  # twice in one write: the first wins
        await write(
            conn,
            [
                Todo(zhang, "report", "请上报", "case:1:report:1"),
                Todo(liu, "report", "另一段文字", "case:1:report:1"),
            ],
            now=NOW,
        )
        first = await add_todo(
            conn, assignee_id=zhang, kind="report", text="请上报", now=NOW, key="case:1:report:2"
        )
    async with engine.begin() as conn:  # a later repeat, even once the first is done and the
        # assignee is on another WeChat user: nothing
        await conn.execute(todos.update().values(done_at=NOW))
        await conn.execute(
            insert(bindings).values(
                openid="o-zhang-new", person_id=zhang, channel="chat", bound_at=NOW
            )
        )
        again = await add_todo(
            conn,
            assignee_id=zhang,
            kind="report",
            text="改过的文字",
            now=NOW,
            key="case:1:report:2",
        )
        await write(conn, [Todo(zhang, "report", "请上报", "case:1:report:1")], now=NOW)
    tasks, messages = await written(engine)
    assert [key for *_, key in tasks] == ["case:1:report:1", "case:1:report:2"]
    assert [text for _, _, text, _ in tasks] == ["请上报", "请上报"]
    assert [key for key, *_ in messages] == [
        "todo:case:1:report:1:o-zhang",
        "todo:case:1:report:2:o-zhang",
    ]
    assert again == first


async def test_a_bulk_write_pushes_to_bound_assignees_only(engine: Any) -> None:
    bound = [await person(engine, f"党员{n}", n, f"o-{n}") for n in range(1, 6)]
    unbound = [await person(engine, f"群众{n}", 100 + n) for n in range(1, 6)]
    items = [
        Todo(assignee, "review", f"请复核{n}", f"review:{n}:{assignee}", subject_id=assignee)
        for n, assignee in enumerate(bound + unbound)
    ]
    async with engine.begin() as conn:
        await write(conn, items, now=NOW)
        await write(conn, items, now=NOW)  # a re-run: nothing more
    tasks, messages = await written(engine)
    assert [(assignee, key) for assignee, _, _, key in tasks] == [
        (item.assignee_id, item.key) for item in items
    ]
    assert [(key, openid) for key, openid, *_ in messages] == [
        (f"todo:review:{n}:{assignee}:o-{n + 1}", f"o-{n + 1}") for n, assignee in enumerate(bound)
    ]


async def test_messages_to_people_and_to_wechat_users(engine: Any) -> None:
    wang = await person(engine, "王德福", 1, "o-wang", "o-wang-2")
    nobody = await person(engine, "李四", 2)
    rendered: list[str] = []

    def render() -> str:
        rendered.append("once")
        return "第1期今天到期"

    async with engine.begin() as conn:
        await tell(conn, wang, "审批通过了", key="case:1:approved", now=NOW, reason="approved")
        await tell(conn, nobody, "没人收", key="case:2:approved", now=NOW, reason="approved")
        await tell_user(
            conn,
            "o-old",
            "您的身份已被另一个微信绑定。",
            key="bound-elsewhere:7",
            kind="binding",
            reason="rebound",
            now=NOW,
        )
        await write(
            conn,
            [
                Tell(
                    "reply:m2",
                    "晚到的回答",
                    "late",
                    openid="o-wang",
                    kind="late_reply",
                    urgent=True,
                ),
                Tell("loan:1:1:-0", render, "repayment reminder", wang),
            ],
            now=NOW,
        )
        # The to-do the chat shows at once needs no push.
        await add_todo(
            conn,
            assignee_id=wang,
            kind="visit",
            text="慰问",
            now=NOW,
            key="visit:1:list:1",
            push=False,
        )
    async with engine.begin() as conn:  # a re-run renders nothing
        await write(conn, [Tell("loan:1:1:-0", render, "repayment reminder", wang)], now=NOW)
    tasks, messages = await written(engine)
    assert messages == [
        ("case:1:approved:o-wang", "o-wang", "case", "审批通过了", "approved", False),
        ("case:1:approved:o-wang-2", "o-wang-2", "case", "审批通过了", "approved", False),
        ("bound-elsewhere:7", "o-old", "binding", "您的身份已被另一个微信绑定。", "rebound", False),
        ("reply:m2", "o-wang", "late_reply", "晚到的回答", "late", True),
        ("loan:1:1:-0:o-wang", "o-wang", "case", "第1期今天到期", "repayment reminder", False),
        ("loan:1:1:-0:o-wang-2", "o-wang-2", "case", "第1期今天到期", "repayment reminder", False),
    ]
    assert rendered == ["once", "once"]  # once per WeChat user, and not on the re-run
    assert tasks == [(wang, "visit", "慰问", "visit:1:list:1")]


async def test_a_tell_names_its_recipient_and_a_todo_key_fits_its_column(engine: Any) -> None:
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="person_id or an openid"):
            await write(conn, [Tell("x", "文字", "test")], now=NOW)
        with pytest.raises(ValueError, match="longer than 200"):
            await write(conn, [Todo(1, "report", "文字", "k" * 201)], now=NOW)


@pytest.mark.parametrize("size", [10, 3_000])
async def test_the_bulk_write_costs_the_same_statements_for_any_number(
    engine: Any, size: int
) -> None:
    """Recipients, to-do keys and queued keys are read for all intents at once: three reads
    for 10 intents as for 3,000 (no query per intent, per person or per key), then one insert
    per 500 to-dos and one for the messages."""
    people = [await person(engine, "党员", 1, "o-1"), await person(engine, "群众", 2)]
    items: list[Tell | Todo] = []
    for n in range(size):
        items.append(Todo(people[n % 2], "review", "请复核", f"review:{n}"))
        items.append(Tell(f"note:{n}", lambda: "通知", "test", people[n % 2]))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2].split()[0])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with engine.begin() as conn:
            await write(conn, items, now=NOW)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(todos.c.id))).all()) == size
        assert len((await conn.execute(select(outbox.c.id))).all()) == size  # one person bound
    # Reads: the to-do keys, the WeChat users, the outbox keys (counted, not read back).
    reads = [kind for kind in statements if kind.upper() == "SELECT"]
    assert len(reads) == 3
    assert len(statements) - len(reads) == -(-size // 500) + 1
