"""走访 on the desk: progress by township and branch against the deadline, and who has not
been visited yet."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.reports.visits import Progress, campaign_list, campaign_view
from bangfu_bot.visits.models import visit_campaigns, visits
from tests.ledger.test_export import (
    NOW,
    County,
    county,  # noqa: F401  (the ledger's two-township county)
)

TODAY = date(2027, 1, 29)  # three days before the deadline


async def a_campaign(engine: AsyncEngine, county: County) -> int:
    """2027年春节走访慰问: all four households listed; 王建国 and 刘德明 visited."""
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(visit_campaigns).values(
                key="spring_festival:2027-02-06",
                occasion="spring_festival",
                name="2027年春节走访慰问",
                occasion_on=date(2027, 2, 6),
                deadline=date(2027, 2, 1),
                ledger_year=2026,
                cash_fen=50_000,
                goods="米一袋、油一桶",
                reminder_days=[14, 7, 3],
                late_reports=True,
                opened_at=NOW,
            )
        )
        campaign = int(result.inserted_primary_key[0])
        tree = county.tree
        branches = {
            "王建国": tree.branch,
            "张桂兰": tree.other_branch,
            "陈志强": tree.branch,
            "刘德明": county.baishui,
        }
        for name, branch in branches.items():
            done = name in ("王建国", "刘德明")
            await conn.execute(
                insert(visits).values(
                    campaign_id=campaign,
                    person_id=county.people[name],
                    branch_id=branch,
                    source="ledger",
                    assigned_as="paired_cadre" if done else "nobody",
                    visited_on=date(2027, 1, 20) if done else None,
                    cash_fen=50_000 if done else None,
                )
            )
    return campaign


async def test_the_campaign_list_shows_progress_against_the_deadline(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    campaign = await a_campaign(engine, county)

    page = await campaign_list(session, today=TODAY)

    (row,) = page.rows
    assert (row.campaign_id, row.households, row.visited, row.days_left) == (campaign, 4, 2, 3)
    assert row.cash_given_fen == 100_000 and not row.done
    qingshan = await campaign_list(session, today=TODAY, township_id=county.tree.committee)
    assert (qingshan.rows[0].households, qingshan.rows[0].visited) == (3, 1)


async def test_a_campaign_by_township_and_branch_with_who_is_left(
    engine: AsyncEngine, session: AsyncSession, county: County, baishui: int
) -> None:
    campaign = await a_campaign(engine, county)

    view = await campaign_view(session, campaign, today=TODAY)

    assert view is not None
    assert view.by_township == (
        Progress(baishui, "白水镇党委", "白水镇党委", 1, 1),
        Progress(county.tree.committee, "青山镇党委", "青山镇党委", 3, 1),
    )
    assert [(line.name, line.households, line.visited) for line in view.by_branch] == [
        ("白水村党支部", 1, 1),
        ("李家村党支部", 1, 0),
        ("桃源村党支部", 2, 1),
    ]
    assert view.pending_total == 2
    assert {(p.name, p.branch, p.phone) for p in view.pending} == {
        ("张桂兰", "李家村党支部", "138****8000"),
        ("陈志强", "桃源村党支部", "138****8000"),
    }


async def test_a_secretary_sees_their_branch_only(
    engine: AsyncEngine, session: AsyncSession, county: County
) -> None:
    campaign = await a_campaign(engine, county)

    view = await campaign_view(session, campaign, today=TODAY, branch_id=county.tree.other_branch)

    assert view is not None
    assert [p.name for p in view.pending] == ["张桂兰"]
    assert (view.campaign.households, view.campaign.visited) == (1, 0)
    assert await campaign_view(session, campaign + 1, today=TODAY) is None
