"""The transition table: who may move a case, where, and that refusals write nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bangfu_bot import db
from bangfu_bot.authority import BY_NAME
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.cases.transitions import TRANSITIONS, TransitionRefused, transition
from bangfu_bot.members.service import person_by_id
from tests.factories import make_person, make_tree

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
async def world(database_url: str) -> Any:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    tree = await make_tree(engine, NOW)
    ids = {
        "wang": (await make_person(engine, NOW, name="王德福", branch=tree.branch, serial=231))[0],
        "zhang": (
            await make_person(
                engine,
                NOW,
                name="张建国",
                branch=tree.branch,
                roles=("member", "secretary"),
                serial=457,
            )
        )[0],
        "li_sec": (
            await make_person(
                engine,
                NOW,
                name="李书记",
                branch=tree.other_branch,
                roles=("member", "secretary"),
                serial=458,
            )
        )[0],
        "zhao": (
            await make_person(
                engine,
                NOW,
                name="赵明",
                branch=tree.other_branch,
                roles=("member", "committee"),
                serial=773,
            )
        )[0],
        "sun": (
            await make_person(
                engine, NOW, name="孙丽", branch=None, roles=("department",), serial=884
            )
        )[0],
    }
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(cases).values(
                person_id=ids["wang"],
                branch_id=tree.branch,
                kind="hardship",
                status=S.SUBMITTED,
                category="生病",
                help_wanted="走访慰问、救济",
                household_size=3,
                household_income_fen=0,
                looks_above_line=False,
                answers={},
                filed_by=ids["wang"],
                consent_recorded=False,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        case_id = int(result.inserted_primary_key[0])
    yield engine, ids, case_id
    await engine.dispose()


async def move(engine: Any, case_id: int, target: S, who: int | None, role: str) -> Any:
    async with engine.begin() as conn:
        actor = await person_by_id(conn, who) if who else None
        return await transition(
            conn, case_id=case_id, target=target, actor=actor, role=role, channel="cli", now=NOW
        )


async def events(engine: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(case_events))).scalar_one()


def test_every_status_but_the_last_can_move_and_every_move_is_an_act_of_the_policy() -> None:
    sources = {move.source for move in TRANSITIONS}
    assert set(S) - sources == {S.EVALUATED_FAILED, S.EXITED}
    assert all(BY_NAME[move.act].grants for move in TRANSITIONS)


async def test_secretary_of_another_branch_is_refused(world: Any) -> None:
    engine, ids, case_id = world
    with pytest.raises(TransitionRefused) as refused:
        await move(engine, case_id, S.UNDER_EVALUATION, ids["li_sec"], "secretary")
    assert refused.value.message == "「召开民主评议」这件事不归您管。"
    assert await events(engine) == 0


async def test_an_officer_of_another_township_is_refused_and_one_of_its_own_may_act(
    world: Any,
) -> None:
    from sqlalchemy import update

    from tests.factories import _org

    engine, ids, case_id = world
    async with engine.begin() as conn:
        other_committee = await _org(conn, "committee", "河口乡党委", None)
        other_branch = await _org(conn, "branch", "河口村党支部", other_committee)
        await conn.execute(update(cases).values(status=S.REPORTED))
    stranger, _ = await make_person(
        engine, NOW, name="钱委员", branch=other_branch, roles=("member", "committee"), serial=774
    )
    with pytest.raises(TransitionRefused) as refused:
        await move(engine, case_id, S.APPROVED, stranger, "committee")
    assert refused.value.message == "「党委审批」这件事不归您管。"
    assert await events(engine) == 0
    await move(engine, case_id, S.APPROVED, ids["zhao"], "committee")  # 青山镇's own officer
    assert await events(engine) == 1


async def test_a_move_not_in_the_table_is_refused_with_the_reason(world: Any) -> None:
    engine, ids, case_id = world
    with pytest.raises(TransitionRefused) as refused:
        await move(engine, case_id, S.APPROVED, ids["zhao"], "committee")
    assert "不能直接变成" in refused.value.message
    assert "not in the transition table" in refused.value.reason
    async with engine.connect() as conn:
        status = (await conn.execute(select(cases.c.status))).scalar_one()
    assert status == S.SUBMITTED and await events(engine) == 0


async def test_a_role_the_actor_does_not_hold_is_refused(world: Any) -> None:
    engine, ids, case_id = world
    with pytest.raises(TransitionRefused):
        await move(engine, case_id, S.UNDER_EVALUATION, ids["wang"], "secretary")


async def test_an_official_may_not_act_on_their_own_case(world: Any) -> None:
    engine, ids, _ = world
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(cases).values(
                person_id=ids["zhao"],
                branch_id=None,
                kind="hardship",
                status=S.REPORTED,
                category="生病",
                help_wanted="",
                household_size=1,
                household_income_fen=0,
                looks_above_line=False,
                answers={},
                filed_by=ids["zhao"],
                consent_recorded=False,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        own = int(result.inserted_primary_key[0])
    with pytest.raises(TransitionRefused) as refused:
        await move(engine, own, S.APPROVED, ids["zhao"], "committee")
    assert "自己的事不能自己办" in refused.value.message


async def test_the_system_cannot_be_impersonated(world: Any) -> None:
    engine, ids, case_id = world
    await move(engine, case_id, S.UNDER_EVALUATION, ids["zhang"], "secretary")
    await move(engine, case_id, S.EVALUATED_PASSED, ids["zhang"], "secretary")
    with pytest.raises(TransitionRefused):
        await move(engine, case_id, S.ON_NOTICE, ids["sun"], "system")
    await move(engine, case_id, S.ON_NOTICE, None, "system")
    assert await events(engine) == 3


async def test_department_acts_anywhere_and_audit_names_the_actor(world: Any) -> None:
    engine, ids, case_id = world
    async with engine.begin() as conn:
        await conn.execute(cases.update().values(status=S.APPROVED))
    await move(engine, case_id, S.FILED, ids["sun"], "department")
    async with engine.connect() as conn:
        (event,) = (await conn.execute(select(case_events))).all()
    assert (event.actor_id, event.role, event.channel) == (ids["sun"], "department", "cli")
    assert event.from_status == "approved" and event.to_status == "filed"


async def test_evaluation_date_in_the_future_is_refused_by_the_flow(world: Any) -> None:
    from bangfu_bot.common.fields import FieldError, parse_date

    with pytest.raises(FieldError):
        parse_date("明天", today=date(2026, 11, 30), allow_future=False)
