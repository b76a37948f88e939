"""The annual report for the big county (issue 19): 100,000 members, five years of ledger
households, their review outcomes, visits paid from the fund, loans and their follow-ups.

The baseline is one SQL pass over the same rows (a count and a sum per table): the report
must stay a small multiple of merely reading what it sums. Target: ≤ 20 s at reference
speed for the PDF, charts included.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot import db
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.models import loans
from bangfu_bot.outcomes.models import household_outcomes, loan_outcomes
from bangfu_bot.reports.annual import export_annual_report
from bangfu_bot.visits.models import visit_campaigns, visits
from bench.common import Context, stopwatch
from bench.county import seed

SCENARIO = "annual report"
BASELINE = "one SQL pass over the same rows"
MEMBERS = 100_000
YEARS = (2022, 2023, 2024, 2025, 2026)
SHARE = 10  # one member in SHARE is a ledger household
CHUNK = 5_000
NOW = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
CATEGORIES = ("年纪大、没劳力、没退休金", "缺技术、缺资金", "生病", "企业下岗", "其他")
REASONS = (None, None, "project_income", "work_found", "pension", "medical_ended", "moved")


async def run(ctx: Context) -> None:
    """Seed, take the baseline, write the report."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    folder = ctx.workdir / "report"
    shutil.rmtree(folder, ignore_errors=True)
    engine = db.make_engine(f"sqlite+aiosqlite:///{folder}/bangfu.db")
    try:
        await _measure(ctx, engine, members=MEMBERS // (20 if ctx.quick else 1))
    finally:
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


async def _measure(ctx: Context, engine: AsyncEngine, *, members: int) -> None:
    folder = ctx.workdir / "report"
    with stopwatch() as took:
        await db.migrate(engine)
        county = await seed(engine, members, NOW)
        rows = await _history(engine, [pid for pid, _ in county.members])
    print(f"{SCENARIO}: seeded {members:,} members, {rows:,} rows in {took[0]:.1f} s")
    with stopwatch() as took:
        await _one_pass(engine)
    baseline = took[0]
    ctx.add(SCENARIO, BASELINE, baseline, "s")
    with stopwatch() as took:
        await export_annual_report(
            engine, year=YEARS[-1], out=folder / "report.pdf", today=NOW.date()
        )
    ctx.add(
        SCENARIO,
        f"the PDF for {members:,} members, {len(YEARS)} years",
        took[0],
        "s",
        baseline=BASELINE,
        baseline_value=baseline,
    )
    ctx.seconds_target("annual report ≤ 20 s", took[0], 20)


async def _one_pass(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        for table, column in (
            (ledger_entries, ledger_entries.c.annual_income_fen),
            (household_outcomes, household_outcomes.c.income_after_fen),
            (fund_movements, fund_movements.c.amount_fen),
            (visits, visits.c.cash_fen),
            (loans, loans.c.amount_fen),
            (loan_outcomes, loan_outcomes.c.earned_fen),
        ):
            (await conn.execute(select(func.count(), func.sum(column)).select_from(table))).one()


async def _history(engine: AsyncEngine, people_ids: list[int]) -> int:
    households = people_ids[::SHARE]
    written = 0
    async with engine.begin() as conn:
        for year in YEARS:
            for source in ("county_finance", "committee", "party_dues"):
                await conn.execute(
                    insert(fund_movements).values(
                        kind="contribution",
                        amount_fen=5_000_000,
                        source=source,
                        document=f"bench {year}",
                        occurred_on=date(year, 3, 1),
                        recorded_at=NOW,
                    )
                )
            campaign = (
                await conn.execute(
                    insert(visit_campaigns).values(
                        key=f"bench:{year}",
                        occasion="spring_festival",
                        name=f"{year} bench",
                        occasion_on=date(year, 2, 1),
                        deadline=date(year, 2, 1),
                        ledger_year=year,
                        cash_fen=50_000,
                        reminder_days=[],
                        late_reports=False,
                        opened_at=NOW,
                    )
                )
            ).inserted_primary_key[0]
            for start in range(0, len(households), CHUNK):
                chunk = households[start : start + CHUNK]
                ids = []
                for n, person_id in enumerate(chunk, start=start):
                    ids.append(
                        {
                            "person_id": person_id,
                            "year": year,
                            "category": CATEGORIES[n % len(CATEGORIES)],
                            "causes": "",
                            "household": [],
                            "household_size": 1 + n % 4,
                            "annual_income_fen": 100_000 + n % 50 * 1_000,
                            "situation": "",
                            "assistance": [],
                            "status": "active" if REASONS[n % len(REASONS)] is None else "exited",
                            "created_at": NOW,
                        }
                    )
                await conn.execute(insert(ledger_entries), ids)
                entry_ids = dict(
                    (
                        await conn.execute(
                            select(ledger_entries.c.person_id, ledger_entries.c.id).where(
                                ledger_entries.c.year == year,
                                ledger_entries.c.person_id.in_(chunk),
                            )
                        )
                    ).all()
                )
                await conn.execute(
                    insert(household_outcomes),
                    [
                        {
                            "ledger_entry_id": entry_ids[row["person_id"]],
                            "person_id": row["person_id"],
                            "year": year,
                            "household_size": row["household_size"],
                            "income_before_fen": row["annual_income_fen"],
                            "income_after_fen": row["annual_income_fen"] + 30_000,
                            "income_by_source": {},
                            "continued": row["status"] == "active",
                            "out_of_hardship": row["status"] != "active",
                            "reason": REASONS[n % len(REASONS)],
                            "recorded_at": NOW,
                        }
                        for n, row in enumerate(ids, start=start)
                    ],
                )
                await conn.execute(
                    insert(visits),
                    [
                        {
                            "campaign_id": campaign,
                            "person_id": person_id,
                            "source": "ledger",
                            "assigned_as": "nobody",
                            "visited_on": date(year, 1, 28),
                            "cash_fen": 50_000,
                        }
                        for person_id in chunk
                    ],
                )
                await conn.execute(
                    insert(fund_movements),
                    [
                        {
                            "kind": "relief",
                            "amount_fen": 50_000,
                            "document": "bench",
                            "occurred_on": date(year, 1, 28),
                            "recorded_at": NOW,
                        }
                        for _ in chunk
                    ],
                )
                written += 4 * len(chunk)
            borrowers = households[: len(households) // 5]
            await conn.execute(
                insert(loans),
                [
                    {
                        "person_id": person_id,
                        "status": "repaid",
                        "amount_fen": 400_000,
                        "project": ("生猪养殖", "烤烟种植", "食用菌种植")[n % 3],
                        "earnings": "",
                        "schedule_kind": "bullet",
                        "term_years": 2,
                        "annual_rate_bp": 435,
                        "disbursed_on": date(year, 4, 1),
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for n, person_id in enumerate(borrowers)
                ],
            )
            written += len(borrowers)
    return written
