"""The hourly loan follow-ups (`outcomes.loan_follow_ups`) on a county of loans past term.

A county of `MEMBERS` members (20 townships of 25 branches, a secretary in every branch, a
committee officer per township, two department staff) with one loan each, four yearly
instalments all due before today: every loan is at its term's end (one in twenty repaid,
one in fifty written off). The same database is copied twice; on one the job runs as it was
before (loan by loan, every candidate official loaded for each loan: `_before`), on the
other as it is now (`open_follow_ups_batched`); each first run and an immediate re-run
(the hourly case: nothing new) are timed, and both must write the same to-dos.

    PYTHONPATH=src python -m bench.follow_ups [members] [sqlite|postgresql URL]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot import db
from bangfu_bot.authority import BY_NAME, Scope, Subject, able
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.members.service import person_by_id
from bangfu_bot.notify.intents import Todo, write
from bangfu_bot.outcomes.models import loan_outcomes
from bangfu_bot.outcomes.service import _loan_subject, open_follow_ups_batched, say
from bangfu_bot.todos.models import todos
from bench.county import seed

TODAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
MEMBERS = 10_000
CHUNK = 1_000


async def _old_people_able(conn: AsyncConnection, act_name: str, subject: Subject) -> list[int]:
    """`members.service.people_able` as it was: every candidate loaded one by one."""
    found: list[int] = []
    for grant in BY_NAME[act_name].grants:
        if grant.role in {"system", "bound"}:
            continue
        query = (
            select(people.c.id)
            .select_from(
                people.join(
                    person_roles,
                    and_(
                        person_roles.c.person_id == people.c.id, person_roles.c.role == grant.role
                    ),
                )
            )
            .where(people.c.active.is_(True))
            .order_by(people.c.id)
        )
        if grant.scope is Scope.BRANCH:
            query = query.where(people.c.branch_id == subject.branch_id)
        elif grant.scope in {Scope.TOWNSHIP, Scope.STAND_IN}:
            query = query.where(
                people.c.branch_id.in_(
                    select(organisations.c.id).where(
                        organisations.c.parent_id == subject.committee_id
                    )
                )
            )
        for person_id in (await conn.execute(query)).scalars():
            person = await person_by_id(conn, person_id)
            if person_id not in found and person is not None and able(act_name, person, subject):
                found.append(person_id)
    return found


async def _before(conn: AsyncConnection, *, today: date, now: datetime) -> int:
    """`outcomes.service.open_follow_ups` as it was (one transaction, loan by loan)."""
    last_due = (
        select(instalments.c.loan_id, instalments.c.due_on)
        .order_by(instalments.c.loan_id, instalments.c.number.desc())
        .subquery()
    )
    rows = (
        await conn.execute(
            select(loans.c.id, loans.c.status, loans.c.person_id, people.c.name, loans.c.project)
            .select_from(loans.join(people, people.c.id == loans.c.person_id))
            .where(loans.c.status.in_([L.REPAID, L.WRITTEN_OFF, L.DISBURSED]))
            .order_by(loans.c.id)
        )
    ).all()
    ends: dict[int, date] = {}
    for loan_id, due_on in (await conn.execute(select(last_due))).all():
        ends[loan_id] = max(ends.get(loan_id, due_on), due_on)
    recorded = set(
        (await conn.execute(select(loan_outcomes.c.loan_id, loan_outcomes.c.occasion))).all()
    )
    intents: list[Todo] = []
    for row in rows:
        occasion = {L.REPAID: "repaid", L.WRITTEN_OFF: "written_off"}.get(row.status)
        if occasion is None:
            end = ends.get(row.id)
            if end is None or end >= today:
                continue
            occasion = "term_end"
        if (row.id, occasion) in recorded:
            continue
        subject = await _loan_subject(conn, row.id)
        hands_able = await _old_people_able(conn, "outcome.follow_up_loan", subject)
        hands = [p for p in hands_able if p in subject.secretaries] or hands_able
        intents += [
            Todo(
                assignee,
                "loan_outcome",
                say("follow_up_todo", name=row.name, project=row.project),
                f"loan_outcome:{row.id}:{occasion}:{assignee}",
                subject_id=row.person_id,
                loan_id=row.id,
            )
            for assignee in hands
        ]
    await write(conn, intents, now=now)
    return len(intents)


async def build(engine: AsyncEngine, members: int) -> None:
    """The county, its officials and one loan per member, past its term."""
    async with engine.begin() as conn:
        await conn.run_sync(db.metadata.create_all)
    county = await seed(engine, members, NOW)
    branches = len(county.branches)
    roles = [(county.members[n][0], "secretary") for n in range(min(branches, members))]
    roles += [(county.members[n][0], "committee") for n in range(branches, 2 * branches, 25)]
    roles += [(county.members[-n][0], "department") for n in (1, 2)]
    async with engine.begin() as conn:
        await conn.execute(insert(person_roles), [{"person_id": p, "role": r} for p, r in roles])
    disbursed = TODAY - timedelta(days=4 * 365 + 30)
    for start in range(0, members, CHUNK):
        rows, plan = [], []
        for k in range(start, min(start + CHUNK, members)):
            status = "repaid" if k % 20 == 1 else "written_off" if k % 50 == 2 else "disbursed"
            rows.append(
                {
                    "id": k + 1,
                    "person_id": county.members[k][0],
                    "branch_id": county.branches[k % branches],
                    "status": status,
                    "amount_fen": 500_000,
                    "project": "生猪养殖",
                    "earnings": "年底出栏",
                    "schedule_kind": "equal_principal",
                    "term_years": 4,
                    "annual_rate_bp": 435,
                    "disbursed_on": disbursed,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            plan += [
                {
                    "loan_id": k + 1,
                    "number": n,
                    "due_on": disbursed + timedelta(days=365 * n),
                    "principal_fen": 125_000,
                    "interest_fen": 5_000,
                }
                for n in range(1, 5)
            ]
        async with engine.begin() as conn:
            await conn.execute(insert(loans), rows)
            await conn.execute(insert(instalments), plan)
    await db.refresh_statistics(engine)


async def _todos(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(todos.c.assignee_id, todos.c.key, todos.c.text, todos.c.subject_id)
            .where(todos.c.kind == "loan_outcome")
            .order_by(todos.c.id)
        )
        return [tuple(row) for row in rows]


async def _time(label: str, run: Any) -> float:
    started = time.perf_counter()
    count = await run()
    took = time.perf_counter() - started
    print(f"  {label}: {took:.2f} s ({count:,} to-dos asked)", flush=True)
    return took


async def main(members: int, url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-follow-ups-"))
    try:
        if url is None:
            source = folder / "county.db"
            engine = db.make_engine(f"sqlite+aiosqlite:///{source}")
            started = time.perf_counter()
            await build(engine, members)
            await engine.dispose()
            print(f"built {members:,} loans in {time.perf_counter() - started:.1f} s")
            urls = []
            for name in ("before", "now"):
                shutil.copy(source, folder / f"{name}.db")
                urls.append(f"sqlite+aiosqlite:///{folder / name}.db")
        else:
            urls = [url, url]
        results = []
        for name, target in zip(("before", "now"), urls, strict=True):
            engine = db.make_engine(target)
            try:
                if url is not None:
                    async with engine.begin() as conn:
                        await conn.run_sync(db.metadata.drop_all)
                    await build(engine, members)
                print(name, flush=True)

                async def once(engine: AsyncEngine = engine, name: str = name) -> int:
                    if name == "before":
                        async with engine.begin() as conn:
                            return await _before(conn, today=TODAY, now=NOW)
                    return await open_follow_ups_batched(engine, today=TODAY, now=NOW)

                await _time("first run", once)
                await _time("re-run", once)
                results.append(await _todos(engine))
            finally:
                await engine.dispose()
        assert results[0] == results[1], "the to-dos differ"
        print(f"same to-dos: {len(results[1]):,}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else MEMBERS,
            sys.argv[2] if len(sys.argv) > 2 else None,
        )
    )
