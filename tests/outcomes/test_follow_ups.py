"""The hourly loan follow-ups, read in batches with the officials loaded once, write the
same to-dos (keys, texts, assignees) and the same pushes as the job did loan by loan: on the
demo county with a loan in every branch of its three townships, loans at their term's end,
one followed up already, one written off, a borrower who passed away and a branch without
its secretary (a township officer stands in); a re-run writes nothing new."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.members.models import bindings, organisations, people, person_roles
from bangfu_bot.members.service import Officials, people_able, person_by_id, secretaries_of
from bangfu_bot.notify.intents import Todo, write
from bangfu_bot.notify.models import outbox
from bangfu_bot.outcomes import service as outcomes
from bangfu_bot.outcomes.models import loan_outcomes
from bangfu_bot.seed.county import seed_demo
from bangfu_bot.todos.models import todos

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
TODAY = date(2029, 1, 10)  # every demo loan is past its term by then


async def _reference(conn: AsyncConnection, *, today: date, now: datetime) -> int:
    """The job as it was before (loan by loan, every official loaded per loan): the oracle."""
    rows = (
        await conn.execute(
            select(loans.c.id, loans.c.status, loans.c.person_id, people.c.name, loans.c.project)
            .select_from(loans.join(people, people.c.id == loans.c.person_id))
            .where(loans.c.status.in_([L.REPAID, L.WRITTEN_OFF, L.DISBURSED]))
            .order_by(loans.c.id)
        )
    ).all()
    ends: dict[int, date] = {}
    for loan_id, due_on in (
        await conn.execute(select(instalments.c.loan_id, instalments.c.due_on))
    ).all():
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
        subject = await outcomes._loan_subject(conn, row.id)
        able = await people_able(conn, "outcome.follow_up_loan", subject)
        hands = [p for p in able if p in subject.secretaries] or able
        intents += [
            Todo(
                assignee,
                "loan_outcome",
                outcomes.say("follow_up_todo", name=row.name, project=row.project),
                f"loan_outcome:{row.id}:{occasion}:{assignee}",
                subject_id=row.person_id,
                loan_id=row.id,
            )
            for assignee in hands
        ]
    await write(conn, intents, now=now)
    return len(intents)


async def _county(engine: AsyncEngine) -> dict[str, Any]:
    """The demo county, and a disbursed loan (its term ended) in every branch."""
    await seed_demo(engine, now=NOW)
    async with engine.begin() as conn:
        model = (await conn.execute(select(loans).where(loans.c.status == L.DISBURSED))).first()
        assert model is not None
        plan = (
            await conn.execute(select(instalments).where(instalments.c.loan_id == model.id))
        ).all()
        borrowers = set((await conn.execute(select(loans.c.person_id))).scalars())
        officials = set(
            (
                await conn.execute(
                    select(person_roles.c.person_id).where(person_roles.c.role != "member")
                )
            ).scalars()
        )
        branches = (
            (await conn.execute(select(organisations.c.id).where(organisations.c.kind == "branch")))
            .scalars()
            .all()
        )
        added = []
        for branch in branches:
            member = (
                await conn.execute(
                    select(people.c.id)
                    .where(
                        people.c.branch_id == branch,
                        people.c.active.is_(True),
                        people.c.id.not_in(borrowers | officials),
                    )
                    .order_by(people.c.id)
                )
            ).scalar()
            if member is None:
                continue
            values = {k: v for k, v in model._mapping.items() if k != "id"}
            values.update(person_id=member, branch_id=branch)
            loan_id = (await conn.execute(insert(loans).values(**values))).inserted_primary_key[0]
            for item in plan:
                row = dict(item._mapping)
                row.update(loan_id=loan_id, due_on=item.due_on - timedelta(days=900))
                await conn.execute(insert(instalments).values(**row))
            added.append(loan_id)
        disbursed = list(
            (
                await conn.execute(
                    select(loans.c.id).where(loans.c.status == L.DISBURSED).order_by(loans.c.id)
                )
            ).scalars()
        )
        written_off, passed = disbursed[0], disbursed[1]
        await conn.execute(
            update(loans).where(loans.c.id == written_off).values(status=L.WRITTEN_OFF)
        )
        await conn.execute(
            insert(loan_outcomes).values(
                loan_id=added[0],
                occasion="term_end",
                horizon="short",
                expected_fen=1,
                earned_fen=1,
                recorded_at=NOW,
            )
        )
        borrower = (
            await conn.execute(select(loans.c.person_id).where(loans.c.id == passed))
        ).scalar_one()
        branch = (
            await conn.execute(select(people.c.branch_id).where(people.c.id == borrower))
        ).scalar_one()
        secretary = await person_by_id(conn, (await secretaries_of(conn, branch))[0])
        await outcomes.record_passing(
            conn, person_id=borrower, passed_on=date(2026, 11, 8), actor=secretary, now=NOW
        )
        # Every official on WeChat (two of the first bound twice): the pushes are compared too.
        for number, official in enumerate(sorted(officials)):
            for twice in range(2 if number < 2 else 1):
                await conn.execute(
                    insert(bindings).values(
                        openid=f"o-official-{official}-{twice}",
                        person_id=official,
                        channel="chat",
                        bound_at=NOW,
                    )
                )
        # A branch whose secretaries left: its township's officers stand in.
        lone = await conn.execute(select(loans.c.branch_id).where(loans.c.id == added[-1]))
        lone_branch = lone.scalar_one()
        await conn.execute(
            update(people)
            .where(
                people.c.branch_id == lone_branch,
                people.c.id.in_(
                    select(person_roles.c.person_id).where(person_roles.c.role == "secretary")
                ),
            )
            .values(active=False)
        )
    return {
        "added": added,
        "written_off": written_off,
        "passed": borrower,
        "followed": added[0],
    }


async def _written(conn: AsyncConnection) -> tuple[list[Any], list[Any]]:
    made = (
        await conn.execute(
            select(
                todos.c.assignee_id,
                todos.c.kind,
                todos.c.text,
                todos.c.key,
                todos.c.subject_id,
                todos.c.loan_id,
                todos.c.case_id,
            )
            .where(todos.c.kind == "loan_outcome")
            .order_by(todos.c.id)
        )
    ).all()
    pushed = (
        await conn.execute(
            select(outbox.c.idempotency_key, outbox.c.openid, outbox.c.content)
            .where(outbox.c.reason == "to-do loan_outcome")
            .order_by(outbox.c.idempotency_key)
        )
    ).all()
    return [tuple(row) for row in made], [tuple(row) for row in pushed]


async def test_the_batched_follow_ups_write_what_the_loan_by_loan_job_wrote(
    engine: AsyncEngine,
) -> None:
    county = await _county(engine)
    conn = await engine.connect()
    try:
        transaction = await conn.begin()
        before = await _reference(conn, today=TODAY, now=NOW)
        expected = await _written(conn)
        await transaction.rollback()
    finally:
        await conn.close()
    assert before == len(expected[0]) and expected[1]

    asked = await outcomes.open_follow_ups_batched(engine, today=TODAY, now=NOW, batch=2)
    async with engine.connect() as conn:
        made = await _written(conn)
        townships = (
            await conn.execute(
                select(func.count(organisations.c.parent_id.distinct())).where(
                    organisations.c.id.in_(
                        select(people.c.branch_id).where(
                            people.c.id.in_(
                                select(todos.c.subject_id).where(todos.c.kind == "loan_outcome")
                            )
                        )
                    )
                )
            )
        ).scalar_one()
        committee = set(
            (
                await conn.execute(
                    select(person_roles.c.person_id).where(person_roles.c.role == "committee")
                )
            ).scalars()
        )
        lone_hands = set(
            (
                await conn.execute(
                    select(todos.c.assignee_id).where(
                        todos.c.kind == "loan_outcome", todos.c.loan_id == county["added"][-1]
                    )
                )
            ).scalars()
        )
    assert made == expected and asked == before
    assert townships >= 3
    keys = [row[3] for row in made[0]]
    assert any(key.startswith(f"loan_outcome:{county['written_off']}:written_off:") for key in keys)
    for loan_id in county["added"][1:]:  # at the term's end, in every branch
        assert any(key.startswith(f"loan_outcome:{loan_id}:term_end:") for key in keys)
    assert not [row for row in made[0] if row[5] == county["followed"]]  # followed up already
    assert not [row for row in made[0] if row[0] == county["passed"]]  # never to the departed
    assert [row for row in made[0] if row[4] == county["passed"]]  # their loan is followed up
    assert lone_hands & committee  # the township stands in (with the department)

    # A re-run, in one transaction or in batches, asks the same and writes nothing new.
    async with engine.begin() as conn:
        assert await outcomes.open_follow_ups(conn, today=TODAY, now=NOW) == asked
    assert await outcomes.open_follow_ups_batched(engine, today=TODAY, now=NOW) == asked
    async with engine.connect() as conn:
        assert await _written(conn) == made


async def test_officials_read_once_answer_as_people_able(engine: AsyncEngine) -> None:
    await _county(engine)
    acts = ("outcome.follow_up_loan", "loan.write_off", "case.review", "loan.decide")
    async with engine.connect() as conn:
        loaded = {act: await Officials.load(conn, act) for act in acts}
        for loan_id in (await conn.execute(select(loans.c.id))).scalars():
            subject = await outcomes._loan_subject(conn, loan_id)
            for act in acts:
                assert loaded[act].able_for(subject) == await people_able(conn, act, subject)
        assert (
            await conn.execute(
                select(func.count()).select_from(todos).where(todos.c.kind == "loan_outcome")
            )
        ).scalar_one() == 0
