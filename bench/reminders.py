"""The daily loan-repayment reminder scan over a big book of loans (`loans.jobs.remind`).

1,000,000 instalments over 250,000 disbursed loans (4 yearly instalments each, 5 loans per
member of a 50,000-member county), arranged so that 50,000 instalments owe a reminder
today: a fifth of the loans has its current instalment due within 30 days or overdue by up
to 31 days (secretary copies from 7 days, guarantor calls at 30), the rest is paid up with
the next instalment further than 30 days away. Measured: the first scan (≤ 20 s; it also
works out every loan's marker, which a county's first scan after the upgrade does once),
an immediate re-run (≤ 2 s, and it must add nothing), and the next day's scan (markers
kept: the everyday case; no target), each against one plain SQL pass over the same
instalments table through the same engine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot import db
from bangfu_bot.loans.jobs import remind
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.loans.schedule import anniversary, interest
from bangfu_bot.members.models import person_roles
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from bench.common import Context, stopwatch
from bench.county import BigCounty, seed

SCENARIO = "reminders"
BASELINE = "one SQL pass over the instalments"
TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # nine in the morning in the county
CALL_DAYS = 30
MEMBERS, LOANS_PER_MEMBER, TERM = 50_000, 5, 4
AMOUNT_FEN, RATE_BP = 500_000, 435
DUE_EVERY = 5  # one loan in five owes a reminder today
# Where a due loan's current instalment stands, in days from today: ten within the month
# ahead (30, 7, 1 days before and on the day, and catch-up cases in between), ten behind.
DUE_OFFSETS = (30, 25, 20, 14, 7, 5, 3, 1, 0, 0, -1, -2, -3, -5, -7, -8, -10, -14, -20, -31)
CHUNK = 1_000


async def run(ctx: Context) -> None:
    """Seed, take the baseline, scan, scan again."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    folder = ctx.workdir / "reminders"
    shutil.rmtree(folder, ignore_errors=True)
    engine = db.make_engine(f"sqlite+aiosqlite:///{folder}/bangfu.db")
    try:
        await _measure(ctx, engine, members=MEMBERS // (20 if ctx.quick else 1))
    finally:
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


async def _measure(ctx: Context, engine: AsyncEngine, *, members: int) -> None:
    with stopwatch() as took:
        await db.migrate(engine)
        county = await seed(engine, members, NOW)
        await _give_roles(engine, county)
        due = await _lend(engine, county)
    count = await _count(engine, instalments)
    print(
        f"{SCENARIO}: seeded {members:,} members, {count:,} instalments "
        f"({due:,} owing a reminder today) in {took[0]:.1f} s"
    )
    baseline = await _baseline(engine)
    ctx.add(SCENARIO, BASELINE, baseline, "s")

    first, added = await _scan(engine)
    ctx.add(
        SCENARIO,
        f"first scan of {count:,} instalments, {due:,} due",
        first,
        "s",
        baseline=BASELINE,
        baseline_value=baseline,
    )
    ctx.add(SCENARIO, "rows written by the first scan", added, "rows")
    ctx.seconds_target("reminder scan ≤ 20 s", first, 20)
    reminded = await _member_reminders(engine)
    ctx.target(
        "every due instalment reminded once",
        reminded == due,
        f"{reminded:,} member reminders for {due:,} due instalments",
    )

    again, added_again = await _scan(engine)
    ctx.add(SCENARIO, "immediate re-run", again, "s", baseline=BASELINE, baseline_value=baseline)
    ctx.seconds_target("reminder re-run ≤ 2 s", again, 2)
    ctx.target(
        "reminder re-run creates nothing",
        added_again == 0,
        f"{added_again} rows added by the re-run",
    )
    following, added_following = await _scan(engine, TODAY + timedelta(days=1))
    ctx.add(
        SCENARIO,
        f"the next day's scan ({added_following:,} rows)",
        following,
        "s",
        baseline=BASELINE,
        baseline_value=baseline,
    )
    print(
        f"{SCENARIO}: baseline {baseline:.3f} s, first scan {first:.2f} s "
        f"({added:,} rows), re-run {again:.2f} s ({added_again} rows), next day "
        f"{following:.2f} s ({added_following:,} rows)"
    )


async def _give_roles(engine: AsyncEngine, county: BigCounty) -> None:
    """A secretary in every branch (member n sits in branch n mod branches), a committee
    officer in each township's first branch, two department staff."""
    branches = len(county.branches)
    roles = [(county.members[n][0], "secretary") for n in range(min(branches, len(county.members)))]
    roles += [
        (county.members[n][0], "committee")
        for n in range(branches, min(2 * branches, len(county.members)), 25)
    ]
    roles += [(county.members[-n][0], "department") for n in (1, 2)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(person_roles), [{"person_id": pid, "role": role} for pid, role in roles]
        )


async def _lend(engine: AsyncEngine, county: BigCounty) -> int:
    """Write the loans, their schedules and what was repaid; return how many instalments
    owe a reminder today."""
    people = county.members
    total = len(people) * LOANS_PER_MEMBER
    due = 0
    for start in range(0, total, CHUNK):
        rows = [
            _loan(
                k,
                people[k % len(people)][0],
                county.branches[k % len(people) % len(county.branches)],
            )
            for k in range(start, min(start + CHUNK, total))
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(loans), [row["loan"] for row in rows])
            await conn.execute(insert(instalments), [i for row in rows for i in row["plan"]])
            paid = [row["paid"] for row in rows if row["paid"]]
            if paid:
                await conn.execute(insert(repayments), paid)
        due += sum(row["due"] for row in rows)
    return due


def _loan(k: int, person_id: int, branch_id: int) -> dict[str, Any]:
    """Loan k: its current instalment (1–4) due in `days`; the ones before it repaid."""
    current = 1 + k // DUE_EVERY % TERM
    owes = k % DUE_EVERY == 0
    days = DUE_OFFSETS[k // (DUE_EVERY * TERM) % len(DUE_OFFSETS)] if owes else 31 + k * 7919 % 300
    first_due = anniversary(TODAY + timedelta(days), 1 - current)
    disbursed = anniversary(first_due, -1)
    plan = list(_plan(k + 1, disbursed))
    before = plan[: current - 1]
    paid = None
    if before:
        paid_interest = sum(i["interest_fen"] for i in before)
        paid_principal = sum(i["principal_fen"] for i in before)
        paid = {
            "loan_id": k + 1,
            "amount_fen": paid_interest + paid_principal,
            "interest_fen": paid_interest,
            "principal_fen": paid_principal,
            "paid_on": before[-1]["due_on"],
            "receipt": f"B{k}",
            "recorded_at": NOW,
        }
    loan = {
        "id": k + 1,
        "person_id": person_id,
        "branch_id": branch_id,
        "status": "disbursed",
        "amount_fen": AMOUNT_FEN,
        "project": "生猪养殖",
        "earnings": "年底出栏",
        "schedule_kind": "equal_principal",
        "term_years": TERM,
        "annual_rate_bp": RATE_BP,
        "guarantor": "基准镇财政所",
        "disbursed_on": disbursed,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return {"loan": loan, "plan": plan, "paid": paid, "due": int(owes)}


def _plan(loan_id: int, disbursed: date) -> Iterator[dict[str, Any]]:
    """Equal principal on each anniversary, simple interest on what is outstanding."""
    part, outstanding = AMOUNT_FEN // TERM, AMOUNT_FEN
    for n in range(1, TERM + 1):
        yield {
            "loan_id": loan_id,
            "number": n,
            "due_on": anniversary(disbursed, n),
            "principal_fen": part,
            "interest_fen": interest(outstanding, RATE_BP, 365),
        }
        outstanding -= part


async def _baseline(engine: AsyncEngine) -> float:
    """The best of three plain passes over the instalments (count and sum)."""
    best = float("inf")
    for _ in range(3):
        with stopwatch() as took:
            async with engine.connect() as conn:
                await conn.execute(
                    select(
                        func.count(),
                        func.sum(instalments.c.principal_fen + instalments.c.interest_fen),
                    )
                )
        best = min(best, took[0])
    return best


async def _scan(engine: AsyncEngine, day: date = TODAY) -> tuple[float, int]:
    """One reminder run in its own transaction, as the daily job runs it: seconds, and the
    outbox rows and to-dos it added."""
    before = await _count(engine, outbox) + await _count(engine, todos)
    with stopwatch() as took:
        async with engine.begin() as conn:
            await remind(conn, now=NOW + (day - TODAY), today=day, call_days=CALL_DAYS)
    after = await _count(engine, outbox) + await _count(engine, todos)
    return took[0], after - before


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _member_reminders(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        outbox.c.kind == "case",
                        outbox.c.idempotency_key.like("loan:%"),
                        outbox.c.idempotency_key.not_like("%:copy:%"),
                    )
                )
            ).scalar_one()
        )
