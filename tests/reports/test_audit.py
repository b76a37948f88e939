"""审计 on the desk: case and loan transitions together, filtered, and the supervision
group's workbook (the CLI's, cell for cell, for the cases)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot.ledger.export import export_audit
from bangfu_bot.reports.audit import AuditFile, AuditFilter, audit_list, audit_xlsx
from tests.factories import make_person
from tests.ledger.test_export import (
    NOW,
    SHANGHAI,
    County,
    add_case,
    add_event,
    county,  # noqa: F401  (the ledger's two-township county)
    values,
)
from tests.reports.conftest import Lending


async def a_case(engine: AsyncEngine, county: County) -> int:
    """王建国's case: submitted by chat, evaluated on the desk by his secretary."""
    tree = county.tree
    wang = county.people["王建国"]
    secretary, _ = await make_person(
        engine, NOW, name="李书记", branch=tree.branch, roles=("member", "secretary"), serial=201
    )
    case_id = await add_case(engine, wang, tree.branch)
    await add_event(
        engine,
        case_id,
        wang,
        "member",
        "chat",
        datetime(2026, 3, 1, 16, 5, tzinfo=UTC),
        None,
        "submitted",
    )
    await add_event(
        engine,
        case_id,
        secretary,
        "secretary",
        "web",
        datetime(2026, 3, 2, 1, 30, tzinfo=UTC),
        "submitted",
        "evaluated_passed",
        "=赞成12票",
    )
    return case_id


async def test_cases_and_loans_are_listed_together_newest_first(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending
) -> None:
    case_id = await a_case(engine, county)

    page = await audit_list(session, limit=100)

    assert page.total == 2 + 3 * 6
    subjects = {(row.subject, row.subject_id) for row in page.rows}
    assert ("case", case_id) in subjects and ("loan", lending.loans["刘德明"]) in subjects
    times = [row.at for row in page.rows]
    assert times == sorted(times, reverse=True)
    web = await audit_list(session, AuditFilter(channel="web"))
    assert [(row.actor, row.role_name, row.channel_name, row.to_name) for row in web.rows] == [
        ("李书记", "支部书记", "网页", "评议通过")
    ]


async def test_the_audit_filters_by_actor_act_case_and_scope(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending, baishui: int
) -> None:
    case_id = await a_case(engine, county)

    by_name = await audit_list(session, AuditFilter(actor="赵明"))
    assert by_name.total == 2 and {row.to_status for row in by_name.rows} == {"approved"}
    by_id = await audit_list(session, AuditFilter(actor=lending.staff["qian"].id))
    assert [row.to_status for row in by_id.rows] == ["disbursed"] * 3
    assert (await audit_list(session, AuditFilter(act="disbursed", subject="loan"))).total == 3
    assert (await audit_list(session, AuditFilter(case_id=case_id))).total == 2
    one_loan = await audit_list(session, AuditFilter(loan_id=lending.loans["陈志强"]))
    assert one_loan.total == 6 and {row.member for row in one_loan.rows} == {"陈志强"}
    white = await audit_list(session, AuditFilter(township_id=baishui))
    assert {row.member for row in white.rows} == {"刘德明"}
    assert (
        await audit_list(session, AuditFilter(since=datetime(2026, 3, 2, 1, 0, tzinfo=UTC)))
    ).total == 1
    for hostile in ("%", "_", "' OR '1'='1", "\\"):
        assert (await audit_list(session, AuditFilter(actor=hostile))).total == 0
    page = await audit_list(session, limit=5, offset=15)
    assert (page.total, len(page.rows)) == (20, 5)


async def test_the_cases_workbook_is_the_cli_export(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending, tmp_path: Path
) -> None:
    await a_case(engine, county)
    await export_audit(engine, out=tmp_path / "cli.xlsx", tz=SHANGHAI)
    out = io.BytesIO()

    written = await audit_xlsx(session, AuditFilter(subject="case"), out=out, tz=SHANGHAI)

    assert written == AuditFile(2)
    cli = values(load_workbook(tmp_path / "cli.xlsx")["审计记录"])
    desk = values(load_workbook(io.BytesIO(out.getvalue()))["审计记录"])
    assert desk == cli
    # What a secretary typed stays text.
    assert desk[2][-1] == "'=赞成12票"


async def test_the_whole_workbook_names_loans_by_number(
    engine: AsyncEngine, session: AsyncSession, county: County, lending: Lending
) -> None:
    out = io.BytesIO()

    written = await audit_xlsx(session, AuditFilter(actor="钱进"), out=out, tz=SHANGHAI)

    assert written == AuditFile(3)
    rows = values(load_workbook(io.BytesIO(out.getvalue()))["审计记录"])[1:]
    assert {row[1] for row in rows} == {f"借款{loan}" for loan in lending.loans.values()}
    assert {(row[3], row[5], row[7]) for row in rows} == {("钱进", "微信", "已放款，按计划还款")}
