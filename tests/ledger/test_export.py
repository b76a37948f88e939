"""The printed ledger (台帐) per township and the case audit trail, read back with openpyxl."""

from __future__ import annotations

import html
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.ledger.export import LedgerExport, export_audit, export_ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import organisations, people
from tests.factories import Tree, make_person, make_tree

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13800138000"

HEADERS = [
    "序号",
    "姓名",
    "性别",
    "年龄",
    "入党时间",
    "党支部",
    "困难类别",
    "致困原因",
    "家庭人口",
    "家庭成员",
    "家庭年收入（元）",
    "生产生活情况",
    "结对帮扶干部",
    "帮扶情况",
    "状态",
]
AUDIT_HEADERS = ["时间", "案件编号", "党员", "操作人", "角色", "渠道", "从", "到", "理由"]

WANG_HOUSEHOLD = [
    {"name": "李秀英", "relation": "配偶", "age": 68, "health": "有高血压，在家"},
    {"name": "王小军", "relation": "儿子", "age": 35, "health": "健康，外出务工"},
]


@dataclass
class County:
    """Two townships: 青山镇 (two branches, make_tree) and 白水镇 (one branch), and their people."""

    tree: Tree
    baishui: int
    ids: dict[str, str]
    people: dict[str, int]


async def add_committee(engine: AsyncEngine, county: int, name: str, branch: str) -> int:
    """A second 党委 with one branch, by plain inserts; returns the branch id."""
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(organisations).values(kind="committee", name=name, parent_id=county)
        )
        committee = int(result.inserted_primary_key[0])
        result = await conn.execute(
            insert(organisations).values(kind="branch", name=branch, parent_id=committee)
        )
        return int(result.inserted_primary_key[0])


async def add_member(
    engine: AsyncEngine,
    county: County,
    name: str,
    branch: int,
    *,
    serial: int,
    born: date,
    joined: date | None = None,
    gender: str = "男",
) -> int:
    """A member with the given birth and joining dates."""
    person, number = await make_person(
        engine, NOW, name=name, branch=branch, serial=serial, born=born
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(people).where(people.c.id == person).values(joined_on=joined, gender=gender)
        )
    county.ids[name] = number
    county.people[name] = person
    return person


async def add_entry(
    engine: AsyncEngine,
    person: int,
    *,
    year: int,
    category: str,
    income_fen: int = 300000,
    status: str = "active",
    exit_reason: str | None = None,
    household: Any = None,
    assistance: Any = None,
) -> None:
    """One ledger entry for a member and a year."""
    household = household or []
    async with engine.begin() as conn:
        await conn.execute(
            insert(ledger_entries).values(
                person_id=person,
                year=year,
                case_id=None,
                category=category,
                causes="常年生病，看病花钱多",
                household=household,
                household_size=1 + len(household),
                annual_income_fen=income_fen,
                situation="种两亩地，靠低保过日子",
                paired_cadre="周干部",
                assistance=assistance or [],
                status=status,
                exit_reason=exit_reason,
                created_at=NOW,
                exited_at=NOW if status == "exited" else None,
            )
        )


@pytest.fixture
async def county(engine: AsyncEngine) -> County:
    """Four 2025 entries over two townships (one exited) and one 2024 entry."""
    tree = await make_tree(engine, NOW)
    baishui = await add_committee(engine, tree.county, "白水镇党委", "白水村党支部")
    county = County(tree, baishui, {}, {})
    wang = await add_member(
        engine,
        county,
        "王建国",
        tree.branch,
        serial=101,
        born=date(1950, 6, 1),
        joined=date(1975, 7, 1),
    )
    zhang = await add_member(
        engine,
        county,
        "张桂兰",
        tree.other_branch,
        serial=102,
        born=date(1945, 12, 31),
        joined=date(1968, 10, 15),
        gender="女",
    )
    chen = await add_member(
        engine, county, "陈志强", tree.branch, serial=103, born=date(1960, 3, 2)
    )
    liu = await add_member(
        engine,
        county,
        "刘德明",
        baishui,
        serial=104,
        born=date(1962, 3, 3),
        joined=date(1990, 1, 1),
    )
    await add_entry(
        engine,
        wang,
        year=2025,
        category="因病",
        income_fen=470050,
        household=WANG_HOUSEHOLD,
        assistance=["慰问金500元", "医疗救助"],
    )
    await add_entry(
        engine, zhang, year=2025, category="三老", status="exited", exit_reason="收入超过标准"
    )
    await add_entry(engine, chen, year=2025, category="因病", income_fen=1)
    await add_entry(engine, liu, year=2025, category="企业下岗", income_fen=1200000)
    await add_entry(engine, wang, year=2024, category="三老")
    return county


def values(sheet: Worksheet) -> list[list[Any]]:
    """Every row of a sheet as a list, trailing empty cells dropped."""
    rows = []
    for row in sheet.iter_rows(values_only=True):
        cells = list(row)
        while cells and cells[-1] is None:
            cells.pop()
        rows.append(cells)
    return rows


def ledger_rows(sheet: Worksheet) -> list[list[Any]]:
    """The entry rows: under the title and headers, down to the blank line before the totals."""
    rows = values(sheet)[2:]
    return rows[: rows.index([])]


def totals(sheet: Worksheet) -> dict[str, int]:
    """The category totals under the entry rows, 合计 included."""
    rows = values(sheet)
    start = rows.index([None, "困难类别", "人数"]) + 1
    return {row[1]: row[2] for row in rows[start:]}


async def test_the_ledger_has_a_summary_and_a_sheet_per_township(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    assert result == LedgerExport(
        path=tmp_path / "台帐.xlsx", rows=4, townships=["白水镇党委", "青山镇党委"]
    )
    book = load_workbook(result.path)
    assert book.sheetnames == ["汇总", "白水镇党委", "青山镇党委"]
    assert values(book["汇总"]) == [
        ["2025年困难党员台帐汇总"],
        ["党委", "因病", "三老", "企业下岗", "合计"],
        ["白水镇党委", 0, 0, 1, 1],
        ["青山镇党委", 2, 1, 0, 3],
        ["合计", 2, 1, 1, 4],
    ]


async def test_a_township_sheet_lists_its_entries_by_branch_then_name(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    sheet = load_workbook(result.path)["青山镇党委"]
    rows = values(sheet)
    assert rows[0] == ["2025年困难党员台帐（青山镇党委）"]
    assert rows[1] == HEADERS
    entries = ledger_rows(sheet)
    assert [(row[0], row[1], row[5]) for row in entries] == [
        (1, "张桂兰", "李家村党支部"),
        (2, "王建国", "桃源村党支部"),
        (3, "陈志强", "桃源村党支部"),
    ]
    zhang, wang, chen = entries
    assert wang == [
        2,
        "王建国",
        "男",
        75,
        "1975年7月",
        "桃源村党支部",
        "因病",
        "常年生病，看病花钱多",
        3,
        "李秀英（配偶，68岁）；王小军（儿子，35岁）",
        4700.5,
        "种两亩地，靠低保过日子",
        "周干部",
        "慰问金500元；医疗救助",
        "在册",
    ]
    assert (zhang[2], zhang[3], zhang[4], zhang[-1]) == (
        "女",
        80,
        "1968年10月",
        "已退出：收入超过标准",
    )
    # Born on this day in 1960: 66 today, not 65.
    assert (chen[3], chen[4], chen[9], chen[10], chen[13]) == (66, None, None, 0.01, None)
    assert totals(sheet) == {"因病": 2, "三老": 1, "合计": 3}


async def test_incomes_are_numbers_in_yuan_with_two_decimals(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    book = load_workbook(result.path)
    wang = book["青山镇党委"]["K4"]
    liu = book["白水镇党委"]["K3"]
    assert (wang.value, wang.number_format, wang.data_type) == (4700.5, "0.00", "n")
    assert (liu.value, liu.number_format) == (12000, "0.00")


async def test_the_ledger_prints_landscape_with_repeated_bold_headers(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    sheet = load_workbook(result.path)["青山镇党委"]
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.print_title_rows == "$1:$2"
    assert all(cell.font.bold for cell in sheet[2])
    assert sheet["J4"].alignment.wrap_text
    assert sheet.column_dimensions["J"].width > sheet.column_dimensions["A"].width


async def test_no_id_number_or_phone_is_in_the_workbook(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    with zipfile.ZipFile(result.path) as archive:
        # openpyxl writes characters as references when lxml is installed.
        text = html.unescape(
            "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
        )
    assert "王建国" in text
    for number in county.ids.values():
        assert number not in text
        assert number[-6:] not in text
    assert PHONE not in text


async def test_a_township_can_be_exported_alone(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(
        engine, year=2025, out=tmp_path / "白水.xlsx", township="白水镇党委", today=TODAY
    )

    assert (result.rows, result.townships) == (1, ["白水镇党委"])
    book = load_workbook(result.path)
    assert book.sheetnames == ["汇总", "白水镇党委"]
    assert values(book["汇总"])[2:] == [["白水镇党委", 1, 1], ["合计", 1, 1]]
    assert [row[1] for row in ledger_rows(book["白水镇党委"])] == ["刘德明"]
    assert totals(book["白水镇党委"]) == {"企业下岗": 1, "合计": 1}


async def test_an_unknown_township_is_refused_by_name(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    out = tmp_path / "东山.xlsx"
    with pytest.raises(ValueError, match="东山镇党委") as raised:
        await export_ledger(engine, year=2025, out=out, township="东山镇党委", today=TODAY)

    assert "\n" not in str(raised.value)
    assert not out.exists()


async def test_an_empty_year_still_writes_the_summary(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    result = await export_ledger(engine, year=2030, out=tmp_path / "2030.xlsx", today=TODAY)

    assert (result.rows, result.townships) == (0, [])
    book = load_workbook(result.path)
    assert book.sheetnames == ["汇总"]
    assert values(book["汇总"]) == [
        ["2030年困难党员台帐汇总"],
        ["党委", "合计"],
        ["白水镇党委", 0],
        ["青山镇党委", 0],
        ["合计", 0],
    ]


async def test_a_county_without_townships_says_none(engine: AsyncEngine, tmp_path: Path) -> None:
    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    assert values(load_workbook(result.path)["汇总"])[2:] == [["无"], ["合计", 0]]


async def test_sheet_titles_follow_excel_rules(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
    long_name = "青山镇[东片]:新区/老区*联合?党委\\" + "第一" * 12
    branch = await add_committee(engine, county.tree.county, long_name, "新区党支部")
    person = await add_member(engine, county, "孙立华", branch, serial=105, born=date(1958, 1, 1))
    await add_entry(engine, person, year=2025, category="因病")
    # Without its "?", this name is the same as 白水镇党委's: the later sheet gets a number.
    branch = await add_committee(engine, county.tree.county, "白水镇党委?", "东村党支部")
    person = await add_member(engine, county, "周明", branch, serial=106, born=date(1958, 1, 1))
    await add_entry(engine, person, year=2025, category="因病")

    result = await export_ledger(engine, year=2025, out=tmp_path / "台帐.xlsx", today=TODAY)

    assert load_workbook(result.path).sheetnames[1:3] == ["白水镇党委", "白水镇党委(2)"]
    title = "青山镇东片新区老区联合党委" + "第一" * 9
    assert len(title) == 31
    book = load_workbook(result.path)
    assert title in book.sheetnames
    assert values(book[title])[0] == [f"2025年困难党员台帐（{long_name}）"]
    assert long_name in result.townships


# --- The audit trail ---------------------------------------------------------------------


async def add_case(engine: AsyncEngine, member: int, branch: int) -> int:
    """A hardship case for a member, in whatever status the events say."""
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(cases).values(
                person_id=member,
                branch_id=branch,
                kind="hardship",
                status="on_notice",
                category="因病",
                help_wanted="医疗救助",
                household_size=3,
                household_income_fen=470050,
                looks_above_line=False,
                answers={},
                filed_by=member,
                consent_recorded=False,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        return int(result.inserted_primary_key[0])


async def add_event(
    engine: AsyncEngine,
    case_id: int,
    actor: int | None,
    role: str,
    channel: str,
    at: datetime,
    before: str | None,
    after: str,
    reason: str | None = None,
) -> None:
    """One audited transition of a case."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(case_events).values(
                case_id=case_id,
                actor_id=actor,
                role=role,
                channel=channel,
                at=at,
                from_status=before,
                to_status=after,
                reason=reason,
            )
        )


async def test_the_audit_lists_every_event_in_order_in_chinese(
    engine: AsyncEngine, county: County, tmp_path: Path
) -> None:
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
    # Recorded after the next one but earlier in time: the audit follows time.
    await add_event(
        engine,
        case_id,
        secretary,
        "secretary",
        "web",
        datetime(2026, 3, 2, 1, 30, tzinfo=UTC),
        "evaluated_passed",
        "on_notice",
        "公示7天",
    )
    await add_event(
        engine,
        case_id,
        secretary,
        "secretary",
        "cli",
        datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        "submitted",
        "evaluated_passed",
        "赞成12票",
    )
    await add_event(
        engine,
        case_id,
        None,
        "system",
        "system",
        datetime(2026, 3, 9, 16, 0, tzinfo=UTC),
        "on_notice",
        "notice_closed",
    )

    count = await export_audit(engine, out=tmp_path / "审计.xlsx", tz=SHANGHAI)

    assert count == 4
    book = load_workbook(tmp_path / "审计.xlsx")
    assert book.sheetnames == ["审计记录"]
    sheet = book["审计记录"]
    assert values(sheet) == [
        AUDIT_HEADERS,
        ["2026-03-02 00:05", case_id, "王建国", "王建国", "党员", "微信", None, "已申请"],
        [
            "2026-03-02 09:00",
            case_id,
            "王建国",
            "李书记",
            "支部书记",
            "命令行",
            "已申请",
            "评议通过",
            "赞成12票",
        ],
        [
            "2026-03-02 09:30",
            case_id,
            "王建国",
            "李书记",
            "支部书记",
            "网页",
            "评议通过",
            "公示中",
            "公示7天",
        ],
        ["2026-03-10 00:00", case_id, "王建国", "系统", "系统", "系统", "公示中", "公示结束"],
    ]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.page_setup.orientation == "landscape"


async def test_an_empty_audit_has_only_the_headers(engine: AsyncEngine, tmp_path: Path) -> None:
    count = await export_audit(engine, out=tmp_path / "审计.xlsx", tz=SHANGHAI)

    assert count == 0
    assert values(load_workbook(tmp_path / "审计.xlsx")["审计记录"]) == [AUDIT_HEADERS]
