"""A county with a ledger, for the visit tests: two townships, three branches, cadres."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update

from bangfu_bot.fund import service as fund
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people
from bangfu_bot.members.service import Person, person_by_id
from bangfu_bot.visits import models as visit_models  # noqa: F401 - the tables, until wired
from tests.factories import make_person

TZ = ZoneInfo("Asia/Shanghai")
# 10:00 in the county on 1 December 2026: a Spring Festival campaign opens for 2027-02-06.
OPENED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def local(day: date, hour: int = 10) -> datetime:
    """An instant on a county calendar day."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ).astimezone(UTC)


_serials = itertools.count(100)


async def add_person(
    engine: Any,
    name: str,
    branch: int | None,
    *,
    roles: tuple[str, ...] = ("member",),
    joined_on: date | None = None,
    active: bool = True,
) -> int:
    """Someone on the roster (a unique made-up ID number each)."""
    serial = next(_serials)
    person_id, _ = await make_person(
        engine,
        OPENED,
        name=name,
        branch=branch,
        roles=roles,
        serial=serial % 1000,
        born=date(1940 + serial // 1000, 1 + serial % 12, 1),
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(people)
            .where(people.c.id == person_id)
            .values(joined_on=joined_on, active=active)
        )
    return person_id


async def add_entry(
    engine: Any,
    person_id: int,
    *,
    year: int = 2026,
    status: str = "active",
    paired: str | None = None,
) -> int:
    """A ledger entry (台账) for a member."""
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(ledger_entries).values(
                person_id=person_id,
                year=year,
                category="三老",
                causes="年老体弱",
                household=[],
                household_size=2,
                annual_income_fen=300000,
                situation="种地",
                paired_cadre=paired,
                assistance=[],
                status=status,
                exit_reason="去世" if status == "exited" else None,
                created_at=OPENED,
            )
        )
    return int(result.inserted_primary_key[0])


async def add_org(engine: Any, kind: str, name: str, parent: int | None) -> int:
    """An organisation in the tree."""
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(organisations).values(kind=kind, name=name, parent_id=parent)
        )
    return int(result.inserted_primary_key[0])


async def contribute(engine: Any, fen: int, on: date = date(2026, 11, 1)) -> None:
    """Money into the fund (财政助一点)."""
    async with engine.begin() as conn:
        await fund.record(
            conn,
            kind=fund.Movement.CONTRIBUTION,
            amount_fen=fen,
            source="county_finance",
            document="县财政拨款",
            occurred_on=on,
            now=OPENED,
        )


async def person(engine: Any, person_id: int) -> Person:
    """Load a Person the way the bot does."""
    async with engine.connect() as conn:
        found = await person_by_id(conn, person_id)
    assert found is not None
    return found


@dataclass
class County:
    """Who is who in the visit tests."""

    county: int
    qingshan: int  # 青山镇党委
    lushui: int  # 绿水乡党委
    taoyuan: int  # 桃源村党支部 (青山镇), secretary 张建国
    lijia: int  # 李家村党支部 (青山镇), secretary 李书记
    hekou: int  # 河口村党支部 (绿水乡), no secretary
    zhang: int  # secretary of 桃源村
    li_sec: int  # secretary of 李家村
    zhao: int  # committee officer of 青山镇 (member of 李家村)
    qian: int  # committee officer of 绿水乡 (on the committee itself)
    sun: int  # department staff
    cadre_liu: int  # 刘帮扶, a paired cadre on the roster (county office, no branch)
    households: dict[str, int] = field(default_factory=dict)


async def make_county(engine: Any, *, ledger_households: int = 30) -> County:
    """A county whose 2026 ledger has `ledger_households` active households, plus:
    an exited member, a pre-1949 member with no ledger entry, a pre-1949 member who left
    the ledger, and a member who left the roster."""
    county = await add_org(engine, "county", "示范县委组织部", None)
    qingshan = await add_org(engine, "committee", "青山镇党委", county)
    lushui = await add_org(engine, "committee", "绿水乡党委", county)
    taoyuan = await add_org(engine, "branch", "桃源村党支部", qingshan)
    lijia = await add_org(engine, "branch", "李家村党支部", qingshan)
    hekou = await add_org(engine, "branch", "河口村党支部", lushui)
    zhang = await add_person(engine, "张建国", taoyuan, roles=("member", "secretary"))
    li_sec = await add_person(engine, "李书记", lijia, roles=("member", "secretary"))
    zhao = await add_person(engine, "赵明", lijia, roles=("member", "committee"))
    qian = await add_person(engine, "钱红", lushui, roles=("member", "committee"))
    sun = await add_person(engine, "孙丽", None, roles=("department",))
    liu = await add_person(engine, "刘帮扶", None, roles=("member",))
    found = County(
        county, qingshan, lushui, taoyuan, lijia, hekou, zhang, li_sec, zhao, qian, sun, liu
    )
    branches = [taoyuan, lijia, hekou]
    digits = "一二三四五六七八九十"
    for n in range(ledger_households):
        hundreds = f"{digits[n // 100 - 1]}百" if n >= 100 else ""
        name = f"户主{hundreds}{digits[n // 10 % 10]}{digits[n % 10]}"
        member = await add_person(engine, name, branches[n % 3])
        # Every fifth household is paired with 刘帮扶; some name a cadre not on the roster.
        paired = "刘帮扶" if n % 5 == 0 else ("外单位王某" if n % 7 == 1 else None)
        await add_entry(engine, member, paired=paired)
        found.households[name] = member
    exited = await add_person(engine, "退出户", taoyuan)
    await add_entry(engine, exited, status="exited")
    found.households["退出户"] = exited
    veteran = await add_person(engine, "老红军", taoyuan, joined_on=date(1947, 5, 1))
    found.households["老红军"] = veteran
    gone = await add_person(engine, "老战士", lijia, joined_on=date(1948, 3, 1))
    await add_entry(engine, gone, year=2025, status="exited")
    found.households["老战士"] = gone
    left = await add_person(engine, "迁走户", lijia, active=False)
    await add_entry(engine, left)
    found.households["迁走户"] = left
    return found
