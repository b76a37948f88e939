"""Workbook cells written from people's text stay text: the cell writer on its own, then every
XLSX export (ledger, audit, fund report) fed formula-looking text in each free-text field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import IllegalCharacterError
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot import xlsx
from bangfu_bot.broadcasts.service import create, sign_up
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.fund.service import Movement, record
from bangfu_bot.ledger.export import export_audit, export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans import service as loans
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.members.service import person_by_id
from bangfu_bot.reports.fund import export_fund_report
from bangfu_bot.reports.notices import signups_xlsx
from tests.factories import make_person

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)
SHANGHAI = ZoneInfo("Asia/Shanghai")

# What a member or a secretary might type (kept within the columns' lengths).
LINK = '=HYPERLINK("http://x.cn/","点此查看")'
DDE = "+cmd|' /C calc'!A0"
RECEIPT = '=HYPERLINK("http://x.cn/","收据0001")'


# --- The writer ----------------------------------------------------------------------------


@pytest.fixture
def sheet() -> Any:
    return Workbook().active


@pytest.mark.parametrize(
    "typed",
    [
        LINK,
        DDE,
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "=",
        "-",
        "-5",
    ],
)
def test_text_that_a_spreadsheet_could_run_is_quoted_and_stays_text(sheet: Any, typed: str) -> None:
    cell = xlsx.put(sheet, 1, 1, typed)
    xlsx.append(sheet, [typed])

    quoted = "'" + typed.replace("\r", "\n")  # a CR is written as the LF it reads back as
    assert xlsx.text(typed) == quoted
    for written in (cell, sheet["A2"]):
        assert (written.value, written.data_type) == (quoted, "s")


def test_ordinary_chinese_text_is_written_as_typed(sheet: Any) -> None:
    typed = [
        "种两亩地，靠低保过日子",
        "王建国-李秀英",
        "慰问金500元",
        "'已有引号",
        " =前面有空格",
        "",
    ]
    xlsx.append(sheet, typed)

    assert [(cell.value, cell.data_type) for cell in sheet[1]] == [(t, "s") for t in typed]


def test_text_that_reads_like_an_error_code_is_text(sheet: Any) -> None:
    # openpyxl on its own would store these as error cells.
    xlsx.append(sheet, ["#N/A", "#DIV/0!"])

    assert [(cell.value, cell.data_type) for cell in sheet[1]] == [("#N/A", "s"), ("#DIV/0!", "s")]


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (4700, "n"),
        (Decimal("4700.50"), "n"),
        (0.01, "n"),
        (-3, "n"),
        (Decimal("-12.50"), "n"),
        (-0.5, "n"),
        (True, "b"),
        (date(2026, 3, 2), "d"),
        (datetime(2026, 3, 2, 9, 30), "d"),
    ],
)
def test_numbers_and_dates_stay_what_they_are(sheet: Any, value: Any, data_type: str) -> None:
    cell = xlsx.put(sheet, 1, 1, value)
    xlsx.append(sheet, [value])

    for written in (cell, sheet["A2"]):
        assert (written.value, written.data_type) == (value, data_type)


def test_an_empty_value_leaves_the_cell_empty(sheet: Any) -> None:
    xlsx.append(sheet, [None, "x"])

    assert sheet["A1"].value is None and sheet["B1"].value == "x"


def test_the_exports_own_formula_is_the_only_formula(sheet: Any) -> None:
    xlsx.append(sheet, [1, 2, xlsx.Formula("=SUM(A1:B1)"), "=SUM(A1:B1)"])

    assert (sheet["C1"].value, sheet["C1"].data_type) == ("=SUM(A1:B1)", "f")
    assert (sheet["D1"].value, sheet["D1"].data_type) == ("'=SUM(A1:B1)", "s")


@pytest.mark.parametrize("expression", ["SUM(A1:B1)", "=", ""])
def test_a_formula_starts_with_equals(expression: str) -> None:
    with pytest.raises(ValueError, match="formula"):
        xlsx.Formula(expression)


@pytest.mark.parametrize("value", [b"=1+1", ["=1+1"], object()])
def test_values_that_could_slip_a_formula_past_are_refused(sheet: Any, value: Any) -> None:
    with pytest.raises(TypeError):
        xlsx.put(sheet, 1, 1, value)


def test_append_writes_the_next_row_and_keeps_blank_rows(sheet: Any) -> None:
    xlsx.append(sheet, ["标题"])
    xlsx.append(sheet, [])
    xlsx.append(sheet, ["", "合计", 3])

    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["标题", None, None],
        [None, None, None],
        ["", "合计", 3],
    ]


def test_a_saved_workbook_reads_back_as_written(tmp_path: Path) -> None:
    book = Workbook()
    row = [
        LINK,
        "\t=1+1",
        "\r=1+1",
        "#N/A",
        "种两亩地",
        -3,
        Decimal("4700.50"),
        date(2026, 3, 2),
        xlsx.Formula("=SUM(F1:G1)"),
    ]
    xlsx.append(book.active, row)
    book.save(tmp_path / "x.xlsx")

    cells = list(load_workbook(tmp_path / "x.xlsx").active[1])
    assert [cell.data_type for cell in cells] == ["s"] * 5 + ["n", "n", "d", "f"]
    # XML turns a carriage return into a line feed; the text is otherwise as written.
    assert [cell.value for cell in cells] == [
        "'" + LINK,
        "'\t=1+1",
        "'\n=1+1",
        "#N/A",
        "种两亩地",
        -3,
        4700.5,
        datetime(2026, 3, 2),
        "=SUM(F1:G1)",
    ]


# --- Big sheets: rows written as sheet XML ---------------------------------------------------

WRAP = xlsx.Look(alignment=Alignment(wrap_text=True, vertical="top"))
MONEY = xlsx.Look(alignment=Alignment(wrap_text=True, vertical="top"), number_format="0.00")
BOLD = xlsx.Look(font=Font(bold=True))
STREAMED = [
    LINK,
    DDE,
    "\t=1+1",
    "\r=1+1",
    "#N/A",
    "种两亩地 & <猪>",
    " 前后有空格 ",
    "",
    None,
    -3,
    Decimal("4700.50"),
    True,
    10**17 + 1,
]


def read_back(write: Any, tmp_path: Path, name: str) -> list[tuple[Any, ...]]:
    path = tmp_path / name
    with path.open("wb") as handle:
        write(handle)
    sheet = load_workbook(path).active
    return [
        (c.coordinate, c.value, c.data_type, c.number_format, c.font.bold, c.alignment.wrap_text)
        for row in sheet.iter_rows()
        for c in row
    ]


def test_streamed_rows_read_back_as_openpyxl_writes_them(tmp_path: Path) -> None:
    def by_openpyxl(handle: Any) -> None:
        book = Workbook()
        sheet = book.active
        xlsx.append(sheet, ["标题"], BOLD)
        xlsx.append(sheet, STREAMED, WRAP, columns={11: MONEY})
        xlsx.append(sheet, [])
        xlsx.append(sheet, ["", "合计", 3], columns={2: BOLD})
        book.save(handle)

    def streamed(handle: Any) -> None:
        with xlsx.Book() as book:
            sheet = book.create_sheet("Sheet")
            xlsx.append(sheet, ["标题"], BOLD)
            rows = book.rows(sheet, after=1)
            rows.append(STREAMED, WRAP, columns={11: MONEY})
            rows.append([])
            rows.append(["", "合计", 3], columns={2: BOLD})
            book.save(handle)

    written = read_back(streamed, tmp_path, "streamed.xlsx")
    assert written == read_back(by_openpyxl, tmp_path, "openpyxl.xlsx")
    cells = {coordinate: (value, kind) for coordinate, value, kind, *_ in written}
    assert cells["A2"] == ("'" + LINK, "s") and cells["B2"] == ("'" + DDE, "s")
    assert cells["E2"] == ("#N/A", "s") and cells["F2"] == ("种两亩地 & <猪>", "s")
    assert cells["G2"] == (" 前后有空格 ", "s") and cells["K2"] == (4700.5, "n")


@pytest.mark.parametrize("value", [b"=1+1", ["=1+1"], object(), date(2026, 3, 2)])
def test_streamed_rows_refuse_what_they_cannot_write(value: Any) -> None:
    with xlsx.Book() as book, pytest.raises(TypeError):
        book.rows(book.create_sheet("x"), after=0).append([value])


def test_streamed_rows_refuse_control_characters_as_openpyxl_does() -> None:
    with xlsx.Book() as book, pytest.raises(IllegalCharacterError):
        book.rows(book.create_sheet("x"), after=0).append(["好\x07"])
    with pytest.raises(IllegalCharacterError):
        xlsx.append(Workbook().active, ["好\x07"])


# --- Every export ----------------------------------------------------------------------------


def assert_only_text_and_numbers(path: Path, shown: dict[str, str]) -> None:
    """No cell of the workbook is a formula or an error (no export builds a formula), text is
    text, and each field's typed text is shown as `shown` says."""
    book = load_workbook(path)
    cells = [
        cell
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    ]
    assert [
        (c.parent.title, c.coordinate, c.value) for c in cells if c.data_type not in ("s", "n")
    ] == []
    assert [
        (c.parent.title, c.coordinate)
        for c in cells
        if isinstance(c.value, str) != (c.data_type == "s")
    ] == []
    values = {cell.value for cell in cells}
    for field, text in shown.items():
        # XML reads a carriage return back as a line feed.
        assert text.replace("\r", "\n") in values, field


async def add_org(engine: AsyncEngine, kind: str, name: str, parent: int | None) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(organisations).values(kind=kind, name=name, parent_id=parent)
        )
        return int(result.inserted_primary_key[0])


async def test_the_ledger_shows_typed_formulas_as_text(engine: AsyncEngine, tmp_path: Path) -> None:
    county = await add_org(engine, "county", "示范县委组织部", None)
    township = await add_org(engine, "committee", "@青山镇党委", county)
    branch = await add_org(engine, "branch", "+桃源村党支部", township)
    member, _ = await make_person(engine, NOW, name=LINK, branch=branch, serial=101)
    leaver, _ = await make_person(engine, NOW, name="#N/A", branch=branch, serial=102)
    async with engine.begin() as conn:
        await conn.execute(update(people).where(people.c.id == member).values(gender="=1+1"))
        for person, status, exit_reason in ((member, "active", None), (leaver, "exited", LINK)):
            await conn.execute(
                insert(ledger_entries).values(
                    person_id=person,
                    year=2025,
                    case_id=None,
                    category="-因病",
                    causes=DDE,
                    household=[{"name": LINK, "relation": "配偶", "age": 68}],
                    household_size=2,
                    annual_income_fen=-470050,
                    situation="\t" + LINK,
                    paired_cadre="@SUM(1+1)",
                    assistance=["\r=1+1", "医疗救助"],
                    status=status,
                    exit_reason=exit_reason,
                    created_at=NOW,
                    exited_at=NOW if exit_reason else None,
                )
            )

    result = await export_ledger(engine, year=2025, out=tmp_path / "台账.xlsx", today=TODAY)

    assert_only_text_and_numbers(
        result.path,
        {
            "township": "'@青山镇党委",
            "branch": "'+桃源村党支部",
            "name": "'" + LINK,
            "name like an error": "#N/A",
            "gender": "'=1+1",
            "category": "'-因病",
            "causes": "'" + DDE,
            "household": "'" + LINK + "（配偶，68岁）",
            "situation": "'\t" + LINK,
            "paired cadre": "'@SUM(1+1)",
            "assistance": "'\r=1+1；医疗救助",
            "exit reason": "已退出：" + LINK,
        },
    )
    sheet = load_workbook(result.path)["@青山镇党委"]
    # A negative income is a number still, and the counts under the rows are numbers.
    assert (sheet["K3"].value, sheet["K3"].data_type) == (-4700.5, "n")
    assert [
        row[1:3] for row in sheet.iter_rows(min_row=5, values_only=True) if row[1] is not None
    ] == [("困难类别", "人数"), ("'-因病", 2), ("合计", 2)]


async def test_the_audit_shows_typed_formulas_as_text(engine: AsyncEngine, tmp_path: Path) -> None:
    county = await add_org(engine, "county", "示范县委组织部", None)
    township = await add_org(engine, "committee", "青山镇党委", county)
    branch = await add_org(engine, "branch", "桃源村党支部", township)
    member, _ = await make_person(engine, NOW, name=LINK, branch=branch, serial=101)
    secretary, _ = await make_person(
        engine, NOW, name=DDE, branch=branch, roles=("member", "secretary"), serial=201
    )
    async with engine.begin() as conn:
        case_id = int(
            (
                await conn.execute(
                    insert(cases).values(
                        person_id=member,
                        branch_id=branch,
                        kind="hardship",
                        status="on_notice",
                        category="因病",
                        help_wanted=LINK,
                        household_size=3,
                        household_income_fen=470050,
                        looks_above_line=False,
                        answers={"situation": LINK},
                        filed_by=member,
                        consent_recorded=False,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            ).inserted_primary_key[0]
        )
        for minute, (before, after, reason) in enumerate(
            [
                (None, "submitted", None),
                ("submitted", "evaluated_passed", "\t" + LINK),
                ("evaluated_passed", "on_notice", "-3"),
                ("on_notice", "returned", "#N/A"),
                ("returned", "submitted", "@SUM(1+1)"),
            ]
        ):
            await conn.execute(
                insert(case_events).values(
                    case_id=case_id,
                    actor_id=secretary if before else member,
                    role="secretary" if before else "member",
                    channel="chat",
                    at=NOW.replace(minute=minute),
                    from_status=before,
                    to_status=after,
                    reason=reason,
                )
            )

    count = await export_audit(engine, out=tmp_path / "审计.xlsx", tz=SHANGHAI)

    assert count == 5
    assert_only_text_and_numbers(
        tmp_path / "审计.xlsx",
        {
            "member": "'" + LINK,
            "secretary": "'" + DDE,
            "reason": "'\t" + LINK,
            "number-like reason": "'-3",
            "error-like reason": "#N/A",
            "at reason": "'@SUM(1+1)",
        },
    )
    sheet = load_workbook(tmp_path / "审计.xlsx")["审计记录"]
    assert (sheet["B2"].value, sheet["B2"].data_type) == (case_id, "n")


async def test_the_fund_report_shows_typed_formulas_as_text(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    county = await add_org(engine, "county", "示范县委组织部", None)
    township = await add_org(engine, "committee", "青山镇党委", county)
    branch = await add_org(engine, "branch", "桃源村党支部", township)
    ids = {
        "wang": (await make_person(engine, NOW, name="-王德福", branch=branch))[0],
        "zhao": (
            await make_person(
                engine, NOW, name="赵明", branch=branch, roles=("member", "committee"), serial=773
            )
        )[0],
        "sun": (
            await make_person(
                engine, NOW, name="孙丽", branch=None, roles=("department",), serial=884
            )
        )[0],
        "qian": (
            await make_person(
                engine, NOW, name="钱进", branch=None, roles=("department",), serial=885
            )
        )[0],
    }
    async with engine.begin() as conn:
        who = {key: await person_by_id(conn, value) for key, value in ids.items()}
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=27_000_000,
            source="county_finance",
            document=LINK,
            occurred_on=date(2026, 1, 5),
            now=NOW,
            note="@SUM(1+1)",
        )
        loan_id = await loans.apply(
            conn,
            member=who["wang"],
            amount_fen=500_000,
            project=DDE,
            earnings=LINK,
            schedule_kind="bullet",
            terms=loans.Terms(),
            now=NOW,
        )
        await loans.decide(
            conn, loan_id=loan_id, officer=who["zhao"], approve=True, reason=LINK, now=NOW
        )
        await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=who["sun"],
            on=date(2026, 3, 5),
            inspector=LINK,
            finding=LINK,
            passed=True,
            now=NOW,
        )
        await loans.guarantee(
            conn, loan_id=loan_id, staff=who["sun"], guarantor=LINK, document=LINK, now=NOW
        )
        await loans.record_disbursement(
            conn, loan_id=loan_id, staff=who["sun"], on=date(2026, 3, 10), document="=1+1", now=NOW
        )
        await loans.confirm_disbursement(conn, loan_id=loan_id, staff=who["qian"], now=NOW)
        await loans.repay(
            conn,
            loan_id=loan_id,
            staff=who["sun"],
            amount_fen=100_000,
            paid_on=date(2026, 6, 1),
            receipt=RECEIPT,
            now=NOW,
        )

    report = await export_fund_report(
        engine, year=2026, out=tmp_path / "基金.xlsx", today=date(2026, 12, 31)
    )

    assert (report.movements, report.reconciliation_fen) == (4, 0)
    assert_only_text_and_numbers(
        report.path,
        {
            "contribution document": "'" + LINK,
            "note": "'@SUM(1+1)",
            "disbursement document": "'=1+1",
            "receipt": "'" + RECEIPT,
            "borrower": "'-王德福",
            "project": "'" + DDE,
        },
    )
    book = load_workbook(report.path)
    moves = list(book["资金变动"].iter_rows(min_row=2, values_only=True))
    assert [(move[1], move[4]) for move in moves] == [
        ("筹集", "'" + LINK),
        ("借款发放", "'=1+1"),
        ("利息收入", "'" + RECEIPT),
        ("收回本金", "'" + RECEIPT),
    ]
    assert all(isinstance(move[3], float | int) for move in moves)


async def test_the_signup_list_shows_typed_formulas_as_text(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The 报名 list carries roster text (names, places, phones): a roster line typed as a
    formula stays text in the organisers' workbook."""
    county = await add_org(engine, "county", "示范县委组织部", None)
    township = await add_org(engine, "committee", "@青山镇党委", county)
    branch = await add_org(engine, "branch", "+桃源村党支部", township)
    member, _ = await make_person(engine, NOW, name=LINK, branch=branch, serial=101)
    async with engine.begin() as conn:
        await conn.execute(update(people).where(people.c.id == member).values(phone="-1+1"))
        await conn.execute(
            insert(bindings).values(openid="o-link", person_id=member, channel="chat", bound_at=NOW)
        )
        broadcast_id, _ = await create(
            conn,
            author=None,
            text="周五上午培训",
            audience="everyone",
            training=True,
            now=NOW,
            tz=SHANGHAI,
        )
        await sign_up(conn, person_id=member, now=NOW)
    path = tmp_path / "报名.xlsx"
    async with AsyncSession(engine) as session:
        with path.open("wb") as out:
            count = await signups_xlsx(session, broadcast_id, out=out, tz=SHANGHAI)

    assert count == 1
    assert_only_text_and_numbers(
        path,
        {
            "name": "'" + LINK,
            "township": "'@青山镇党委",
            "branch": "'+桃源村党支部",
            "phone": "'-1+1",
        },
    )
