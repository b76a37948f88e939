"""Consolation visits (走访慰问): open a campaign, hand out the lists, remind, record visits.

A festival campaign lists every household of the year's ledger (active entries) and every
member who joined before 1949, never a member whose latest ledger entry is exited. Each
household goes to its paired cadre when that name is one person on the roster, else to its
branch secretary. A reported visit's cash leaves the fund as a relief movement in the same
transaction, so the fund and the visit list can never disagree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import COUNTY_MATTER, Refused, Subject, acting_role, authorize, check
from bangfu_bot.common.dates import chinese_date, month_day
from bangfu_bot.common.money import yuan
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.fund import service as fund
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.members.service import Person, openids_of, secretaries_of
from bangfu_bot.notify.intents import add_todo, tell
from bangfu_bot.notify.templates import Facts
from bangfu_bot.texts import speaker
from bangfu_bot.todos.service import finish_todo
from bangfu_bot.visits.enums import FESTIVALS, AssignedAs, Occasion, Source
from bangfu_bot.visits.festivals import default_deadline, festival_after
from bangfu_bot.visits.models import visit_campaigns, visit_sends, visits

PRE_1949 = date(1949, 10, 1)  # 建国前老党员: joined before the founding of the PRC
LIST_LIMIT = 20  # names shown in a pushed list; the rest are counted
TODO_KIND = "visit"  # an assignee's list; opening it starts the report flow
WATCH_KIND = "visit_watch"  # a township officer's not-visited list


say = speaker("bangfu_bot.visits")


class VisitRefused(Refused):
    """A campaign or visit that cannot be recorded; `message` is Chinese for the user."""


@dataclass(frozen=True)
class Rules:
    """What a new campaign is configured with (stored on the campaign when it opens)."""

    reminder_days: tuple[int, ...] = (14, 7, 3)
    late_reports: bool = False  # whether visits may be reported after the deadline
    event_days: int = 7  # an event-triggered visit is due within this many days
    watch_days: int = 7  # township officers get the not-visited list this long before


long_day = chinese_date
short_day = month_day


def _names(names: list[str], limit: int = LIST_LIMIT) -> str:
    shown = say("names_joiner").join(names[:limit])
    return shown + say("and_more", count=len(names)) if len(names) > limit else shown


def _today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


# --- planning a campaign -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A campaign's name and dates, decided before anything is written."""

    occasion: Occasion
    name: str
    occasion_on: date
    deadline: date

    @property
    def key(self) -> str:
        """One campaign per festival date (and per name, for custom occasions)."""
        if self.occasion == Occasion.CUSTOM:
            return f"custom:{self.occasion_on.isoformat()}:{self.name}"
        return f"{self.occasion}:{self.occasion_on.isoformat()}"


def plan_campaign(
    occasion: Occasion,
    today: date,
    *,
    occasion_on: date | None = None,
    name: str | None = None,
    deadline: date | None = None,
) -> Plan:
    """Work out a campaign's festival date, deadline and name; refuse impossible dates."""
    if occasion in FESTIVALS:
        occasion_on = festival_after(occasion, today)
        name = name or say(
            "campaign_name", year=occasion_on.year, occasion=say(f"occasion_{occasion}")
        )
    elif occasion == Occasion.CUSTOM:
        if occasion_on is None or not (name or "").strip():
            raise VisitRefused(say("custom_needs_name_and_date"), fixable=True)
        name = str(name).strip()
    else:
        raise ValueError("event visits are opened with open_event_visit")
    if occasion_on < today:
        raise VisitRefused(say("occasion_passed", day=long_day(occasion_on)), fixable=True)
    deadline = deadline or default_deadline(occasion_on)
    if deadline > occasion_on:
        raise VisitRefused(
            say("deadline_after_occasion", deadline=long_day(deadline), day=long_day(occasion_on)),
            fixable=True,
        )
    if deadline < today:
        raise VisitRefused(say("deadline_in_past", deadline=long_day(deadline)), fixable=True)
    return Plan(occasion=occasion, name=name, occasion_on=occasion_on, deadline=deadline)


# --- the visit list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Household:
    """A member whose household is to be visited."""

    person_id: int
    name: str
    branch_id: int | None
    source: Source
    paired_cadre: str | None


async def visit_list(conn: AsyncConnection, *, ledger_year: int) -> list[Household]:
    """The year's active ledger households plus every pre-1949 member; never the exited."""
    latest: dict[int, Any] = {}
    for row in await conn.execute(
        select(
            ledger_entries.c.person_id,
            ledger_entries.c.year,
            ledger_entries.c.status,
            ledger_entries.c.paired_cadre,
        ).where(ledger_entries.c.year <= ledger_year)
    ):
        if row.person_id not in latest or row.year > latest[row.person_id].year:
            latest[row.person_id] = row
    # Exited means the latest entry says so: a pre-1949 member who left the ledger (died,
    # moved away) is not visited, one who never was in it is.
    in_ledger = {
        person_id
        for person_id, row in latest.items()
        if row.year == ledger_year and row.status == "active"
    }
    exited = {person_id for person_id, row in latest.items() if row.status == "exited"}
    candidates = await conn.execute(
        select(people.c.id, people.c.name, people.c.branch_id, people.c.joined_on)
        .where(people.c.active.is_(True), people.c.passed_away_on.is_(None))
        .where(
            people.c.id.in_(
                select(ledger_entries.c.person_id).where(
                    ledger_entries.c.year == ledger_year, ledger_entries.c.status == "active"
                )
            )
            | (people.c.joined_on < PRE_1949)
        )
        .order_by(people.c.branch_id, people.c.id)
    )
    households = []
    for row in candidates:
        if row.id in exited:
            continue
        source = Source.LEDGER if row.id in in_ledger else Source.PRE_1949
        paired = latest[row.id].paired_cadre if row.id in in_ledger else None
        households.append(
            Household(
                person_id=row.id,
                name=row.name,
                branch_id=row.branch_id,
                source=source,
                paired_cadre=paired,
            )
        )
    return households


class _Assigner:
    """Finds who visits a household: the paired cadre if on the roster, else the secretary."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.cadres: dict[str, list[Any]] = {}
        self.parents: dict[int, int | None] = {}
        self.secretaries: dict[int | None, list[int]] = {}

    async def load(self, households: list[Household]) -> None:
        names = {cadre for h in households if (cadre := (h.paired_cadre or "").strip())}
        if names:
            rows = await self.conn.execute(
                select(people.c.id, people.c.name, people.c.branch_id).where(
                    people.c.active.is_(True), people.c.name.in_(names)
                )
            )
            for row in rows:
                self.cadres.setdefault(row.name, []).append(row)
        self.parents = {
            row.id: row.parent_id
            for row in await self.conn.execute(
                select(organisations.c.id, organisations.c.parent_id)
            )
        }

    async def assign(self, household: Household) -> tuple[int | None, AssignedAs]:
        cadre = self._cadre(household)
        if cadre is not None:
            return cadre, AssignedAs.PAIRED_CADRE
        if household.branch_id not in self.secretaries:
            self.secretaries[household.branch_id] = await secretaries_of(
                self.conn, household.branch_id
            )
        # A secretary in hardship is visited by another secretary of the branch, if any.
        others = [s for s in self.secretaries[household.branch_id] if s != household.person_id]
        if others:
            return others[0], AssignedAs.SECRETARY
        return None, AssignedAs.NOBODY

    def _cadre(self, household: Household) -> int | None:
        name = (household.paired_cadre or "").strip()
        found = [row for row in self.cadres.get(name, []) if row.id != household.person_id]
        if len(found) > 1:
            # Two people share the name: the one in the household's branch, else township.
            township = self.parents.get(household.branch_id or 0)
            for narrowed in (
                [row for row in found if row.branch_id == household.branch_id],
                [row for row in found if self.parents.get(row.branch_id or 0) == township],
            ):
                if len(narrowed) == 1:
                    return int(narrowed[0].id)
            return None
        return int(found[0].id) if found else None


# --- opening -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A campaign just opened: its id, counts and what to tell the person who opened it."""

    campaign_id: int
    name: str
    occasion_on: date
    deadline: date
    households: int
    pre_1949: int
    assignees: int
    unassigned: int
    text: str


async def open_campaign(
    conn: AsyncConnection,
    *,
    occasion: Occasion,
    now: datetime,
    tz: ZoneInfo,
    cash_fen: int,
    goods: str | None = None,
    occasion_on: date | None = None,
    name: str | None = None,
    deadline: date | None = None,
    ledger_year: int | None = None,
    opened_by: Person | None = None,
    rules: Rules = Rules(),
) -> Opened:
    """Open a festival or custom campaign: build the list, assign it, give out the lists.
    `opened_by`: the department staff member (None: the command line, as the system)."""
    check(
        VisitRefused,
        "visit.open_campaign",
        opened_by,
        "department" if opened_by else "system",
        COUNTY_MATTER,
    )
    today = _today(now, tz)
    plan = plan_campaign(occasion, today, occasion_on=occasion_on, name=name, deadline=deadline)
    if cash_fen < 0:
        raise VisitRefused(say("cash_negative"), fixable=True)
    existing = (
        await conn.execute(select(visit_campaigns.c.name).where(visit_campaigns.c.key == plan.key))
    ).scalar()
    if existing is not None:
        raise VisitRefused(say("campaign_exists", name=existing))
    year = ledger_year or today.year
    households = await visit_list(conn, ledger_year=year)
    if not households:
        raise VisitRefused(say("list_empty", year=year))
    campaign_id = inserted_id(
        await conn.execute(
            insert(visit_campaigns).values(
                key=plan.key,
                occasion=plan.occasion,
                name=plan.name,
                occasion_on=plan.occasion_on,
                deadline=plan.deadline,
                ledger_year=year,
                cash_fen=cash_fen,
                goods=(goods or "").strip() or None,
                reminder_days=sorted(set(rules.reminder_days), reverse=True),
                late_reports=rules.late_reports,
                opened_by=opened_by.id if opened_by else None,
                opened_at=now,
            )
        )
    )
    assigner = _Assigner(conn)
    await assigner.load(households)
    assigned = []
    for household in households:
        assignee, how = await assigner.assign(household)
        assigned.append(
            {
                "campaign_id": campaign_id,
                "person_id": household.person_id,
                "branch_id": household.branch_id,
                "source": household.source,
                "assignee_id": assignee,
                "assigned_as": how,
            }
        )
    await conn.execute(insert(visits), assigned)
    assignees = await _hand_out_lists(conn, campaign_id=campaign_id, now=now)
    unassigned = sum(1 for row in assigned if row["assignee_id"] is None)
    pre_1949 = sum(1 for household in households if household.source == Source.PRE_1949)
    text = say(
        "campaign_opened",
        name=plan.name,
        day=long_day(plan.occasion_on),
        deadline=long_day(plan.deadline),
        count=len(households),
        pre_1949=pre_1949,
        assignees=assignees,
        standard=standard_text(cash_fen, goods),
    )
    if unassigned:
        text += "\n" + say("campaign_unassigned", count=unassigned)
    return Opened(
        campaign_id=campaign_id,
        name=plan.name,
        occasion_on=plan.occasion_on,
        deadline=plan.deadline,
        households=len(households),
        pre_1949=pre_1949,
        assignees=assignees,
        unassigned=unassigned,
        text=text,
    )


def standard_text(cash_fen: int, goods: str | None) -> str:
    """每户慰问金 500元，慰问品：米一袋."""
    cash = yuan(cash_fen) if cash_fen else say("none")
    return say("standard", cash=cash, goods=(goods or "").strip() or say("none"))


async def _hand_out_lists(conn: AsyncConnection, *, campaign_id: int, now: datetime) -> int:
    """Each assignee gets one to-do (and its push) listing their households."""
    campaign = await campaign_row(conn, campaign_id)
    by_assignee = await _unvisited_by_assignee(conn, campaign_id)
    for assignee_id, names in by_assignee.items():
        text = say(
            "list_todo",
            campaign=campaign.name,
            deadline=short_day(campaign.deadline),
            count=len(names),
            names=_names(names),
        )
        todo_id = await add_todo(
            conn,
            assignee_id=assignee_id,
            kind=TODO_KIND,
            text=text,
            now=now,
            key=f"visit:{campaign_id}:list:{assignee_id}",
        )
        await _sent(conn, campaign_id, assignee_id, "list", now, todo_id)
    return len(by_assignee)


async def _sent(
    conn: AsyncConnection,
    campaign_id: int,
    person_id: int,
    what: str,
    now: datetime,
    todo_id: int | None = None,
) -> None:
    await conn.execute(
        insert(visit_sends).values(
            campaign_id=campaign_id, person_id=person_id, what=what, todo_id=todo_id, sent_at=now
        )
    )


async def _was_sent(conn: AsyncConnection, campaign_id: int, person_id: int, what: str) -> bool:
    return (
        await conn.execute(
            select(visit_sends.c.sent_at).where(
                visit_sends.c.campaign_id == campaign_id,
                visit_sends.c.person_id == person_id,
                visit_sends.c.what == what,
            )
        )
    ).first() is not None


async def campaign_row(conn: AsyncConnection, campaign_id: int) -> Any:
    """One campaign (None if there is no such id)."""
    return (
        await conn.execute(select(visit_campaigns).where(visit_campaigns.c.id == campaign_id))
    ).first()


def _branch_label(name: str, branch: str | None) -> str:
    return say("household_in_branch", name=name, branch=branch) if branch else name


def _labels(households: list[tuple[str, str | None]]) -> list[str]:
    """Names, with the branch only when the households are in more than one."""
    several = len({branch for _, branch in households}) > 1
    return [_branch_label(name, branch if several else None) for name, branch in households]


async def _unvisited_by_assignee(conn: AsyncConnection, campaign_id: int) -> dict[int, list[str]]:
    branch = organisations.alias("branch")
    rows = await conn.execute(
        select(visits.c.assignee_id, people.c.name, branch.c.name.label("branch"))
        .select_from(
            visits.join(people, people.c.id == visits.c.person_id).outerjoin(
                branch, branch.c.id == visits.c.branch_id
            )
        )
        .where(
            visits.c.campaign_id == campaign_id,
            visits.c.visited_on.is_(None),
            visits.c.assignee_id.is_not(None),
        )
        .order_by(visits.c.assignee_id, visits.c.id)
    )
    grouped: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for row in rows:
        grouped[int(row.assignee_id)].append((row.name, row.branch))
    return {assignee: _labels(households) for assignee, households in grouped.items()}


# --- event-triggered visits ----------------------------------------------------------------------


async def open_event_visit(
    conn: AsyncConnection,
    *,
    secretary: Person,
    member_name: str,
    event_kind: str,
    situation: str | None,
    cash_fen: int,
    goods: str | None,
    now: datetime,
    tz: ZoneInfo,
    rules: Rules = Rules(),
) -> str:
    """临时慰问: a secretary opens a visit to one household of the branch, assigned to them."""
    today = _today(now, tz)
    found = list(
        (
            await conn.execute(
                select(people.c.id, people.c.name).where(
                    people.c.branch_id == secretary.branch_id,
                    people.c.active.is_(True),
                    people.c.name == member_name.strip(),
                )
            )
        ).all()
    )
    if not found or secretary.branch_id is None:
        raise VisitRefused(say("event_not_found", name=member_name), fixable=True)
    if len(found) > 1:
        raise VisitRefused(say("event_ambiguous", name=member_name, count=len(found)))
    member = found[0]
    if member.id == secretary.id:
        raise VisitRefused(say("event_own_household"))
    household = Subject(
        person_id=member.id, branch_id=secretary.branch_id, committee_id=secretary.committee_id
    )
    check(
        VisitRefused,
        "visit.open_event",
        secretary,
        acting_role("visit.open_event", secretary, household),
        household,
    )
    if cash_fen < 0:
        raise VisitRefused(say("cash_negative"), fixable=True)
    still_open = (
        await conn.execute(
            select(visit_campaigns.c.name)
            .select_from(visits.join(visit_campaigns, visit_campaigns.c.id == visits.c.campaign_id))
            .where(
                visits.c.person_id == member.id,
                visits.c.visited_on.is_(None),
                visit_campaigns.c.occasion == Occasion.EVENT,
                visit_campaigns.c.deadline >= today,
            )
        )
    ).scalar()
    if still_open is not None:
        raise VisitRefused(say("event_open_already", name=member.name, campaign=still_open))
    deadline = today + timedelta(days=rules.event_days)
    what, name = event_kind, say("event_campaign_name", name=member.name, kind=event_kind)
    if event_kind == say("choice_event_other"):
        # "其他" names no event: the texts say what the secretary wrote instead.
        brief = (situation or "").strip()
        what = brief if len(brief) <= 20 else brief[:19] + "…"
        what = what or say("event_other")
        name = say("event_campaign_name_other", name=member.name)
    campaign_id = inserted_id(
        await conn.execute(
            insert(visit_campaigns).values(
                key=f"event:{member.id}:{now.isoformat()}",
                occasion=Occasion.EVENT,
                name=name[:60],
                occasion_on=today,
                deadline=deadline,
                ledger_year=today.year,
                cash_fen=cash_fen,
                goods=(goods or "").strip() or None,
                reminder_days=sorted(set(rules.reminder_days), reverse=True),
                late_reports=rules.late_reports,
                event_kind=event_kind,
                situation=situation,
                opened_by=secretary.id,
                opened_at=now,
            )
        )
    )
    await conn.execute(
        insert(visits).values(
            campaign_id=campaign_id,
            person_id=member.id,
            branch_id=secretary.branch_id,
            source=Source.EVENT,
            assignee_id=secretary.id,
            assigned_as=AssignedAs.OPENER,
        )
    )
    # The secretary reads the answer right now: the to-do needs no push of its own.
    todo_id = await add_todo(
        conn,
        assignee_id=secretary.id,
        kind=TODO_KIND,
        subject_id=member.id,
        now=now,
        push=False,
        key=f"visit:{campaign_id}:list:{secretary.id}",
        text=say("event_todo", name=member.name, kind=what, deadline=short_day(deadline)),
    )
    await _sent(conn, campaign_id, secretary.id, "list", now, todo_id)
    return say(
        "event_opened",
        name=member.name,
        kind=what,
        deadline=short_day(deadline),
        standard=standard_text(cash_fen, goods),
    )


# --- reporting a visit ---------------------------------------------------------------------------


async def report_context(
    conn: AsyncConnection, *, reporter: Person, today: date, todo_id: int | None = None
) -> dict[str, Any] | str:
    """The report flow's context (campaign, unvisited households), or why there is none."""
    campaign_id = None
    if todo_id is not None:
        campaign_id = (
            await conn.execute(
                select(visit_sends.c.campaign_id).where(
                    visit_sends.c.todo_id == todo_id, visit_sends.c.person_id == reporter.id
                )
            )
        ).scalar()
        if campaign_id is None:
            return say("nothing_to_visit")
    branch = organisations.alias("branch")
    query = (
        select(visits.c.id, visits.c.campaign_id, people.c.name, branch.c.name.label("branch"))
        .select_from(
            visits.join(people, people.c.id == visits.c.person_id).outerjoin(
                branch, branch.c.id == visits.c.branch_id
            )
        )
        .where(visits.c.assignee_id == reporter.id, visits.c.visited_on.is_(None))
        .order_by(visits.c.id)
    )
    if campaign_id is not None:
        query = query.where(visits.c.campaign_id == campaign_id)
    rows = list(await conn.execute(query))
    if not rows:
        return say("nothing_to_visit")
    by_campaign: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_campaign[int(row.campaign_id)].append(row)
    campaigns = [await campaign_row(conn, key) for key in by_campaign]
    open_ones = sorted(
        (c for c in campaigns if c.deadline >= today or c.late_reports),
        key=lambda c: (c.deadline, c.id),
    )
    if not open_ones:
        latest = max(campaigns, key=lambda c: c.deadline)
        return say("deadline_passed", campaign=latest.name, deadline=long_day(latest.deadline))
    campaign = open_ones[0]
    mine = by_campaign[campaign.id]
    done = (
        (
            await conn.execute(
                select(people.c.name)
                .select_from(visits.join(people, people.c.id == visits.c.person_id))
                .where(
                    visits.c.campaign_id == campaign.id,
                    visits.c.assignee_id == reporter.id,
                    visits.c.visited_on.is_not(None),
                )
            )
        )
        .scalars()
        .all()
    )
    households = "\n".join(
        f"{n}. {label}"
        for n, label in enumerate(_labels([(row.name, row.branch) for row in mine]), start=1)
    )
    others = "".join(
        "\n" + say("other_campaign", campaign=c.name, count=len(by_campaign[c.id]))
        for c in open_ones[1:]
    )
    return {
        "campaign_id": campaign.id,
        "campaign": campaign.name,
        "deadline": short_day(campaign.deadline),
        "left": len(mine),
        "households": households,
        "choices": [[row.id, row.name, row.branch or ""] for row in mine],
        "done": list(done),
        "cash": yuan(campaign.cash_fen) if campaign.cash_fen else say("no_standard"),
        "goods": campaign.goods or say("no_standard"),
        "others": others,
        "cash_fen": int(campaign.cash_fen),
        "goods_text": campaign.goods or "",
    }


def pick_household(
    answer: Any, choices: list[list[Any]], done: Sequence[str] = ()
) -> list[Any] | str:
    """The household an answer names (by number or name), or a text saying what is wrong."""
    text = str(answer or "").strip()
    listed = "\n".join(
        f"{n}. {label}"
        for n, label in enumerate(
            _labels([(name, branch or None) for _, name, branch in choices]), start=1
        )
    )
    numbered = re.fullmatch(r"第?\s*(\d{1,4})\s*[户号个]?", text)
    if numbered:
        number = int(numbered.group(1))
        if 1 <= number <= len(choices):
            return choices[number - 1]
        return say("household_number_unknown", n=number, households=listed)
    matches = [choice for choice in choices if choice[1] == text]
    if len(matches) == 1:
        return matches[0]
    if matches:
        return say("household_ambiguous", name=text, households=listed)
    if text in done:
        return say("household_done", name=text)
    return say("household_unknown", name=text, households=listed)


def _given(answers: dict[str, Any], context: dict[str, Any]) -> tuple[int, str | None]:
    """The cash (fen) and goods a report says were given, the standard ones if so answered."""
    if answers.get("cash_as_planned"):
        cash = int(context.get("cash_fen") or 0)
    else:
        cash = int(answers.get("cash") or 0)
    if answers.get("goods_as_planned"):
        goods = context.get("goods_text") or None
    else:
        goods = answers.get("goods") or None
    return cash, goods


def visit_preview(answers: dict[str, Any], context: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What the summary reads back: whose household, and what leaves the fund."""
    choice = pick_household(
        answers.get("household"), context.get("choices", []), context.get("done", [])
    )
    if isinstance(choice, str):
        return [], [choice]
    cash, goods = _given(answers, context)
    lines = [say("preview_household", household=_branch_label(choice[1], choice[2] or None))]
    lines.append(say("preview_cash", cash=yuan(cash)) if cash else say("preview_no_cash"))
    lines.append(say("preview_goods", goods=goods or say("none")))
    return lines, []


async def report_from_answers(
    conn: AsyncConnection,
    *,
    reporter: Person,
    answers: dict[str, Any],
    context: dict[str, Any],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    """The report flow's final action: resolve the household, then record the visit."""
    choice = pick_household(
        answers.get("household"), context.get("choices", []), context.get("done", [])
    )
    if isinstance(choice, str):
        raise VisitRefused(choice, fixable=True)
    cash, goods = _given(answers, context)
    return await report_visit(
        conn,
        visit_id=int(choice[0]),
        reporter=reporter,
        visited_on=date.fromisoformat(str(answers["visited_on"])),
        cash_fen=cash,
        goods=goods,
        note=answers.get("note"),
        photos=list(answers.get("photo") or []),
        now=now,
        tz=tz,
    )


async def report_visit(
    conn: AsyncConnection,
    *,
    visit_id: int,
    reporter: Person,
    visited_on: date,
    cash_fen: int,
    goods: str | None,
    note: str | None,
    photos: list[str],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    """Record a visit once; its cash is paid from the fund (refused if the fund lacks it)."""
    today = _today(now, tz)
    row = (
        await conn.execute(
            select(
                visits,
                visit_campaigns.c.name.label("campaign"),
                visit_campaigns.c.deadline,
                visit_campaigns.c.late_reports,
                visit_campaigns.c.ledger_year,
                people.c.name.label("household"),
            )
            .select_from(
                visits.join(visit_campaigns, visit_campaigns.c.id == visits.c.campaign_id).join(
                    people, people.c.id == visits.c.person_id
                )
            )
            .where(visits.c.id == visit_id)
        )
    ).first()
    if row is None:
        raise VisitRefused(say("not_yours"))
    try:
        authorize(
            "visit.report",
            reporter,
            "bound",
            Subject(person_id=row.person_id, assignee_id=row.assignee_id),
        )
    except Refused as refused:
        raise VisitRefused(say("not_yours"), refused.reason) from None
    if row.visited_on is not None:
        raise VisitRefused(await _reported_already(conn, row))
    if today > row.deadline and not row.late_reports:
        raise VisitRefused(
            say("deadline_passed", campaign=row.campaign, deadline=long_day(row.deadline))
        )
    if visited_on > today:
        raise VisitRefused(say("visited_in_future"), fixable=True)
    if cash_fen < 0:
        raise VisitRefused(say("cash_negative"), fixable=True)
    # Claim the row first: of two reports racing for one household exactly one matches.
    claimed = await conn.execute(
        update(visits)
        .where(visits.c.id == visit_id, visits.c.visited_on.is_(None))
        .values(
            visited_on=visited_on,
            cash_fen=cash_fen,
            goods=goods,
            note=note,
            photos=photos,
            reported_by=reporter.id,
            reported_at=now,
        )
    )
    if claimed.rowcount != 1:
        raise VisitRefused(say("reported_already_now", name=row.household))
    if cash_fen:
        try:
            movement_id = await fund.record(
                conn,
                kind=fund.Movement.RELIEF,
                amount_fen=cash_fen,
                occurred_on=visited_on,
                document=say(
                    "fund_document", campaign=row.campaign, name=row.household, visit_id=visit_id
                )[:100],
                now=now,
                recorded_by=reporter.id,
                visit_id=visit_id,
            )
        except fund.FundError as error:
            # Undo the claim in this same transaction: no visit without its money.
            await conn.execute(
                update(visits)
                .where(visits.c.id == visit_id)
                .values(
                    visited_on=None,
                    cash_fen=None,
                    goods=None,
                    note=None,
                    photos=None,
                    reported_by=None,
                    reported_at=None,
                )
            )
            raise VisitRefused(say("fund_refused", reason=error.message)) from error
        await conn.execute(
            update(visits).where(visits.c.id == visit_id).values(fund_movement_id=movement_id)
        )
    await _note_in_ledger(
        conn,
        person_id=row.person_id,
        year=row.ledger_year,
        item=say(
            "ledger_item",
            day=long_day(visited_on),
            campaign=row.campaign,
            given=_given_text(cash_fen, goods),
        ),
    )
    left = (await _unvisited_by_assignee(conn, row.campaign_id)).get(reporter.id, [])
    text = say(
        "reported",
        name=row.household,
        day=short_day(visited_on),
        given=_given_text(cash_fen, goods),
    )
    if cash_fen:
        text += say("reported_fund")
    if left:
        return text + "\n" + say("reported_left", count=len(left), names=_names(left))
    await _finish_list_todo(conn, campaign_id=row.campaign_id, person_id=reporter.id, now=now)
    return text + "\n" + say("reported_all_done")


async def _reported_already(conn: AsyncConnection, row: Any) -> str:
    by = (await conn.execute(select(people.c.name).where(people.c.id == row.reported_by))).scalar()
    return say(
        "reported_already",
        name=row.household,
        campaign=row.campaign,
        day=short_day(row.visited_on),
        by=by or say("someone"),
    )


def _given_text(cash_fen: int, goods: str | None) -> str:
    parts = [say("given_cash", cash=yuan(cash_fen))] if cash_fen else []
    if goods:
        parts.append(goods)
    return say("given_joiner").join(parts) if parts else say("given_nothing")


async def _note_in_ledger(conn: AsyncConnection, *, person_id: int, year: int, item: str) -> None:
    """Add the visit to 帮扶情况 of the member's ledger entry for the year, if there is one."""
    entry = (
        await conn.execute(
            select(ledger_entries.c.id, ledger_entries.c.assistance)
            .where(ledger_entries.c.person_id == person_id, ledger_entries.c.year == year)
            .with_for_update()
        )
    ).first()
    if entry is None:
        return
    await conn.execute(
        update(ledger_entries)
        .where(ledger_entries.c.id == entry.id)
        .values(assistance=[*(entry.assistance or []), item])
    )


async def _finish_list_todo(
    conn: AsyncConnection, *, campaign_id: int, person_id: int, now: datetime
) -> None:
    todo_id = (
        await conn.execute(
            select(visit_sends.c.todo_id).where(
                visit_sends.c.campaign_id == campaign_id,
                visit_sends.c.person_id == person_id,
                visit_sends.c.what == "list",
            )
        )
    ).scalar()
    if todo_id is not None:
        await finish_todo(conn, int(todo_id), now)


# --- reminders and the township officers' list ---------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What one run of the reminder job sent."""

    reminders: int = 0
    watch_lists: int = 0


async def send_due(
    conn: AsyncConnection, *, now: datetime, tz: ZoneInfo, watch_days: int = Rules.watch_days
) -> Sent:
    """Scheduled: remind assignees, and give township officers the not-visited list; once each."""
    # A reminder (or list) due on or before the day a campaign opened is not sent: the list
    # handed out at opening already said it. After downtime only the latest due reminder goes.
    today = _today(now, tz)
    reminders = watch_lists = 0
    campaigns = await conn.execute(
        select(visit_campaigns)
        .where(visit_campaigns.c.deadline >= today)
        .order_by(visit_campaigns.c.id)
    )
    for campaign in list(campaigns):
        opened_on = _today(campaign.opened_at, tz)
        due = [
            int(days)
            for days in campaign.reminder_days
            if opened_on < campaign.deadline - timedelta(days=int(days)) <= today
        ]
        if due:
            reminders += await _remind(conn, campaign, min(due), today=today, now=now)
        watch_on = campaign.deadline - timedelta(days=watch_days)
        if campaign.occasion != Occasion.EVENT and opened_on < watch_on <= today:
            watch_lists += await _watch(conn, campaign, now=now)
    return Sent(reminders=reminders, watch_lists=watch_lists)


async def _remind(
    conn: AsyncConnection, campaign: Any, days: int, *, today: date, now: datetime
) -> int:
    what = f"remind:{days}"
    sent = 0
    for assignee_id, names in (await _unvisited_by_assignee(conn, campaign.id)).items():
        if await _was_sent(conn, campaign.id, assignee_id, what):
            continue
        openids = await openids_of(conn, assignee_id)
        if not openids:
            continue  # not on WeChat yet: their to-do stands; tried again on the next run
        left = (campaign.deadline - today).days
        text = say(
            "reminder",
            campaign=campaign.name,
            deadline=short_day(campaign.deadline),
            when=say("due_today") if left == 0 else say("due_in", days=left),
            count=len(names),
            names=_names(names),
        )
        await tell(
            conn,
            assignee_id,
            text,
            key=f"visit:{campaign.id}:{assignee_id}:{what}",
            kind="visit_reminder",
            now=now,
            reason=f"visit reminder, {days} days before the deadline",
            facts=Facts(
                "visit",
                what=campaign.name,
                detail=say("fact_left", count=len(names)),
                due=campaign.deadline,
            ),
        )
        await _sent(conn, campaign.id, assignee_id, what, now)
        sent += 1
    return sent


async def _watch(conn: AsyncConnection, campaign: Any, *, now: datetime) -> int:
    sent = 0
    for township_id, rows in (await _unvisited_by_township(conn, campaign.id)).items():
        for officer_id in await officers_of(conn, township_id):
            if await _was_sent(conn, campaign.id, officer_id, "watch"):
                continue
            text = say(
                "watch_todo",
                campaign=campaign.name,
                deadline=short_day(campaign.deadline),
                count=len(rows),
                households=not_visited_lines(rows),
            )
            todo_id = await add_todo(
                conn,
                assignee_id=officer_id,
                kind=WATCH_KIND,
                text=text,
                now=now,
                key=f"visit:{campaign.id}:watch:{officer_id}",
            )
            await _sent(conn, campaign.id, officer_id, "watch", now, todo_id)
            sent += 1
    return sent


async def officers_of(conn: AsyncConnection, township_id: int) -> list[int]:
    """The committee officers (组织委员) of a township: on its committee or in its branches."""
    branches = select(organisations.c.id).where(organisations.c.parent_id == township_id)
    rows = await conn.execute(
        select(people.c.id)
        .select_from(
            people.join(
                person_roles,
                and_(person_roles.c.person_id == people.c.id, person_roles.c.role == "committee"),
            )
        )
        .where(
            people.c.active.is_(True),
            (people.c.branch_id == township_id) | people.c.branch_id.in_(branches),
        )
        .order_by(people.c.id)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class NotVisited:
    """A household not yet visited, and who was to go."""

    name: str
    branch: str
    township_id: int | None
    township: str
    assignee: str | None


async def not_visited(
    conn: AsyncConnection,
    campaign_id: int,
    *,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> list[NotVisited]:
    """The households of a campaign still to visit, by township and branch."""
    branch, township = organisations.alias("branch"), organisations.alias("township")
    assignee = people.alias("assignee")
    query = (
        select(
            people.c.name,
            branch.c.name.label("branch"),
            township.c.id.label("township_id"),
            township.c.name.label("township"),
            assignee.c.name.label("assignee"),
        )
        .select_from(
            visits.join(people, people.c.id == visits.c.person_id)
            .outerjoin(branch, branch.c.id == visits.c.branch_id)
            .outerjoin(township, township.c.id == branch.c.parent_id)
            .outerjoin(assignee, assignee.c.id == visits.c.assignee_id)
        )
        .where(visits.c.campaign_id == campaign_id, visits.c.visited_on.is_(None))
        .order_by(township.c.name, branch.c.name, visits.c.id)
    )
    if township_id is not None:
        query = query.where(township.c.id == township_id)
    if branch_id is not None:
        query = query.where(visits.c.branch_id == branch_id)
    return [
        NotVisited(
            name=row.name,
            branch=row.branch or say("no_branch"),
            township_id=row.township_id,
            township=row.township or say("no_branch"),
            assignee=row.assignee,
        )
        for row in await conn.execute(query)
    ]


async def _unvisited_by_township(
    conn: AsyncConnection, campaign_id: int
) -> dict[int, list[NotVisited]]:
    grouped: dict[int, list[NotVisited]] = defaultdict(list)
    for row in await not_visited(conn, campaign_id):
        if row.township_id is not None:
            grouped[row.township_id].append(row)
    return dict(grouped)


def not_visited_lines(rows: list[NotVisited]) -> str:
    """One line per household still to visit (the first LIST_LIMIT)."""
    lines = [
        say(
            "not_visited_line",
            branch=row.branch,
            name=row.name,
            assignee=row.assignee or say("nobody_assigned"),
        )
        for row in rows[:LIST_LIMIT]
    ]
    if len(rows) > LIST_LIMIT:
        lines.append(say("and_more", count=len(rows)))
    return "\n".join(lines)


# --- progress ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressRow:
    """Visits of one branch in a campaign."""

    township: str
    branch: str
    households: int
    visited: int
    cash_fen: int

    @property
    def left(self) -> int:
        """Households not yet visited."""
        return self.households - self.visited


async def progress(
    conn: AsyncConnection,
    campaign_id: int,
    *,
    township_id: int | None = None,
    branch_id: int | None = None,
) -> list[ProgressRow]:
    """Households, visits and cash per branch (ordered by township and branch)."""
    branch, township = organisations.alias("branch"), organisations.alias("township")
    query = (
        select(
            township.c.name.label("township"),
            branch.c.name.label("branch"),
            func.count().label("households"),
            func.count(visits.c.visited_on).label("visited"),
            func.coalesce(func.sum(visits.c.cash_fen), 0).label("cash"),
        )
        .select_from(
            visits.outerjoin(branch, branch.c.id == visits.c.branch_id).outerjoin(
                township, township.c.id == branch.c.parent_id
            )
        )
        .where(visits.c.campaign_id == campaign_id)
        .group_by(township.c.name, branch.c.name)
        .order_by(township.c.name, branch.c.name)
    )
    if township_id is not None:
        query = query.where(township.c.id == township_id)
    if branch_id is not None:
        query = query.where(visits.c.branch_id == branch_id)
    return [
        ProgressRow(
            township=row.township or say("no_branch"),
            branch=row.branch or say("no_branch"),
            households=int(row.households),
            visited=int(row.visited),
            cash_fen=int(row.cash),
        )
        for row in await conn.execute(query)
    ]


async def current_campaign(conn: AsyncConnection, today: date) -> Any:
    """The festival or custom campaign to report on: the open one due first, else the latest."""
    rows = list(
        await conn.execute(
            select(visit_campaigns).where(visit_campaigns.c.occasion != Occasion.EVENT)
        )
    )
    if not rows:
        return None
    open_ones = [row for row in rows if row.deadline >= today]
    if open_ones:
        return min(open_ones, key=lambda row: (row.deadline, row.id))
    return max(rows, key=lambda row: (row.deadline, row.id))


async def township_of(conn: AsyncConnection, person: Person) -> int | None:
    """The township an official belongs to: their own org if a committee, else its parent."""
    if person.branch_id is None:
        return None
    org = (
        await conn.execute(
            select(organisations.c.kind, organisations.c.parent_id).where(
                organisations.c.id == person.branch_id
            )
        )
    ).first()
    if org is None:
        return None
    return person.branch_id if org.kind == "committee" else org.parent_id


async def progress_text(
    conn: AsyncConnection, *, viewer: Person, today: date, campaign_id: int | None = None
) -> str:
    """走访进度 for chat: the county, a township or a branch, by the viewer's role."""
    scope = _scope(viewer)
    if scope is None:
        return say("progress_not_allowed")
    campaign = (
        await campaign_row(conn, campaign_id)
        if campaign_id is not None
        else await current_campaign(conn, today)
    )
    if campaign is None:
        return say("no_campaign")
    left_days = (campaign.deadline - today).days
    deadline = short_day(campaign.deadline)
    when = (
        say("progress_closed", deadline=deadline)
        if left_days < 0
        else say("progress_today", deadline=deadline)
        if left_days == 0
        else say("progress_open", deadline=deadline, days=left_days)
    )
    lines = [say("progress_header", campaign=campaign.name, when=when)]
    if scope == "county":
        rows = await progress(conn, campaign.id)
        lines.append(_total_line(say("county"), rows))
        by_township: dict[str, list[ProgressRow]] = defaultdict(list)
        for row in rows:
            by_township[row.township].append(row)
        lines.extend(_total_line(name, group) for name, group in by_township.items())
        return "\n".join(lines)
    if scope == "township":
        township_id = await township_of(conn, viewer)
        rows = await progress(conn, campaign.id, township_id=township_id) if township_id else []
        lines.append(_total_line(rows[0].township if rows else say("your_township"), rows))
        lines.extend(_total_line(row.branch, [row]) for row in rows)
        return "\n".join(lines)
    rows = await progress(conn, campaign.id, branch_id=viewer.branch_id)
    lines.append(_total_line(viewer.branch_name or say("your_branch"), rows))
    left = await not_visited(conn, campaign.id, branch_id=viewer.branch_id)
    if left:
        lines.append(
            say(
                "progress_left",
                names=say("names_joiner").join(
                    say(
                        "name_with_assignee",
                        name=row.name,
                        assignee=row.assignee or say("nobody_assigned"),
                    )
                    for row in left
                ),
            )
        )
    return "\n".join(lines)


def _scope(viewer: Person) -> str | None:
    if viewer.has("department") or viewer.has("supervisor"):
        return "county"
    if viewer.has("committee"):
        return "township"
    if viewer.has("secretary"):
        return "branch"
    return None


def _total_line(label: str, rows: list[ProgressRow]) -> str:
    households = sum(row.households for row in rows)
    visited = sum(row.visited for row in rows)
    cash = sum(row.cash_fen for row in rows)
    return say(
        "progress_line", label=label, visited=visited, households=households, cash=yuan(cash)
    )


async def campaigns(conn: AsyncConnection) -> list[Any]:
    """Every campaign, newest first."""
    return list(await conn.execute(select(visit_campaigns).order_by(visit_campaigns.c.id.desc())))
