"""The demo county: made-up but valid people, a consistent ledger, cases at every stage,
loans at every stage through the loan service, a fund that reconciles, and only ever once."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot import db
from bangfu_bot.authority import roles_of
from bangfu_bot.cases.eligibility import load_rules
from bangfu_bot.cases.models import case_events, cases, evaluations, public_notices
from bangfu_bot.cases.procedure import Rules, close_due_notices
from bangfu_bot.cases.transitions import find_move
from bangfu_bot.common.fields import parse_id_number, parse_name, parse_phone
from bangfu_bot.common.money import yuan
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import SOURCES, figures_now
from bangfu_bot.ledger.export import export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.schedule import fen_days, interest_on
from bangfu_bot.loans.service import position
from bangfu_bot.loans.transitions import TRANSITIONS as LOAN_MOVES
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.models import metadata
from bangfu_bot.reports.fund import reconciliation_fen
from bangfu_bot.seed.county import (
    DEMO_COUNTY,
    add_arguments,
    demo_people,
    run_seed_demo,
    seed_demo,
)
from bangfu_bot.settings import load_settings
from bangfu_bot.todos.models import todos
from tests.conftest import CONVERSATIONS

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
RULES = load_rules(CONVERSATIONS / "eligibility.toml")


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows in every table."""
    async with engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in metadata.sorted_tables
        }


async def rows(engine: AsyncEngine, query: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_seeding_twice_changes_nothing_the_second_time(engine: AsyncEngine) -> None:
    first = await seed_demo(engine, now=NOW, rules=RULES)
    before = await counts(engine)
    second = await seed_demo(engine, now=NOW + timedelta(hours=1), rules=RULES)
    assert await counts(engine) == before
    assert first.created and not second.created
    assert {**first.__dict__, "created": False} == second.__dict__
    assert "已经有了" in second.lines()[0]
    assert (first.townships, first.branches, first.people) == (3, 8, 300)
    assert first.department_staff == 3 and first.supervisors == 1
    assert first.pre1949 == 5 and first.ledger_entries == 24
    assert first.cases == {
        "in_ledger": 24,
        "submitted": 2,
        "on_notice": 2,
        "reported": 1,
        "approved": 1,
        "under_evaluation": 1,
        "evaluated_failed": 1,
        "notice_closed": 1,
        "returned": 1,
        "exited": 1,
    }
    assert first.loans == {
        "applied": 1,
        "approved": 1,
        "rejected": 1,
        "inspected": 1,
        "guaranteed": 1,
        "recorded": 1,
        "disbursed": 3,
        "repaid": 1,
    }
    assert first.reconciliation_fen == 0 and first.fund_outstanding_fen > 0
    assert "借款 10 笔" in first.lines()[-1] and first.lines()[-1].endswith("对账：平")


async def test_people_are_made_up_but_valid_in_form(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    everyone = await rows(engine, select(people))
    assert len(everyone) == 300
    assert len({p.name for p in everyone}) == 300  # 绑定 by name + ID tail stays unambiguous
    for person in everyone:
        assert parse_id_number(person.id_number, today=NOW.date()) == person.id_number
        assert person.id_number.startswith("529901")
        assert person.birth_date == date(
            int(person.id_number[6:10]), int(person.id_number[10:12]), int(person.id_number[12:14])
        )
        assert person.gender == ("男" if int(person.id_number[16]) % 2 else "女")
        assert re.fullmatch(r"1[3-9][0-9]{9}", person.phone)
        assert parse_phone(person.phone) == person.phone
        assert parse_name(person.name) == person.name
        if person.joined_on is not None:
            assert person.birth_date < person.joined_on <= NOW.date()


async def test_the_tree_and_its_officials(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    orgs = await rows(engine, select(organisations))
    (county,) = [o for o in orgs if o.kind == "county"]
    assert county.name == DEMO_COUNTY
    committees = [o for o in orgs if o.kind == "committee"]
    branches = [o for o in orgs if o.kind == "branch"]
    assert len(committees) == 3 and len(branches) == 8
    assert all(c.parent_id == county.id for c in committees)
    roles = await rows(
        engine,
        select(person_roles.c.role, people.c.branch_id).select_from(
            person_roles.join(people, people.c.id == person_roles.c.person_id)
        ),
    )
    for branch in branches:
        secretaries = [r for r in roles if r.role == "secretary" and r.branch_id == branch.id]
        assert 1 <= len(secretaries) <= 2, branch.name
    township_of = {b.id: b.parent_id for b in branches}
    for committee in committees:
        assert any(
            r.role == "committee" and township_of.get(r.branch_id) == committee.id for r in roles
        ), committee.name
    county_staff = [r for r in roles if r.branch_id is None]
    assert sorted(r.role for r in county_staff) == ["department"] * 3 + ["supervisor"]
    old = await rows(engine, select(people).where(people.c.joined_on < date(1949, 10, 1)))
    assert len(old) == 5
    assert all(1925 <= p.birth_date.year <= 1932 for p in old)


async def test_ledger_and_cases_agree_with_the_procedure(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW, rules=RULES)
    everything = await rows(
        engine,
        select(
            ledger_entries,
            cases.c.status.label("case_status"),
            cases.c.person_id.label("case_person"),
        ).select_from(ledger_entries.join(cases, cases.c.id == ledger_entries.c.case_id)),
    )
    # Last year's household that left at the review: its entry and its case say so.
    (exited,) = [e for e in everything if e.status != "active"]
    assert exited.status == "exited" and exited.case_status == "exited" and exited.year == 2025
    assert exited.exit_reason and exited.reviewed_at == exited.exited_at
    entries = [e for e in everything if e.status == "active"]
    assert len(entries) == 24
    assert all(e.year == 2026 for e in entries)
    assert all(e.case_status == "in_ledger" and e.case_person == e.person_id for e in entries)
    assert len({e.category for e in entries}) >= 4
    old_ids = {
        p.id
        for p in await rows(
            engine, select(people.c.id).where(people.c.joined_on < date(1949, 10, 1))
        )
    }
    assert old_ids <= {e.person_id for e in entries}  # every pre-1949 member is in the ledger
    for case in await rows(engine, select(cases)):
        trail = await rows(
            engine,
            select(case_events).where(case_events.c.case_id == case.id).order_by(case_events.c.id),
        )
        assert trail[0].from_status is None and trail[0].to_status == "submitted"
        assert trail[-1].to_status == case.status
        for before, event in zip(trail, trail[1:], strict=False):
            move = find_move(before.to_status, event.to_status)
            assert move is not None and event.from_status == before.to_status
            assert event.role in roles_of(move.act)
            assert before.at <= event.at <= NOW
        assert case.household_size == 1 + len(case.answers["household"])
        assert (case.return_to is not None) == (case.status == "returned")
    meetings = await rows(
        engine,
        select(evaluations, cases.c.status).select_from(
            evaluations.join(cases, cases.c.id == evaluations.c.case_id)
        ),
    )
    assert all(
        e.passed == (e.votes_for * 2 > e.entitled)
        and e.present <= e.entitled
        and e.votes_for + e.votes_against + e.abstain <= e.present
        and e.counter != e.scrutineer
        for e in meetings
    )
    assert [e.status for e in meetings if not e.passed] == ["evaluated_failed"]
    # The ledger's 24 and the exited one, on notice 2, notice closed, reported, approved,
    # returned; the failed one never went on notice.
    assert len(meetings) == 25 + 2 + 1 + 1 + 1 + 1 + 1
    assert len(await rows(engine, select(public_notices))) == 25 + 2 + 1 + 1 + 1 + 1


async def test_every_waiting_case_has_its_to_do(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    kinds = {
        "submitted": "evaluate",
        "under_evaluation": "evaluate",
        "reported": "approve",
        "approved": "file",
        "notice_closed": "report",
        "returned": "returned",
    }
    waiting = {
        row.id: row.status
        for row in await rows(engine, select(cases).where(cases.c.status.in_(list(kinds))))
    }
    open_todos = await rows(
        engine, select(todos).where(todos.c.done_at.is_(None), todos.c.case_id.is_not(None))
    )
    for case_id, status in waiting.items():
        assert any(t.case_id == case_id and t.kind == kinds[status] for t in open_todos)
    assert {t.case_id for t in open_todos} == set(waiting)


async def test_notices_on_the_board_end_a_week_later(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    async with engine.begin() as conn:
        assert await close_due_notices(conn, now=NOW, rules=Rules()) == 0
        assert await close_due_notices(conn, now=NOW + timedelta(days=7), rules=Rules()) == 2


async def test_the_ledger_exports(engine: AsyncEngine, tmp_path: Path) -> None:
    await seed_demo(engine, now=NOW)
    result = await export_ledger(
        engine, year=2026, out=tmp_path / "ledger.xlsx", township=None, today=NOW.date()
    )
    assert result.rows == 24 and len(result.townships) == 3


async def test_early_january_still_gives_a_ledger_of_this_year(engine: AsyncEngine) -> None:
    new_year = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)  # 09:00 on 1 January in the county
    summary = await seed_demo(engine, now=new_year)
    assert summary.year == 2027 and summary.ledger_entries == 24
    events = await rows(engine, select(case_events.c.at))
    assert all(row.at <= new_year for row in events)
    loan_steps = await rows(engine, select(loan_events.c.at))
    assert loan_steps and all(row.at <= new_year for row in loan_steps)
    assert summary.reconciliation_fen == 0 and sum(summary.loans.values()) == 10


async def test_the_fund_has_contributions_and_reconciles(engine: AsyncEngine) -> None:
    summary = await seed_demo(engine, now=NOW)
    given = await rows(
        engine, select(fund_movements).where(fund_movements.c.kind == "contribution")
    )
    assert len(given) >= 8 and {g.source for g in given} == set(SOURCES)
    assert all(
        g.document.strip() and g.amount_fen > 0 and g.occurred_on < NOW.date() for g in given
    )
    async with engine.connect() as conn:
        assert await reconciliation_fen(conn) == 0
        figures = await figures_now(conn)
    assert figures.contributions_fen == summary.fund_raised_fen == sum(g.amount_fen for g in given)
    # Money went out, some came back with interest, and the fund never went below zero.
    assert figures.loans_out_fen > 0 and figures.principal_in_fen > 0
    assert figures.interest_in_fen > 0 and figures.cash_fen > 0
    assert figures.outstanding_fen == summary.fund_outstanding_fen > 0


async def test_loans_at_every_stage_follow_the_loan_procedure(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    today = NOW.date()
    seeded = await rows(engine, select(loans).order_by(loans.c.id))
    assert {loan.status for loan in seeded} == {
        "applied",
        "approved",
        "rejected",
        "inspected",
        "guaranteed",
        "recorded",
        "disbursed",
        "repaid",
    }
    assert len({loan.person_id for loan in seeded}) == len(seeded)  # one loan each
    ledger = {
        e.person_id
        for e in await rows(
            engine, select(ledger_entries.c.person_id).where(ledger_entries.c.status == "active")
        )
    }
    assert {loan.person_id for loan in seeded} <= ledger
    for loan in seeded:
        assert 300_000 <= loan.amount_fen <= 500_000
        trail = await rows(
            engine,
            select(loan_events).where(loan_events.c.loan_id == loan.id).order_by(loan_events.c.id),
        )
        assert trail[0].from_status is None and trail[0].to_status == "applied"
        assert trail[-1].to_status == loan.status
        for before, event in zip(trail, trail[1:], strict=False):
            assert event.from_status == before.to_status
            assert event.role in roles_of(LOAN_MOVES[(before.to_status, event.to_status)])
            assert event.actor_id != loan.person_id
            assert before.at <= event.at <= NOW
        plan = await rows(engine, select(instalments).where(instalments.c.loan_id == loan.id))
        paid = await rows(engine, select(repayments).where(repayments.c.loan_id == loan.id))
        if loan.status in ("disbursed", "repaid"):
            assert loan.recorded_by and loan.confirmed_by and loan.recorded_by != loan.confirmed_by
            assert sum(i.principal_fen for i in plan) == loan.amount_fen
            out = await rows(
                engine,
                select(fund_movements).where(
                    fund_movements.c.loan_id == loan.id, fund_movements.c.kind == "loan_out"
                ),
            )
            assert [m.amount_fen for m in out] == [loan.amount_fen]
        else:
            assert not plan and not paid
        if loan.status == "repaid":
            assert sum(r.principal_fen for r in paid) == loan.amount_fen
    # Of the three being repaid: one on time with part paid, one in arrears, one not due yet.
    standing = []
    async with engine.connect() as conn:
        for loan in seeded:
            if loan.status == "disbursed":
                owed = await position(conn, loan.id, today)
                standing.append(
                    (owed.principal_outstanding_fen < loan.amount_fen, owed.overdue_fen > 0)
                )
    assert sorted(standing) == [(False, False), (False, True), (True, False)]


async def test_the_repaid_loans_paid_the_interest_accrued_by_the_day(engine: AsyncEngine) -> None:
    summary = await seed_demo(engine, now=NOW)
    repaid = await rows(engine, select(loans).where(loans.c.status == "repaid"))
    assert repaid
    for loan in repaid:
        paid = await rows(
            engine,
            select(repayments)
            .where(repayments.c.loan_id == loan.id)
            .order_by(repayments.c.paid_on, repayments.c.id),
        )
        # Interest by the day on the principal outstanding, from disbursement to the last
        # payment, rounded once: what the member paid, and more than nothing.
        by_the_day = interest_on(
            fen_days(
                loan.amount_fen,
                loan.disbursed_on,
                [(p.paid_on, p.principal_fen) for p in paid],
                paid[-1].paid_on,
            ),
            loan.annual_rate_bp,
        )
        assert sum(p.interest_fen for p in paid) == by_the_day > 0, loan.id
        assert all(p.amount_fen == p.interest_fen + p.principal_fen for p in paid)
        interest_in = await rows(
            engine,
            select(fund_movements.c.amount_fen).where(
                fund_movements.c.loan_id == loan.id, fund_movements.c.kind == "interest_in"
            ),
        )
        assert sum(m.amount_fen for m in interest_in) == by_the_day  # the fund has it too
    # The operator's summary of the county names the interest the fund took in.
    async with engine.connect() as conn:
        figures = await figures_now(conn)
    assert summary.fund_interest_in_fen == figures.interest_in_fen > 0
    assert f"利息 {yuan(figures.interest_in_fen)}" in "\n".join(summary.lines())


async def test_every_waiting_loan_has_its_to_do(engine: AsyncEngine) -> None:
    await seed_demo(engine, now=NOW)
    kinds = {
        "applied": "loan_review",
        "approved": "loan_inspect",
        "inspected": "loan_guarantee",
        "guaranteed": "loan_disburse",
        "recorded": "loan_confirm",
    }
    waiting = {
        loan.id: loan
        for loan in await rows(engine, select(loans).where(loans.c.status.in_(list(kinds))))
    }
    open_todos = await rows(
        engine, select(todos).where(todos.c.done_at.is_(None), todos.c.loan_id.is_not(None))
    )
    assert {t.loan_id for t in open_todos} == set(waiting)
    for loan_id, loan in waiting.items():
        mine = [t for t in open_todos if t.loan_id == loan_id]
        assert mine and {t.kind for t in mine} == {kinds[loan.status]}
        if loan.status == "recorded":  # the one who recorded it cannot confirm it
            assert loan.recorded_by not in {t.assignee_id for t in mine}


def test_the_county_is_the_same_every_time() -> None:
    assert demo_people() == demo_people()


async def test_seed_demo_command(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["seed-demo"]).command == "seed-demo"
    settings = load_settings(
        {
            "BANGFU_DATABASE_URL": database_url,
            "BANGFU_STORAGE_DIR": str(tmp_path),
            "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
        }
    )
    if not settings.is_sqlite:
        engine = db.make_engine(settings.database_url)
        await db.migrate(engine)
        await engine.dispose()
    assert await run_seed_demo(settings) == 0
    assert "示范县建好了" in capsys.readouterr().out
    assert await run_seed_demo(settings) == 0
    out = capsys.readouterr().out
    assert "已经有了" in out and "300 人" in out
