"""Two years of the demo county's history before this one, so the annual report has three
years side by side: the years' plans, households in the ledger and what came of them at
each review, Spring Festival and July 1st visits paid from the fund, and trainings with
their sign-ups and sign-ins.

The households of the past years are members with no case of their own (the ledger of the
years before the bot was used, kept as entries without a case); all of them had left the
ledger by the last review, so this year's ledger is the one `county.py` seeds. Relief goes
through `fund.service.record`, so the fund still reconciles to the fen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.broadcasts.models import broadcasts, signups
from bangfu_bot.cases.models import cases
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.fund.enums import Movement
from bangfu_bot.fund.service import record
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.models import loans
from bangfu_bot.members.models import people, person_roles
from bangfu_bot.outcomes.models import household_outcomes, loan_outcomes, training_attendance
from bangfu_bot.outcomes.service import OUT_OF_HARDSHIP, Plan, set_plan
from bangfu_bot.texts import texts
from bangfu_bot.visits.models import visit_campaigns, visits

_T = texts("bangfu_bot.seed")
PER_BRANCH = 2  # past households per branch
SKIP = 14  # the first members of a branch stay free for the personas and the cases
CATEGORIES = ("history_old", "history_skills", "history_illness", "history_laid_off")
# What the first review (two years ago) found: None continues; the rest left.
FIRST_REVIEW = (None, None, None, "project_income", None, None, "work_found", None) * 2
# And the second (last year): everyone left, for these reasons in turn (one's income fell).
SECOND_REVIEW = ("project_income", "work_found", "pension", "medical_ended", "moved", "other")
PLANS = {
    # years before the seed's year → (raise by source in yuan, fund size, loan members,
    # visit budget, trainings)
    2: (
        {"county_finance": 50_000, "committee": 20_000, "party_dues": 15_000},
        370_000,
        30,
        20_000,
        2,
    ),
    1: (
        {"county_finance": 50_000, "committee": 20_000, "party_dues": 12_000, "donation": 10_000},
        470_000,
        40,
        25_000,
        3,
    ),
    0: (
        {
            "county_finance": 50_000,
            "party_dues": 12_000,
            "donation": 10_000,
            "welfare_fund": 20_000,
        },
        600_000,
        50,
        30_000,
        4,
    ),
}


async def seed_history(conn: AsyncConnection, *, year: int, now: datetime, tz: ZoneInfo) -> None:
    """Insert the two years before `year` (and this year's plan, visits and trainings)."""
    for back, (sources, size, members, budget, trainings) in PLANS.items():
        await set_plan(
            conn,
            plan=Plan(
                year=year - back,
                raise_fen={k: v * 100 for k, v in sources.items()},
                fund_size_fen=size * 100,
                loan_members=members,
                visit_budget_fen=budget * 100,
                trainings=trainings,
            ),
            actor=None,
            channel="cli",
            now=now,
        )
    households = await _past_households(conn)
    first, second = year - 2, year - 1
    continuing = []
    for index, (person_id, branch_id) in enumerate(households):
        category = _T[CATEGORIES[index % len(CATEGORIES)]]
        size = 2 + index % 3
        income = 150_000 * size + 10_000 * index
        reason = FIRST_REVIEW[index % len(FIRST_REVIEW)]
        entry = await _entry(conn, person_id, first, category, size, income, reason, tz)
        after = income + (40_000 if reason else 15_000) * size
        await _outcome(conn, entry, person_id, first, size, income, after, reason, tz)
        if reason is None:
            continuing.append((person_id, branch_id, category, size, after))
    for index, (person_id, _branch_id, category, size, income) in enumerate(continuing):
        reason = SECOND_REVIEW[index % len(SECOND_REVIEW)]
        entry = await _entry(conn, person_id, second, category, size, income, reason, tz)
        # One household's income fell (illness in the family), and still left (moved).
        after = income - 20_000 if reason == "moved" else income + 60_000 * size
        await _outcome(conn, entry, person_id, second, size, income, after, reason, tz)
    today = now.astimezone(tz).date()
    await _visits(conn, year, tz, households, continuing, today)
    await _trainings(conn, year, tz, today)
    await _loan_outcomes(conn, now)


async def _past_households(conn: AsyncConnection) -> list[tuple[int, int]]:
    """Plain members without a case or a ledger entry, `PER_BRANCH` from each branch."""
    plain = (
        select(people.c.id, people.c.branch_id)
        .where(
            people.c.branch_id.is_not(None),
            people.c.joined_on >= date(1949, 10, 1),
            people.c.id.not_in(select(cases.c.person_id)),
            people.c.id.not_in(select(ledger_entries.c.person_id)),
            people.c.id.not_in(
                select(person_roles.c.person_id).where(person_roles.c.role != "member")
            ),
        )
        .order_by(people.c.branch_id, people.c.id)
    )
    by_branch: dict[int, list[int]] = {}
    for person_id, branch_id in await conn.execute(plain):
        by_branch.setdefault(int(branch_id), []).append(int(person_id))
    return [
        (person_id, branch_id)
        for branch_id, ids in sorted(by_branch.items())
        for person_id in ids[SKIP : SKIP + PER_BRANCH]
    ]


def _at(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(10), tz).astimezone(UTC)


async def _entry(
    conn: AsyncConnection,
    person_id: int,
    year: int,
    category: str,
    size: int,
    income: int,
    reason: str | None,
    tz: ZoneInfo,
) -> int:
    reviewed = _at(date(year, 12, 10), tz)
    result = await conn.execute(
        insert(ledger_entries).values(
            person_id=person_id,
            year=year,
            case_id=None,
            category=category,
            causes=category,
            household=[],
            household_size=size,
            annual_income_fen=income,
            situation=_T["history_situation"],
            paired_cadre=None,
            assistance=[],
            status="active" if reason is None else "exited",
            exit_reason=None if reason is None else _T[f"history_reason_{reason}"],
            created_at=_at(date(year, 1, 5), tz),
            exited_at=None if reason is None else reviewed,
            review_opened_at=_at(date(year, 12, 1), tz),
            reviewed_at=reviewed,
        )
    )
    return inserted_id(result)


async def _outcome(
    conn: AsyncConnection,
    entry_id: int,
    person_id: int,
    year: int,
    size: int,
    before: int,
    after: int,
    reason: str | None,
    tz: ZoneInfo,
) -> None:
    await conn.execute(
        insert(household_outcomes).values(
            ledger_entry_id=entry_id,
            person_id=person_id,
            year=year,
            household_size=size,
            income_before_fen=before,
            income_after_fen=after,
            income_by_source={"farming": after // 2, "wages": after - after // 2},
            continued=reason is None,
            out_of_hardship=reason in OUT_OF_HARDSHIP,
            reason=reason,
            recorded_by=None,
            recorded_at=_at(date(year, 12, 10), tz),
        )
    )


async def _visits(
    conn: AsyncConnection,
    year: int,
    tz: ZoneInfo,
    households: list[tuple[int, int]],
    continuing: list[tuple[int, int, str, int, int]],
    today: date,
) -> None:
    """Spring Festival and July 1st rounds of the past years, every visit reported."""
    rounds = [
        (year - 2, "spring_festival", date(year - 2, 2, 5), households, 50_000),
        (year - 2, "july_first", date(year - 2, 6, 28), households, 30_000),
        (
            year - 1,
            "spring_festival",
            date(year - 1, 1, 24),
            [(p, b) for p, b, *_ in continuing],
            60_000,
        ),
        (
            year - 1,
            "july_first",
            date(year - 1, 6, 27),
            [(p, b) for p, b, *_ in continuing],
            30_000,
        ),
    ]
    current = [
        (int(person_id), int(branch_id))
        for person_id, branch_id in await conn.execute(
            select(ledger_entries.c.person_id, people.c.branch_id)
            .select_from(ledger_entries.join(people, people.c.id == ledger_entries.c.person_id))
            .where(ledger_entries.c.year == year, ledger_entries.c.status == "active")
            .order_by(ledger_entries.c.person_id)
        )
    ]
    # This year's rounds so far, for this year's ledger (the seed's clock is in November).
    rounds += [
        (year, "spring_festival", date(year, 2, 12), current, 60_000),
        (year, "july_first", date(year, 6, 29), current, 30_000),
    ]
    for ledger_year, occasion, day, listed, cash in rounds:
        if day >= today:  # early in the year: only what has happened
            continue
        campaign_id = inserted_id(
            await conn.execute(
                insert(visit_campaigns).values(
                    key=f"history:{occasion}:{day.isoformat()}",
                    occasion=occasion,
                    name=_T[f"history_campaign_{occasion}"].format(year=day.year),
                    occasion_on=day,
                    deadline=day,
                    ledger_year=ledger_year,
                    cash_fen=cash,
                    goods=None,
                    reminder_days=[],
                    late_reports=False,
                    opened_by=None,
                    opened_at=_at(day.replace(day=1), tz),
                )
            )
        )
        for person_id, branch_id in listed:
            visit_id = inserted_id(
                await conn.execute(
                    insert(visits).values(
                        campaign_id=campaign_id,
                        person_id=person_id,
                        branch_id=branch_id,
                        source="ledger",
                        assignee_id=None,
                        assigned_as="nobody",
                        visited_on=day,
                        cash_fen=cash,
                        reported_at=_at(day, tz),
                    )
                )
            )
            await record(
                conn,
                kind=Movement.RELIEF,
                amount_fen=cash,
                document=_T["history_relief_document"].format(id=visit_id),
                occurred_on=day,
                now=_at(day, tz),
                visit_id=visit_id,
            )


async def _trainings(conn: AsyncConnection, year: int, tz: ZoneInfo, today: date) -> None:
    """Training notices of each year, with sign-ups (报名) and sign-ins (签到)."""
    members = [
        int(i)
        for i in (
            await conn.execute(
                select(people.c.id)
                .where(people.c.branch_id.is_not(None))
                .order_by(people.c.id)
                .limit(40)
            )
        ).scalars()
    ]
    sessions = [
        (year - 2, 4, 12, 9),
        (year - 1, 3, 15, 11),
        (year - 1, 9, 14, 12),
        (year, 4, 18, 15),
    ]
    for number, (y, month, signed, came) in enumerate(sessions, start=1):
        if date(y, month, 10) >= today:
            continue
        at = _at(date(y, month, 10), tz)
        broadcast_id = inserted_id(
            await conn.execute(
                insert(broadcasts).values(
                    author_id=None,
                    text=_T["history_training"].format(year=y, month=month),
                    audience="everyone",
                    training=True,
                    status="sent",
                    recipients=0,
                    mass_msg_ids="",
                    mass_sent=0,
                    mass_errors=0,
                    created_at=at,
                    sent_at=at,
                )
            )
        )
        chosen = members[number : number + signed]
        for person_id in chosen:
            await conn.execute(
                insert(signups).values(broadcast_id=broadcast_id, person_id=person_id, at=at)
            )
        for person_id in chosen[:came]:
            await conn.execute(
                insert(training_attendance).values(
                    broadcast_id=broadcast_id, person_id=person_id, signed_in_at=at
                )
            )


async def _loan_outcomes(conn: AsyncConnection, now: datetime) -> None:
    """The repaid loan's project was followed up: it earned a little more than expected."""
    for loan_id, amount in await conn.execute(
        select(loans.c.id, loans.c.amount_fen).where(loans.c.status == "repaid")
    ):
        await conn.execute(
            insert(loan_outcomes).values(
                loan_id=loan_id,
                occasion="repaid",
                horizon="short",
                expected_fen=1_200_000,
                earned_fen=1_350_000 + int(amount) // 100,
                note=None,
                recorded_by=None,
                recorded_at=now,
            )
        )
