"""The desk's read side is tested on the ledger tests' county (two townships), with loans
and fund movements added where a test needs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.fund.service import Movement, record
from bangfu_bot.loans import service as loans
from bangfu_bot.members.models import organisations
from bangfu_bot.members.service import person_by_id
from tests.factories import make_person

LENT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
REPAID = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)


@pytest.fixture
async def session(engine: Any) -> AsyncIterator[AsyncSession]:
    """A session as the desk opens one per request."""
    async with AsyncSession(engine) as session:
        yield session


@pytest.fixture
async def baishui(engine: Any, county: Any) -> int:
    """白水镇党委's id (the ledger's county keeps its branch's)."""
    async with engine.connect() as conn:
        parent = await conn.scalar(
            select(organisations.c.parent_id).where(organisations.c.id == county.baishui)
        )
    return int(parent)


@dataclass
class Lending:
    """The county's fund (270,000 yuan from the county's finance) and three loans of 5,000
    yuan: 王建国's bullet (青山, due 2028-03-10), 陈志强's yearly one (青山, first half
    repaid on its day) and 刘德明's yearly one (白水, nothing repaid)."""

    loans: dict[str, int]
    staff: Any


async def lend(engine: Any, people: dict[str, Any], member: Any, officer: Any, kind: str) -> int:
    """A loan through every step of the procedure, disbursed on 10 March 2026."""
    async with engine.begin() as conn:
        loan_id = await loans.apply(
            conn,
            member=member,
            amount_fen=500_000,
            project="生猪养殖",
            earnings="年底出栏 10 头",
            schedule_kind=kind,
            terms=loans.Terms(),
            now=LENT,
        )
        await loans.decide(
            conn, loan_id=loan_id, officer=officer, approve=True, reason=None, now=LENT
        )
        await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=people["sun"],
            on=date(2026, 3, 5),
            inspector="孙丽",
            finding="猪圈已建好",
            passed=True,
            now=LENT,
        )
        await loans.guarantee(
            conn,
            loan_id=loan_id,
            staff=people["sun"],
            guarantor="镇财政所",
            document="财担〔2026〕7号",
            now=LENT,
        )
        await loans.record_disbursement(
            conn,
            loan_id=loan_id,
            staff=people["sun"],
            on=date(2026, 3, 10),
            document=f"放款单{member.id:03d}",
            now=LENT,
        )
        await loans.confirm_disbursement(conn, loan_id=loan_id, staff=people["qian"], now=LENT)
    return loan_id


@pytest.fixture
async def lending(engine: Any, county: Any) -> Lending:
    ids = {
        "sun": (
            await make_person(
                engine, LENT, name="孙丽", branch=None, roles=("department",), serial=884
            )
        )[0],
        "qian": (
            await make_person(
                engine, LENT, name="钱进", branch=None, roles=("department",), serial=885
            )
        )[0],
        "zhao": (
            await make_person(
                engine,
                LENT,
                name="赵明",
                branch=county.tree.other_branch,
                roles=("member", "committee"),
                serial=886,
            )
        )[0],
        "he": (
            await make_person(
                engine,
                LENT,
                name="何平",
                branch=county.baishui,
                roles=("member", "committee"),
                serial=887,
            )
        )[0],
    }
    ids.update({name: county.people[name] for name in ("王建国", "陈志强", "刘德明")})
    async with engine.begin() as conn:
        people = {key: await person_by_id(conn, value) for key, value in ids.items()}
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=27_000_000,
            source="county_finance",
            document="县财政拨款〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=LENT,
        )
    made = {
        "王建国": await lend(engine, people, people["王建国"], people["zhao"], "bullet"),
        "陈志强": await lend(engine, people, people["陈志强"], people["zhao"], "yearly"),
        "刘德明": await lend(engine, people, people["刘德明"], people["he"], "yearly"),
    }
    async with engine.begin() as conn:
        owed = await loans.position(conn, made["陈志强"], date(2026, 12, 31))
        await loans.repay(
            conn,
            loan_id=made["陈志强"],
            staff=people["sun"],
            amount_fen=owed.overdue_fen,
            paid_on=date(2026, 12, 31),
            receipt="收据0001",
            now=REPAID,
        )
    return Lending(made, people)
