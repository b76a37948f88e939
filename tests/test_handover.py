"""A re-import moves an officer to another township while she holds a to-do: her old to-do
closes, the step goes to her old township's officer, and she can no longer take it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from bangfu_bot.cases import procedure
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases
from bangfu_bot.cases.transitions import TransitionRefused, load_case
from bangfu_bot.handover import hand_over
from bangfu_bot.members.models import people
from bangfu_bot.members.roster import import_roster
from bangfu_bot.members.service import person_by_id
from bangfu_bot.todos.models import todos
from tests.members.test_roster import COUNTY, LIU, WANG, ZHAO, roster, write_csv

NOW = datetime(2026, 3, 1, tzinfo=UTC)


async def person_id(engine: Any, number: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(select(people.c.id).where(people.c.id_number == number))
            ).scalar_one()
        )


async def open_todos(engine: Any) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        return [
            (row.assignee_id, row.kind)
            for row in (await conn.execute(select(todos).where(todos.c.done_at.is_(None)))).all()
        ]


async def test_a_moved_officer_s_to_do_goes_to_her_old_township(
    engine: Any, tmp_path: Path
) -> None:
    lines = roster()
    lines[3].roles = "党员、党委委员"  # 赵桂兰: officer of 河口乡
    lines[2].committee, lines[2].branch = "河口乡党委", "河口村党支部"  # 王德明 lives there too
    await import_roster(
        engine,
        write_csv(tmp_path / "v1.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    wang, zhao, liu = [await person_id(engine, n) for n in (WANG, ZHAO, LIU)]
    async with engine.begin() as conn:
        case_id = int(
            (
                await conn.execute(
                    insert(cases).values(
                        person_id=wang,
                        branch_id=(await person_by_id(conn, wang)).branch_id,
                        kind="hardship",
                        status=S.NOTICE_CLOSED,
                        category="缺资金",
                        help_wanted="资金",
                        household_size=1,
                        household_income_fen=0,
                        looks_above_line=False,
                        answers={},
                        filed_by=wang,
                        consent_recorded=False,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            ).inserted_primary_key[0]
        )
        # Reported to 河口乡: both of its officers (赵桂兰, 刘志强) get the approval to-do.
        for officer in await procedure.hands(conn, "case.decide", await load_case(conn, case_id)):
            await conn.execute(
                insert(todos).values(
                    assignee_id=officer,
                    kind="approve",
                    text="请审批",
                    subject_id=wang,
                    case_id=case_id,
                    created_at=NOW,
                    key=f"case:{case_id}:approve:{officer}",
                )
            )
        await conn.execute(cases.update().values(status=S.REPORTED))
    assert sorted(await open_todos(engine)) == sorted([(zhao, "approve"), (liu, "approve")])

    lines[3].committee, lines[3].branch = "城关镇党委", "西村党支部"  # 赵桂兰 moves
    lines[4].roles = "党员"  # and 刘志强 is no longer an officer
    lines[5].roles = "组织部"
    await import_roster(
        engine,
        write_csv(tmp_path / "v2.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    async with engine.begin() as conn:
        done = await hand_over(conn, now=NOW)
    # Nobody is left in 河口乡 to take it: the operator is told which step.
    assert (done.closed, done.handed, done.unowned) == (2, 0, [f"case {case_id}: case.decide"])
    assert await open_todos(engine) == []
    async with engine.begin() as conn:
        zhao_now = await person_by_id(conn, zhao)
        with pytest.raises(TransitionRefused):
            await procedure.decide(
                conn,
                case_id=case_id,
                officer=zhao_now,
                approve=True,
                return_to=None,
                reason=None,
                now=NOW,
            )

    lines[4].roles = "党员、党委委员"  # a third import makes 刘志强 an officer again
    await import_roster(
        engine,
        write_csv(tmp_path / "v3.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    async with engine.begin() as conn:
        done = await hand_over(conn, now=NOW)
    assert (done.closed, done.handed, done.unowned) == (0, 1, [])
    assert await open_todos(engine) == [(liu, "approve")]  # the step has its owner again
    async with engine.connect() as conn:
        given = (
            await conn.execute(select(todos.c.text).where(todos.c.done_at.is_(None)))
        ).scalar_one()
    assert given == "王德明的「党委审批」等您来办。"
