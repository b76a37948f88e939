"""The write counters the desk's kept readings look at (changes.py): a table's counter moves
once a write to it is committed and the connection is back (or says it `settled`), never
for a read, and only for the tables written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from bangfu_bot.changes import Changes, settled
from bangfu_bot.members.models import organisations


async def test_a_committed_write_moves_its_tables_counter_and_a_read_does_not(engine: Any) -> None:
    changes = Changes()
    changes.watch(engine)
    before = changes.snapshot(["organisations", "todos"])
    async with engine.connect() as conn:
        await conn.execute(select(organisations.c.id))
    assert changes.snapshot(["organisations", "todos"]) == before
    async with engine.begin() as conn:
        await conn.execute(insert(organisations).values(name="青山镇党委", kind="committee"))
        # Not yet committed: a reader must not take the new counter with the old data.
        assert changes.snapshot(["organisations"]) == before[:1]
    after = changes.snapshot(["organisations", "todos"])
    assert after[0] > before[0] and after[1] == before[1]
    async with engine.begin() as conn:
        await conn.execute(update(organisations).values(name="青山镇"))
    assert changes.snapshot(["organisations"])[0] > after[0]


async def test_a_held_connection_counts_its_writes_when_it_says_they_settled(engine: Any) -> None:
    changes = Changes()
    changes.watch(engine)
    async with engine.connect() as conn:
        async with conn.begin():
            await conn.execute(insert(organisations).values(name="青山镇党委", kind="committee"))
        before = changes.snapshot(["organisations", "todos"])
        settled(conn)  # the group commit's: held on after its commit
        assert changes.snapshot(["organisations", "todos"]) == (before[0] + 1, before[1])
        settled(conn)  # nothing new written: nothing counted twice
        assert changes.snapshot(["organisations"])[0] == before[0] + 1
