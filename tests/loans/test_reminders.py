"""The set-based reminder scan writes exactly what the one-loan-at-a-time scan wrote.

Many loans at every stage (due in a month, a week, a day, today; paid ahead or in part;
overdue by a day, a week, a month, a year; written off, repaid, not yet disbursed; members
with one, two or no WeChat users, without a branch, off the roster) are scanned day after
day, with gaps (downtime) and a repayment on the way. Each day the old scan
(`legacy_reminders`, the code as it was) runs first in a transaction that is rolled back,
then the new one, and the rows they add — outbox and to-dos, in order — must be equal. A
re-run on the same day adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bangfu_bot import db
from bangfu_bot.cases.procedure import people_with_role
from bangfu_bot.loans import jobs
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.loans.schedule import anniversary, build
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.notify.models import outbox
from bangfu_bot.todos.models import todos
from tests.factories import make_person, make_tree
from tests.loans import legacy_reminders as legacy

TODAY = date(2027, 12, 20)
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
CALL_DAYS = 30


def at(day: date) -> datetime:
    """Nine in the morning in the county."""
    return datetime.combine(day, time(1, 0), tzinfo=UTC)


async def bind(engine: Any, person_id: int, *openids: str) -> None:
    async with engine.begin() as conn:
        for openid in openids:
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person_id, channel="chat", bound_at=NOW
                )
            )


class Lender:
    """Writes loans straight into the store (the procedure up to disbursement is tested
    elsewhere): a borrower per loan, the schedule from `schedule.build`, repayments."""

    def __init__(self, engine: Any, branch: int) -> None:
        self.engine, self.branch, self.serial = engine, branch, 100

    async def borrower(
        self, name: str, *, branch: int | None = None, no_branch: bool = False, openids: int = 1
    ) -> int:
        self.serial += 1
        person_id, _ = await make_person(
            self.engine,
            NOW,
            name=name,
            serial=self.serial % 1000,
            born=date(1950 + self.serial // 1000, 1, 1),
            branch=None if no_branch else branch or self.branch,
        )
        await bind(self.engine, person_id, *[f"o-{self.serial}-{n}" for n in range(openids)])
        return person_id

    async def loan(
        self,
        name: str,
        first_due: date,
        *,
        kind: str = "equal_principal",
        years: int = 2,
        paid_fen: int = 0,
        status: str = "disbursed",
        guarantor: str | None = "青山镇财政所",
        person_id: int | None = None,
        **borrower: Any,
    ) -> int:
        if person_id is None:
            person_id = await self.borrower(name, **borrower)
        start = anniversary(first_due, -1) if kind == "equal_principal" else first_due
        plan = build(kind=kind, principal_fen=500_000, start=start, term_years=years, rate_bp=435)
        async with self.engine.begin() as conn:
            member_branch = (
                await conn.execute(select(people.c.branch_id).where(people.c.id == person_id))
            ).scalar()
            loan_id = (
                await conn.execute(
                    insert(loans).values(
                        person_id=person_id,
                        branch_id=member_branch,
                        status=status,
                        amount_fen=500_000,
                        project="生猪养殖",
                        earnings="出栏",
                        schedule_kind=kind,
                        term_years=years,
                        annual_rate_bp=435,
                        guarantor=guarantor,
                        disbursed_on=start,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            ).inserted_primary_key[0]
            await conn.execute(
                insert(instalments),
                [
                    {
                        "loan_id": loan_id,
                        "number": i.number,
                        "due_on": i.due_on,
                        "principal_fen": i.principal_fen,
                        "interest_fen": i.interest_fen,
                    }
                    for i in plan
                ],
            )
        if paid_fen:
            await repay(self.engine, loan_id, paid_fen, plan[0].interest_fen, start)
        return int(loan_id)


async def repay(engine: Any, loan_id: int, fen: int, interest_fen: int, on: date) -> None:
    """A repayment row: interest first, then principal."""
    async with engine.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(repayments))).scalar()
        to_interest = min(fen, interest_fen)
        await conn.execute(
            insert(repayments).values(
                loan_id=loan_id,
                amount_fen=fen,
                interest_fen=to_interest,
                principal_fen=fen - to_interest,
                paid_on=on,
                receipt=f"R{count}",
                recorded_at=NOW,
            )
        )


@pytest.fixture
async def county(database_url: str) -> Any:
    """青山镇 (桃源村 with two secretaries, 李家村 with none) and 白云镇 (白云村); department
    staff 孙丽 (on WeChat) and 钱进 (not); committee officers 赵明 (青山镇), 周强 (白云镇)."""
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    tree = await make_tree(engine, NOW)
    async with engine.begin() as conn:
        baiyun = (
            await conn.execute(
                insert(organisations)
                .values(kind="committee", name="白云镇党委", parent_id=tree.county)
                .returning(organisations.c.id)
            )
        ).scalar_one()
        baiyun_branch = (
            await conn.execute(
                insert(organisations)
                .values(kind="branch", name="白云村党支部", parent_id=baiyun)
                .returning(organisations.c.id)
            )
        ).scalar_one()
    staff = [
        ("张建国", tree.branch, ("member", "secretary"), ["o-zhang"]),
        ("刘书记", tree.branch, ("member", "secretary"), ["o-liu", "o-liu-2"]),
        ("赵明", tree.other_branch, ("member", "committee"), ["o-zhao"]),
        ("周强", baiyun_branch, ("member", "committee"), ["o-zhou"]),
        ("孙丽", None, ("department",), ["o-sun"]),
        ("钱进", None, ("department",), []),
        ("王老书记", tree.branch, ("member", "secretary"), ["o-old"]),
    ]
    for serial, (name, branch, roles, openids) in enumerate(staff, start=900):
        person_id, _ = await make_person(
            engine, NOW, name=name, branch=branch, roles=roles, serial=serial
        )
        await bind(engine, person_id, *openids)
    async with engine.begin() as conn:  # left the roster: hears nothing
        await conn.execute(people.update().where(people.c.name == "王老书记").values(active=False))
    yield engine, tree, baiyun_branch
    await engine.dispose()


async def stages(engine: Any, tree: Any, baiyun_branch: int) -> dict[str, int]:
    """Loans at every stage relative to TODAY, by a short name."""
    lend = Lender(engine, tree.branch)
    made: dict[str, int] = {}
    for days in (
        -400,
        -60,
        -45,
        -31,
        -30,
        -29,
        -8,
        -7,
        -6,
        -2,
        -1,
        0,
        1,
        2,
        3,
        6,
        7,
        8,
        20,
        29,
        30,
        31,
        45,
    ):
        made[f"due{days:+d}"] = await lend.loan(f"借{days + 500}", TODAY + timedelta(days))
    plan = build(
        kind="equal_principal",
        principal_fen=500_000,
        start=anniversary(TODAY + timedelta(5), -1),
        term_years=2,
        rate_bp=435,
    )
    made["paid_ahead"] = await lend.loan(
        "付清", TODAY + timedelta(5), paid_fen=plan[0].principal_fen + plan[0].interest_fen
    )
    made["paid_part"] = await lend.loan("付半", TODAY + timedelta(5), paid_fen=100_000)
    made["first_paid_second_late"] = await lend.loan(
        "二期", TODAY - timedelta(375), paid_fen=plan[0].principal_fen + plan[0].interest_fen
    )
    made["yearly"] = await lend.loan("年底", date(2026, 6, 1), kind="yearly", years=2)
    made["bullet_late"] = await lend.loan("一次", date(2026, 12, 1), kind="bullet", years=1)
    made["written_off"] = await lend.loan("核销", TODAY - timedelta(40), status="written_off")
    made["repaid"] = await lend.loan("还清", TODAY + timedelta(7), status="repaid")
    made["recorded"] = await lend.loan("待核", TODAY + timedelta(7), status="recorded")
    made["two_openids"] = await lend.loan("两号", TODAY - timedelta(31), openids=2)
    made["no_openid"] = await lend.loan("没号", TODAY + timedelta(7), openids=0)
    made["rebound"] = await lend.loan("换号", TODAY - timedelta(7), openids=2)
    made["no_branch"] = await lend.loan("无支部", TODAY - timedelta(35), no_branch=True)
    made["other_branch"] = await lend.loan("李家", TODAY - timedelta(10), branch=tree.other_branch)
    made["baiyun"] = await lend.loan("白云", TODAY - timedelta(33), branch=baiyun_branch)
    made["no_guarantor"] = await lend.loan("无保", TODAY - timedelta(32), guarantor=None)
    made["left_roster"] = await lend.loan("离开", TODAY - timedelta(36))
    made["called_before"] = await lend.loan("已打", TODAY - timedelta(50))
    made["called_other"] = await lend.loan("另期", TODAY - timedelta(40))
    first = await lend.loan("两笔", TODAY - timedelta(12))
    made["second_loan"] = await lend.loan(
        "两笔", TODAY + timedelta(2), person_id=await _person_of(engine, first)
    )
    async with engine.begin() as conn:
        await conn.execute(
            people.update()
            .where(people.c.id == await _person_of(engine, made["left_roster"]))
            .values(active=False)
        )
        await conn.execute(
            bindings.update()
            .where(  # 解绑 of the first of two WeChat users
                bindings.c.person_id == await _person_of(engine, made["rebound"]),
                bindings.c.openid.like("%-0"),
            )
            .values(unbound_at=NOW)
        )
        called = await _person_of(engine, made["called_before"])
        await conn.execute(
            insert(todos).values(
                assignee_id=called,
                kind="guarantor_call",
                text="已打的借款已逾期 30 天，请联系担保方。（第1期）",
                loan_id=made["called_before"],
                created_at=NOW,
                key=f"loan:{made['called_before']}:1:guarantor:{called}",
            )
        )
        # A call about another instalment (第12期 contains 第1 but not 第1期) does not count.
        other = await _person_of(engine, made["called_other"])
        await conn.execute(
            insert(todos).values(
                assignee_id=other,
                kind="guarantor_call",
                text="另期的借款已逾期 30 天，请联系担保方。（第12期）",
                loan_id=made["called_other"],
                created_at=NOW,
                key=f"loan:{made['called_other']}:12:guarantor:{other}",
            )
        )
    return made


async def department_ids(engine: Any) -> list[int]:
    async with engine.connect() as conn:
        return await people_with_role(conn, "department")


async def _person_of(engine: Any, loan_id: int) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(select(loans.c.person_id).where(loans.c.id == loan_id))
            ).scalar_one()
        )


async def added_rows(conn: Any, since: tuple[int, int]) -> tuple[list[Any], list[Any]]:
    """The outbox rows and to-dos added after the given last ids, in id order, ids left out."""
    messages = (
        await conn.execute(
            select(
                outbox.c.idempotency_key,
                outbox.c.openid,
                outbox.c.kind,
                outbox.c.content,
                outbox.c.reason,
                outbox.c.urgent,
                outbox.c.status,
                outbox.c.attempts,
                outbox.c.next_attempt_at,
                outbox.c.created_at,
            )
            .where(outbox.c.id > since[0])
            .order_by(outbox.c.id)
        )
    ).all()
    tasks = (
        await conn.execute(
            select(
                todos.c.assignee_id,
                todos.c.kind,
                todos.c.text,
                todos.c.subject_id,
                todos.c.case_id,
                todos.c.loan_id,
                todos.c.created_at,
                todos.c.done_at,
            )
            .where(todos.c.id > since[1])
            .order_by(todos.c.id)
        )
    ).all()
    return [tuple(r) for r in messages], [tuple(r) for r in tasks]


async def last_ids(conn: Any) -> tuple[int, int]:
    return (
        int((await conn.execute(select(func.coalesce(func.max(outbox.c.id), 0)))).scalar()),
        int((await conn.execute(select(func.coalesce(func.max(todos.c.id), 0)))).scalar()),
    )


async def scan_both(engine: Any, day: date) -> tuple[int, list[Any], list[Any]]:
    """Run the old scan and roll it back, then the new one and commit; both must add the
    same rows and count the same. Returns the count and the rows added."""
    async with engine.connect() as conn, conn.begin() as transaction:
        since = await last_ids(conn)
        expected_count = await legacy.remind(conn, now=at(day), today=day, call_days=CALL_DAYS)
        expected = await added_rows(conn, since)
        await transaction.rollback()
    async with engine.begin() as conn:
        count = await jobs.remind(conn, now=at(day), today=day, call_days=CALL_DAYS)
        got = await added_rows(conn, since)
    assert got == expected, day
    assert count == expected_count, day
    return count, *got


async def adds_on_rerun(engine: Any, day: date) -> tuple[list[Any], list[Any]]:
    async with engine.begin() as conn:
        since = await last_ids(conn)
        await jobs.remind(conn, now=at(day), today=day, call_days=CALL_DAYS)
        return await added_rows(conn, since)


async def test_the_set_based_scan_writes_what_the_old_one_wrote(county: Any) -> None:
    engine, tree, baiyun_branch = county
    assert await scan_both(engine, TODAY) == (0, [], [])  # no loans yet
    made = await stages(engine, tree, baiyun_branch)
    first_count, messages, tasks = await scan_both(engine, TODAY)

    # A few rows checked by hand, so a slip shared by both scans cannot pass unseen.
    texts = {key.rsplit(":", 1)[0]: content for key, _, _, content, *_ in messages}
    keys = set(texts)
    assert f"loan:{made['due+7']}:1:-7" in keys and f"loan:{made['due+20']}:1:-30" in keys
    assert f"loan:{made['due+0']}:1:-0" in keys and f"loan:{made['due+31']}:1:-30" not in keys
    assert f"loan:{made['paid_ahead']}:1:-7" not in keys
    assert f"loan:{made['due-31']}:1:+30:copy" in keys and f"loan:{made['due-6']}:1:+1" in keys
    assert not any(
        f"loan:{made[name]}:" in key
        for key in keys
        for name in ("written_off", "repaid", "recorded", "no_openid")
    )
    assert texts[f"loan:{made['due+0']}:1:-0"].startswith("借500您好：您的借款第1期今天到期")
    # Its first instalment, interest included, was paid on the day of disbursement: half the
    # principal was out for no day, and the 217.50 yuan paid covers the interest the other
    # half accrued over two years, so only the second half's principal is left.
    assert (
        "第2期（2027年12月10日 到期）还有 2500元 没还，已过 10 天"
        in texts[f"loan:{made['first_paid_second_late']}:2:+7"]
    )
    calls = [(kind, text) for _, kind, text, *_ in tasks]
    call = "借469的借款已逾期 31 天（欠 2717.50元），请联系担保方青山镇财政所。（第1期）"
    assert ("guarantor_call", call) in calls
    assert not any("已打" in text for _, text in calls)  # called before: not again
    assert any("另期" in text and kind == "guarantor_call" for kind, text in calls)
    officers_for_left = [t for t in tasks if t[1] == "loan_write_off" and "离开" in t[2]]
    assert len(officers_for_left) == 1  # off the roster: still their township's officer
    no_township = {t[0] for t in tasks if t[1] == "loan_write_off" and "无支部" in t[2]}
    assert no_township == set(await department_ids(engine))  # in no township: the department
    assert first_count > 20

    # The same day again: nothing new; the count (as the old scan's) leaves out the
    # guarantor calls, which are made once.
    called = {loan_id for *_, loan_id, _, _ in tasks}
    again, messages, tasks = await scan_both(engine, TODAY)
    assert (messages, tasks) == ([], []) and again == first_count - len(called)

    # Day by day, with downtime, and a repayment that moves one loan to its 2nd instalment.
    plan = build(
        kind="equal_principal",
        principal_fen=500_000,
        start=anniversary(TODAY - timedelta(31), -1),
        term_years=2,
        rate_bp=435,
    )
    days = [TODAY + timedelta(n) for n in (1, 6, 9, 16, 30, 37)]
    days += [date(2028, 12, 1), date(2028, 12, 20), date(2029, 1, 25)]
    for day in days:
        if day == TODAY + timedelta(16):
            await repay(
                engine,
                made["due-31"],
                plan[0].principal_fen + plan[0].interest_fen,
                plan[0].interest_fen,
                day,
            )
        await scan_both(engine, day)
        assert await adds_on_rerun(engine, day) == ([], []), day
