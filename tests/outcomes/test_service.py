"""Outcomes on the demo county: the plan file, a passing mid-year (no reminders after), a
written-off loan's follow-up, training sign-in, and the authority policy on each act."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.broadcasts.models import broadcasts
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans import jobs as loan_jobs
from bangfu_bot.loans import service as loan_service
from bangfu_bot.loans.models import loans
from bangfu_bot.members.models import bindings, people
from bangfu_bot.members.service import people_able, person_by_id, secretaries_of
from bangfu_bot.notify.models import outbox
from bangfu_bot.outcomes import service as outcomes
from bangfu_bot.outcomes.models import loan_outcomes, training_attendance
from bangfu_bot.seed.county import seed_demo
from bangfu_bot.todos.models import todos

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)

PLAN = """
fund_size = "60万"
loan_members = 50
visit_budget = 50000
trainings = 4
[raise]
county_finance = "10万"
donation = "1.5万"
"""


def test_a_plan_file_reads_yuan_and_refuses_what_it_does_not_know() -> None:
    plan = outcomes.parse_plan(PLAN, year=2027)
    assert plan.raise_fen == {"county_finance": 10_000_000, "donation": 1_500_000}
    assert (plan.fund_size_fen, plan.loan_members, plan.trainings) == (60_000_000, 50, 4)
    with pytest.raises(outcomes.PlanInvalid, match="lottery"):
        outcomes.parse_plan("[raise]\nlottery = 5", year=2027)
    with pytest.raises(outcomes.PlanInvalid, match="2026"):
        outcomes.parse_plan("year = 2026", year=2027)
    with pytest.raises(outcomes.PlanInvalid, match="loan_members"):
        outcomes.parse_plan("loan_members = -3", year=2027)


async def test_the_plan_is_set_by_the_department_only(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    plan = outcomes.parse_plan(PLAN, year=2027)
    async with engine.begin() as conn:
        member = await person_by_id(conn, await _member_id(conn))
        with pytest.raises(outcomes.OutcomeRefused):
            await outcomes.set_plan(conn, plan=plan, actor=member, channel="chat", now=NOW)
        assert await outcomes.plan_for(conn, 2027) is None
        await outcomes.set_plan(conn, plan=plan, actor=None, channel="cli", now=NOW)
        shown = outcomes.plan_text(await outcomes.plan_for(conn, 2027), 2027)
    assert "筹集资金 115000元" in shown and "技术培训 4 场" in shown
    assert "还没有定年度计划" in outcomes.plan_text(None, 2031)


async def _member_id(conn: Any) -> int:
    return int(
        (
            await conn.execute(
                select(ledger_entries.c.person_id).where(
                    ledger_entries.c.year == 2026, ledger_entries.c.status == "active"
                )
            )
        ).scalar()
    )


async def _overdue_loan(conn: Any) -> Any:
    return (await conn.execute(select(loans).where(loans.c.project == "肉牛养殖"))).first()


async def test_a_member_who_passed_away_gets_no_reminders_after(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    later = NOW + timedelta(days=20)
    async with engine.begin() as conn:
        loan = await _overdue_loan(conn)
        name = (
            await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
        ).scalar()
        branch = (
            await conn.execute(select(people.c.branch_id).where(people.c.id == loan.person_id))
        ).scalar()
        secretary = await person_by_id(conn, (await secretaries_of(conn, branch))[0])
        text = await outcomes.record_passing(
            conn, person_id=loan.person_id, passed_on=date(2026, 11, 8), actor=secretary, now=NOW
        )
        assert f"{name}同志去世" in text and "深表哀悼" in text
        with pytest.raises(outcomes.OutcomeRefused):  # recorded once
            await outcomes.record_passing(
                conn,
                person_id=loan.person_id,
                passed_on=date(2026, 11, 8),
                actor=secretary,
                now=NOW,
            )
        before = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        todos_before = (await conn.execute(select(func.count()).select_from(todos))).scalar_one()
        await loan_jobs.remind(conn, now=later, today=later.date(), call_days=30)
        told = (
            (await conn.execute(select(outbox.c.content).where(outbox.c.id > before)))
            .scalars()
            .all()
        )
        new_todos = (
            (await conn.execute(select(todos.c.text).where(todos.c.id > todos_before)))
            .scalars()
            .all()
        )
        entry = (
            await conn.execute(
                select(ledger_entries).where(
                    ledger_entries.c.person_id == loan.person_id, ledger_entries.c.year == 2026
                )
            )
        ).first()
        bound = (
            await conn.execute(
                select(func.count())
                .select_from(bindings)
                .where(bindings.c.person_id == loan.person_id, bindings.c.unbound_at.is_(None))
            )
        ).scalar_one()
    assert not [line for line in [*told, *new_todos] if name in line]
    assert (entry.status, entry.exit_reason) == ("exited", "去世") and bound == 0


async def test_a_written_off_loan_keeps_its_outcome(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    async with engine.begin() as conn:
        loan = await _overdue_loan(conn)
        subject = await outcomes._loan_subject(conn, loan.id)
        officer = await person_by_id(conn, (await people_able(conn, "loan.write_off", subject))[0])
        await loan_service.write_off(
            conn, loan_id=loan.id, officer=officer, reason="本人无力偿还", on=NOW.date(), now=NOW
        )
        assert await outcomes.open_follow_ups(conn, today=NOW.date(), now=NOW) >= 1
        assert await outcomes.open_follow_ups(conn, today=NOW.date(), now=NOW) >= 1  # same keys
        (todo,) = (
            await conn.execute(
                select(todos).where(todos.c.kind == "loan_outcome", todos.c.loan_id == loan.id)
            )
        ).all()
        assert todo.assignee_id in subject.secretaries  # the branch secretary follows it up
        context = await outcomes.follow_up_context(conn, loan.id)
        assert context is not None and context["occasion"] == "written_off"
        secretary = await person_by_id(conn, todo.assignee_id)
        text = await outcomes.record_loan_outcome(
            conn,
            loan_id=loan.id,
            occasion="written_off",
            horizon="long",
            expected_fen=2_000_000,
            earned_fen=300_000,
            actor=secretary,
            now=NOW,
        )
        assert "没达到预期" in text
        assert await outcomes.follow_up_context(conn, loan.id) is None
        (row,) = (
            await conn.execute(select(loan_outcomes).where(loan_outcomes.c.loan_id == loan.id))
        ).all()
    assert (row.occasion, row.earned_fen, row.expected_fen) == ("written_off", 300_000, 2_000_000)


async def test_signing_in_to_a_training(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    async with engine.begin() as conn:
        member = await person_by_id(conn, await _member_id(conn))
        assert member is not None
        assert "没有您能签到的培训" in await outcomes.sign_in(conn, person=member, now=NOW)
        from bangfu_bot.broadcasts.models import broadcast_recipients

        broadcast_id = (
            await conn.execute(select(func.max(broadcasts.c.id)).where(broadcasts.c.training))
        ).scalar_one()
        await conn.execute(
            broadcasts.update().where(broadcasts.c.id == broadcast_id).values(created_at=NOW)
        )
        await conn.execute(
            broadcast_recipients.insert().values(
                broadcast_id=broadcast_id,
                openid="o-test",
                person_id=member.id,
                channel="mass",
                month="2026-11",
            )
        )
        assert "签到成功" in await outcomes.sign_in(conn, person=member, now=NOW)
        assert "已经签过到了" in await outcomes.sign_in(conn, person=member, now=NOW)
        count = (
            await conn.execute(
                select(func.count())
                .select_from(training_attendance)
                .where(training_attendance.c.person_id == member.id)
            )
        ).scalar_one()
    assert count == 1
