"""Importing the roster (党员花名册) from CSV and Excel: the tree, people, roles, and refusals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.common.idnumbers import with_check
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.members.roster import (
    ImportReport,
    Rejection,
    RosterError,
    RosterRow,
    import_roster,
    read_roster,
    split_branch,
    validate,
)

COUNTY = "示范县委组织部"
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)


def make_id(birth: str, sequence: str, area: str = "532901") -> str:
    """A made-up resident ID with a correct check character (sequence's last digit: odd = 男)."""
    return with_check(area + birth + sequence)


def bad_checksum(id_number: str) -> str:
    """The same ID with a wrong check character."""
    return id_number[:17] + ("0" if id_number[17] != "0" else "1")


CHECKSUM = "身份证号最后一位（校验位）对不上，多半是抄错了一位，请对照身份证重填"
REFUSED_ONE = (
    "有 1 行有错，名单没有导入。请改正这些行后重新导入；"
    "加上 --skip-invalid 可以跳过这些行，先导入其余的。"
)

HEADER = [
    "姓名",
    "性别",
    "出生日期",
    "入党日期",
    "身份证号",
    "手机号",
    "党委",
    "支部",
    "角色",
    "城乡",
]


@dataclass
class Line:
    """One person as a clerk would type them into the template."""

    name: str
    gender: str
    birth: str
    joined: str
    id_number: str
    phone: str
    committee: str
    branch: str
    roles: str
    urban_rural: str

    def cells(self) -> list[str]:
        return [
            self.name,
            self.gender,
            self.birth,
            self.joined,
            self.id_number,
            self.phone,
            self.committee,
            self.branch,
            self.roles,
            self.urban_rural,
        ]


ZHANG = make_id("19480312", "013")
LI = make_id("19650820", "024")
WANG = make_id("19551102", "035")
ZHAO = make_id("19580105", "046")
LIU = make_id("19700315", "057")
CHEN = make_id("19850607", "068")


def roster() -> list[Line]:
    """Six people over two committees and three branches, plus one county staff member."""
    return [
        Line(
            "张建国",
            "男",
            "1948-03-12",
            "1972-07-01",
            ZHANG,
            "13812340001",
            "城关镇党委",
            "东街社区党支部",
            "党员",
            "城镇",
        ),
        Line(
            "李秀英",
            "",
            "",
            "1990-06-15",
            LI,
            "138 1234 0002",
            "城关镇党委",
            "东街社区党支部",
            "党员、支部书记",
            "城镇",
        ),
        Line(
            "王德明", "男", "1955/11/02", "", WANG, "", "城关镇党委", "西村党支部", "党员", "农村"
        ),
        Line(
            "赵桂兰",
            "女",
            "",
            "1980年1月20日",
            ZHAO,
            "13812340004",
            "河口乡党委",
            "河口村党支部",
            "党员",
            "乡村",
        ),
        Line(
            "刘志强",
            "",
            "",
            "1995-07-01",
            LIU,
            "13812340005",
            " 河口乡党委 ",
            "河口村党支部",
            "党委委员，党员",
            "",
        ),
        Line("陈静", "女", "", "", CHEN, "13812340006", "", "", "组织部", ""),
    ]


def write_csv(
    path: Path, lines: Sequence[Line], *, header: Sequence[str] = HEADER, encoding: str = "utf-8"
) -> Path:
    """Write a roster CSV the way Excel does (CRLF line ends)."""
    rows = [",".join(header)] + [",".join(line.cells()) for line in lines]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode(encoding))
    return path


async def load(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Everyone stored, by ID number, with the names of their branch and committee."""
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    people, branch.c.name.label("branch"), committee.c.name.label("committee")
                ).select_from(
                    people.outerjoin(branch, branch.c.id == people.c.branch_id).outerjoin(
                        committee, committee.c.id == branch.c.parent_id
                    )
                )
            )
        ).all()
        roles = (await conn.execute(select(person_roles))).all()
    found = {row.id_number: dict(row._mapping, roles=set()) for row in rows}
    by_id = {row.id: row.id_number for row in rows}
    for role in roles:
        found[by_id[role.person_id]]["roles"].add(role.role)
    return found


async def tree(engine: AsyncEngine) -> set[tuple[str, str, str | None]]:
    """The organisation tree as (kind, name, parent name)."""
    parent = organisations.alias("parent")
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(organisations.c.kind, organisations.c.name, parent.c.name).select_from(
                organisations.outerjoin(parent, parent.c.id == organisations.c.parent_id)
            )
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


EXPECTED_TREE = {
    ("county", COUNTY, None),
    ("committee", "城关镇党委", COUNTY),
    ("committee", "河口乡党委", COUNTY),
    ("branch", "东街社区党支部", "城关镇党委"),
    ("branch", "西村党支部", "城关镇党委"),
    ("branch", "河口村党支部", "河口乡党委"),
}


def assert_roster_stored(stored: dict[str, dict[str, Any]]) -> None:
    """What `roster()` must look like once imported, from either file format."""
    assert len(stored) == 6
    zhang = stored[ZHANG]
    assert (zhang["name"], zhang["gender"], zhang["birth_date"], zhang["joined_on"]) == (
        "张建国",
        "男",
        date(1948, 3, 12),
        date(1972, 7, 1),
    )
    assert (zhang["committee"], zhang["branch"], zhang["roles"]) == (
        "城关镇党委",
        "东街社区党支部",
        {"member"},
    )
    assert (zhang["phone"], zhang["urban_rural"], zhang["active"]) == ("13812340001", "城镇", True)
    li = stored[LI]
    # Gender and birth date left blank are read from the ID number.
    assert (li["gender"], li["birth_date"], li["phone"]) == ("女", date(1965, 8, 20), "13812340002")
    assert li["roles"] == {"member", "secretary"}
    assert (stored[WANG]["phone"], stored[WANG]["joined_on"]) == (None, None)
    assert (stored[ZHAO]["urban_rural"], stored[ZHAO]["joined_on"]) == ("农村", date(1980, 1, 20))
    assert (stored[LIU]["committee"], stored[LIU]["roles"]) == (
        "河口乡党委",
        {"member", "committee"},
    )
    chen = stored[CHEN]
    assert (chen["branch_id"], chen["roles"]) == (None, {"department"})
    assert all(row["created_at"] == NOW == row["updated_at"] for row in stored.values())


# --- A first import and a repeat -----------------------------------------------------------


async def test_csv_import_builds_the_tree_and_stores_everyone(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "花名册.csv", roster())

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.created, report.updated, report.unchanged, report.rejected) == (6, 0, 0, [])
    assert (report.committees_created, report.branches_created) == (2, 3)
    assert report.lines() == [
        "导入完成：新增 6 人，更新 0 人，无变化 0 人，跳过 0 行；新建党委 2 个，新建支部 3 个。"
    ]
    assert await tree(engine) == EXPECTED_TREE
    assert_roster_stored(await load(engine))


async def test_postgresql_counts_a_freshly_imported_roster(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite gathers no statistics (see db.refresh_statistics)")
    await import_roster(
        engine,
        write_csv(tmp_path / "花名册.csv", roster()),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    async with engine.connect() as conn:
        counted = (
            await conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'people'"))
        ).scalar_one()
    # What the planner believes, not left at "never counted" (-1) until autovacuum comes:
    # a lookup by openid would otherwise be planned as a scan of the whole roster.
    assert counted == 6


async def test_importing_the_same_file_again_changes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "花名册.csv", roster())
    await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    later = datetime(2026, 4, 1, tzinfo=UTC)
    again = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=later)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
    assert (again.committees_created, again.branches_created) == (0, 0)
    assert await count(engine, organisations) == 6
    assert await count(engine, people) == 6
    assert await count(engine, person_roles) == 8
    assert all(row["updated_at"] == NOW for row in (await load(engine)).values())


async def test_a_changed_phone_and_branch_update_those_people_only(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lines = roster()
    await import_roster(
        engine,
        write_csv(tmp_path / "v1.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    lines[0].phone = "13999990001"
    lines[2].branch = "东街社区党支部"  # 王德明 moves from 西村 to 东街
    lines[3].branch = "新河村党支部"  # 赵桂兰 moves to a branch not seen before
    later = datetime(2026, 4, 1, tzinfo=UTC)

    report = await import_roster(
        engine,
        write_csv(tmp_path / "v2.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=later,
    )

    assert (report.created, report.updated, report.unchanged) == (0, 3, 3)
    assert (report.committees_created, report.branches_created) == (0, 1)
    stored = await load(engine)
    assert stored[ZHANG]["phone"] == "13999990001"
    assert stored[WANG]["branch"] == "东街社区党支部"
    assert (stored[ZHAO]["committee"], stored[ZHAO]["branch"]) == ("河口乡党委", "新河村党支部")
    for number in (ZHANG, WANG, ZHAO):
        assert (stored[number]["created_at"], stored[number]["updated_at"]) == (NOW, later)
    assert stored[LI]["updated_at"] == NOW
    assert await count(engine, people) == 6


async def test_a_blank_optional_cell_keeps_what_is_stored(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lines = roster()
    await import_roster(
        engine,
        write_csv(tmp_path / "v1.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    lines[0].phone = lines[0].joined = lines[0].urban_rural = ""

    report = await import_roster(
        engine,
        write_csv(tmp_path / "v2.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )

    assert (report.updated, report.unchanged) == (0, 6)
    zhang = (await load(engine))[ZHANG]
    assert (zhang["phone"], zhang["joined_on"], zhang["urban_rural"]) == (
        "13812340001",
        date(1972, 7, 1),
        "城镇",
    )


async def test_roles_are_replaced_by_the_files_roles(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    await import_roster(
        engine,
        write_csv(tmp_path / "v1.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    lines[1].roles = "党员"  # 李秀英 is no longer secretary
    lines[2].roles = "党员/支部书记"  # 王德明 takes over in his branch

    report = await import_roster(
        engine,
        write_csv(tmp_path / "v2.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )

    assert (report.updated, report.unchanged) == (2, 4)
    stored = await load(engine)
    assert stored[LI]["roles"] == {"member"}
    assert stored[WANG]["roles"] == {"member", "secretary"}
    assert await count(engine, person_roles) == 8


# --- Refusing and skipping bad lines -------------------------------------------------------


async def test_one_bad_checksum_refuses_the_whole_file(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    lines[1].id_number = bad_checksum(LI)
    path = write_csv(tmp_path / "花名册.csv", lines)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert report.refused
    assert report.rejected == [Rejection(3, CHECKSUM)]
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert report.lines() == ["第 3 行：" + CHECKSUM, REFUSED_ONE]
    assert await count(engine, people) == 0
    assert await count(engine, organisations) == 0


async def test_skip_invalid_imports_the_good_lines(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    lines[1].id_number = bad_checksum(LI)
    path = write_csv(tmp_path / "花名册.csv", lines)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)

    assert not report.refused
    assert (report.created, report.rejected) == (5, [Rejection(3, CHECKSUM)])
    assert (
        report.lines()[-1].startswith("导入完成：新增 5 人") and "跳过 1 行" in report.lines()[-1]
    )
    stored = await load(engine)
    assert set(stored) == {ZHANG, WANG, ZHAO, LIU, CHEN}
    assert stored[ZHANG]["roles"] == {"member"}


async def test_a_duplicate_id_rejects_the_later_line(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    lines.append(Line("张建华", "男", "", "", ZHANG, "", "城关镇党委", "西村党支部", "党员", ""))
    path = write_csv(tmp_path / "花名册.csv", lines)

    refused = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)
    skipped = await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)

    assert refused.rejected == [Rejection(8, "身份证号与第 2 行重复，同一个人只留一行")]
    assert skipped.created == 6
    assert (await load(engine))[ZHANG]["name"] == "张建国"


async def test_rejections_never_show_a_full_id_or_phone(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lines = roster()
    lines[0].id_number = bad_checksum(ZHANG)
    lines[1].roles = lines[1].phone  # the clerk shifted a column
    lines[2].phone = "1381234"
    path = write_csv(tmp_path / "花名册.csv", lines)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert [r.line for r in report.rejected] == [2, 3, 4]
    assert "角色" in report.rejected[1].reason and "手机号" in report.rejected[2].reason
    assert not any(re.search(r"[0-9]{7,}", line.replace(" ", "")) for line in report.lines())


# --- File formats --------------------------------------------------------------------------


def test_a_missing_required_header_is_one_error_before_any_row(tmp_path: Path) -> None:
    header = [name for name in HEADER if name != "支部"]
    path = tmp_path / "花名册.csv"
    path.write_text(
        ",".join(header) + "\n" + ",".join(["张建国"] + [""] * 8) + "\n", encoding="utf-8"
    )

    with pytest.raises(RosterError) as raised:
        read_roster(path)

    message = str(raised.value)
    assert "支部" in message and "\n" not in message


async def test_a_missing_header_writes_nothing(engine: AsyncEngine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "花名册.csv",
        roster(),
        header=[name if name != "身份证号" else "证件" for name in HEADER],
    )

    with pytest.raises(RosterError) as raised:
        await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)
    assert str(raised.value) == (
        "表头（第 1 行）缺少列：「身份证号」（也可以叫 公民身份号码、公民身份证号码、身份证号码、"
        "公民身份证号、身份证）。请在表头加上后再导入。"
    )
    assert await count(engine, organisations) == 0


def test_headers_in_any_order_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "花名册.csv"
    path.write_text(
        f" 角色 ,序号,身份证号 ,姓  名,支部,党委\n党员,1,{ZHANG},张建国,西村党支部,城关镇党委\n",
        encoding="utf-8",
    )

    rows = read_roster(path)

    assert [row.line for row in rows] == [2]
    assert (rows[0].value("姓名"), rows[0].value("身份证号"), rows[0].value("角色")) == (
        "张建国",
        ZHANG,
        "党员",
    )
    assert rows[0].value("手机号") is None


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
async def test_csv_as_excel_saves_it(engine: AsyncEngine, tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "花名册.csv", roster(), encoding=encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")

    rows = read_roster(path)
    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert rows[0].value("姓名") == "张建国"  # no BOM glued to the first header
    assert report.created == 6
    assert_roster_stored(await load(engine))


def write_xlsx(path: Path, lines: Sequence[Line]) -> Path:
    """Build a workbook as a clerk fills it in Excel: real date cells, phones as numbers."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([f" {name} " for name in HEADER])
    for line in lines:
        cells: list[Any] = line.cells()
        for index in (2, 3):  # 出生日期, 入党日期
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[index]):
                cells[index] = datetime.fromisoformat(cells[index])
        if cells[5].isdigit():
            cells[5] = int(cells[5])
        sheet.append([cell if cell != "" else None for cell in cells])
    workbook.create_sheet("说明").append(["本表由组织部下发"])
    workbook.save(path)
    return path


async def test_xlsx_import_reads_dates_and_numeric_phones(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "花名册.xlsx", roster())

    rows = read_roster(path)
    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (
        isinstance(rows[0].value("入党日期"), datetime) and rows[0].value("手机号") == 13812340001
    )
    assert (report.created, report.rejected) == (6, [])
    assert await tree(engine) == EXPECTED_TREE
    assert_roster_stored(await load(engine))


def test_xlsx_skips_blank_rows_but_keeps_spreadsheet_line_numbers(tmp_path: Path) -> None:
    lines = roster()
    path = tmp_path / "花名册.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(lines[0].cells())
    sheet.append([None] * len(HEADER))
    sheet.append(lines[1].cells())
    workbook.save(path)

    assert [row.line for row in read_roster(path)] == [2, 4]


def test_an_id_stored_as_a_number_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "花名册.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([int(ZHANG) if i == 4 else cell for i, cell in enumerate(roster()[0].cells())])
    workbook.save(path)
    csv_path = tmp_path / "花名册.csv"
    lines = roster()[:1]
    lines[0].id_number = "5.32901E+17"  # what Excel writes to CSV for a number cell
    write_csv(csv_path, lines)

    for rows in (read_roster(path), read_roster(csv_path)):
        _, rejected = validate(rows, today=TODAY)
        assert [r.line for r in rejected] == [2]
        assert rejected[0].reason.startswith("身份证号存成了数字")


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    old_excel = tmp_path / "花名册.xls"
    old_excel.write_bytes(b"\xd0\xcf\x11\xe0")
    not_a_workbook = tmp_path / "花名册.xlsx"
    not_a_workbook.write_text("姓名,身份证号\n", encoding="utf-8")

    with pytest.raises(RosterError, match="xls"):
        read_roster(old_excel)
    with pytest.raises(RosterError, match="Excel"):
        read_roster(not_a_workbook)


# --- Checks on single lines ----------------------------------------------------------------


def row(line: int = 2, **cells: Any) -> RosterRow:
    """A line of the template; keyword names are the Chinese headers."""
    values: dict[str, Any] = {
        "姓名": "张建国",
        "身份证号": ZHANG,
        "党委": "城关镇党委",
        "支部": "西村党支部",
        "角色": "党员",
    }
    values.update(cells)
    return RosterRow(line, values)


def check(**cells: Any) -> Any:
    """The person a single line gives, or its rejection reason."""
    valid, rejected = validate([row(**cells)], today=TODAY)
    return valid[0] if valid else rejected[0].reason


@pytest.mark.parametrize(
    ("typed", "roles"),
    [
        ("党员", {"member"}),
        ("党员、支部书记", {"member", "secretary"}),
        ("党员，党委委员", {"member", "committee"}),
        ("党员/支部书记", {"member", "secretary"}),
        ("支部书记 党员", {"member", "secretary"}),
        ("支部书记", {"secretary"}),  # a secretary is not made a member unless the file says so
        ("组织部、监督小组", {"department", "supervisor"}),
    ],
)
def test_role_lists(typed: str, roles: set[str]) -> None:
    assert check(角色=typed).roles == roles


def test_an_unknown_role_is_named() -> None:
    assert check(角色="党员、会计") == (
        "角色里的「会计」不认识，可填：党员、支部书记、党委委员、组织部、监督小组"
    )
    assert check(角色="") == "角色是空的，请填角色，比如 党员"


def test_department_staff_need_no_branch() -> None:
    staff = check(角色="组织部", 党委="", 支部="")
    supervisor = check(角色="监督小组", 党委="城关镇党委", 支部="西村党支部")

    assert (staff.committee, staff.branch, staff.roles) == (None, None, {"department"})
    assert (supervisor.committee, supervisor.branch) == (None, None)
    assert check(角色="组织部、党员", 党委="", 支部="") == (
        "党委是空的，请填所属党委，比如 桃源镇党委；或在支部一栏写全称，比如 桃源镇桃源村党支部；"
        "支部是空的，请填所在党支部，比如 桃源镇桃源村党支部"
    )
    assert check(角色="党员", 支部=" ") == "支部是空的，请填所在党支部，比如 桃源镇桃源村党支部"


def test_gender_and_birth_date_come_from_the_id_when_blank() -> None:
    person = check(性别="", 出生日期="")

    assert (person.gender, person.birth_date) == ("男", date(1948, 3, 12))
    assert check(出生日期=datetime(1948, 3, 12)).birth_date == date(1948, 3, 12)
    assert check(出生日期="1948年3月13日") == (
        "出生日期与身份证号不符，请改正，或空着（按身份证号算）"
    )
    assert check(性别="男的") == "性别只能填男或女（也可以空着，按身份证号算）"


def test_joining_date_must_fall_between_birth_and_today() -> None:
    assert check(入党日期="1972.7.1").joined_on == date(1972, 7, 1)
    assert check(入党日期="1940-07-01") == "入党日期早于出生日期，请核对后重填"
    assert check(入党日期="2026-03-03") == "入党日期不能晚于今天，请核对后重填"
    assert check(入党日期=datetime(2027, 1, 1)) == "入党日期不能晚于今天，请核对后重填"
    assert check(入党日期="去年").startswith("入党日期看不懂")


def test_urban_rural_phone_and_name() -> None:
    assert check(城乡="城市").urban_rural == "城镇"
    assert check(城乡="乡村").urban_rural == "农村"
    assert check(城乡="郊区") == "城乡只能填城镇或农村（也可以空着）"
    assert check(手机号=13812340001.0).phone == "13812340001"
    assert check(姓名="Zhang") == "姓名应为 2 到 20 个汉字，请只填姓名本身"


def test_every_problem_of_a_line_is_reported_together() -> None:
    reason = check(姓名="", 身份证号=ZHANG[:17], 城乡="郊区")

    assert reason == (
        "姓名是空的，请填上姓名；身份证号应为 18 位，请对照身份证重填；"
        "城乡只能填城镇或农村（也可以空着）"
    )


def test_a_report_prints_one_line_per_rejection_and_a_summary() -> None:
    report = ImportReport(rejected=[Rejection(12, CHECKSUM)], refused=True)

    assert report.lines() == ["第 12 行：" + CHECKSUM, REFUSED_ONE]


def test_people_and_rows_keep_numbers_out_of_their_repr() -> None:
    person = check(手机号="13812340001")

    assert ZHANG not in repr(person) and "13812340001" not in repr(person)
    assert ZHANG not in repr(row())


# --- The national system's export (全国党员管理信息系统) ------------------------------------

NATIONAL_HEADER = [
    "序号",
    "姓名",
    "性别",
    "民族",
    "公民身份号码",
    "出生日期",
    "学历",
    "人员类别",
    "入党时间",
    "联系电话",
    "所在党支部",
]


def national(
    number: int, name: str, id_number: str, branch: str, *, phone: str = "", joined: str = ""
) -> list[Any]:
    """A line of the export: columns the roster has no place for (民族, 学历, 人员类别) too."""
    return [number, name, "", "汉族", id_number, "", "高中", "正式党员", joined, phone, branch]


def write_national_xlsx(
    path: Path, lines: Sequence[Sequence[Any]], header: Sequence[str] = NATIONAL_HEADER
) -> Path:
    """The export as the system writes it: a title row and a blank row above the header."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["党员基本信息（导出时间：2026-03-01）"])
    sheet.append([])
    sheet.append(list(header))
    for cells in lines:
        sheet.append([cell if cell != "" else None for cell in cells])
    workbook.save(path)
    return path


def write_national_csv(
    path: Path,
    lines: Sequence[Sequence[Any]],
    *,
    encoding: str = "gbk",
    header: Sequence[str] = NATIONAL_HEADER,
) -> Path:
    rows = ["党员基本信息" + "," * (len(header) - 1), ",".join(header)]
    rows += [",".join(str(cell) for cell in cells) for cells in lines]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode(encoding))
    return path


def export() -> list[list[Any]]:
    return [
        national(
            1,
            "张建国",
            ZHANG,
            "中共城关镇委员会东街社区党支部",
            phone="13812340001",
            joined="1972-07-01",
        ),
        national(2, "李秀英", LI, "城关镇东街社区党支部", phone="+86 138 1234 0002"),
        national(3, "王德明", WANG, "中共城关镇委员会西村党支部"),
        national(4, "赵桂兰", ZHAO, "河口乡河口村党支部", phone="138-1234-0004"),
        national(5, "刘志强", LIU, "中国共产党河口乡委员会河口村党支部"),
    ]


NATIONAL_TREE = {
    ("county", COUNTY, None),
    ("committee", "城关镇党委", COUNTY),
    ("committee", "河口乡党委", COUNTY),
    ("branch", "东街社区党支部", "城关镇党委"),
    ("branch", "西村党支部", "城关镇党委"),
    ("branch", "河口村党支部", "河口乡党委"),
}


async def test_the_national_export_builds_the_tree_from_branch_names(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_national_xlsx(tmp_path / "党员信息.xlsx", export())

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.created, report.rejected) == (5, [])
    assert (report.committees_created, report.branches_created) == (2, 3)
    assert await tree(engine) == NATIONAL_TREE
    stored = await load(engine)
    assert all(person["roles"] == {"member"} for person in stored.values())  # no 角色 column
    assert (stored[ZHANG]["joined_on"], stored[ZHANG]["phone"]) == (date(1972, 7, 1), "13812340001")
    assert stored[LI]["phone"] == "13812340002"  # spaces and +86
    assert stored[ZHAO]["phone"] == "13812340004"
    assert (stored[LI]["gender"], stored[LI]["birth_date"]) == ("女", date(1965, 8, 20))


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
async def test_the_national_export_as_csv(
    engine: AsyncEngine, tmp_path: Path, encoding: str
) -> None:
    path = write_national_csv(tmp_path / "党员信息.csv", export(), encoding=encoding)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.created, report.rejected) == (5, [])
    assert await tree(engine) == NATIONAL_TREE
    assert [row.line for row in read_roster(path)] == [3, 4, 5, 6, 7]


async def test_bad_lines_of_the_export_name_its_own_columns(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lines = export()
    lines[1][4] = bad_checksum(LI)
    lines[2][10] = "西村党支部"  # no township in the name
    lines.append(national(6, "张建华", ZHANG, "城关镇西村党支部"))  # the same ID again
    lines.append(national(7, "陈静", CHEN, "桃源乡村党支部", phone="1381234"))
    path = write_national_xlsx(tmp_path / "党员信息.xlsx", lines)

    refused = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert refused.refused and await count(engine, people) == 0
    assert refused.lines() == [
        "第 5 行：公民身份号码最后一位（校验位）对不上，多半是抄错了一位，请对照身份证重填",
        "第 6 行：所在党支部「西村党支部」看不出属于哪个乡镇党委："
        "请写全称，比如 桃源镇桃源村党支部；或加一列「党委」，"
        "或用 --committee-column 指定党委所在的列",
        "第 9 行：公民身份号码与第 4 行重复，同一个人只留一行",
        "第 10 行：联系电话不对，应为 11 位手机号（或带区号的座机），请改正或空着；"
        "所在党支部「桃源乡村党支部」看不出属于哪个乡镇党委：请写全称，比如 桃源镇桃源村党支部；"
        "或加一列「党委」，或用 --committee-column 指定党委所在的列",
        "有 4 行有错，名单没有导入。请改正这些行后重新导入；"
        "加上 --skip-invalid 可以跳过这些行，先导入其余的。",
    ]

    skipped = await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)

    assert (skipped.created, len(skipped.rejected)) == (3, 4)
    assert set(await load(engine)) == {ZHANG, ZHAO, LIU}


async def test_the_committee_from_a_column_the_operator_names(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    header = [*NATIONAL_HEADER, "所属乡镇"]
    lines = [
        [*line, township]
        for line, township in zip(
            export(),
            ["城关镇党委", "城关镇党委", "城关镇党委", "河口乡党委", "河口乡党委"],
            strict=True,
        )
    ]
    lines[0][10] = "东街社区党支部"
    path = write_national_xlsx(tmp_path / "党员信息.xlsx", lines, header=header)

    report = await import_roster(
        engine, path, county_name=COUNTY, skip_invalid=False, now=NOW, committee_column="所属乡镇"
    )

    assert (report.created, report.rejected) == (5, [])
    stored = await load(engine)
    assert (stored[ZHANG]["committee"], stored[ZHANG]["branch"]) == ("城关镇党委", "东街社区党支部")
    # With a column for the 党委 the branch is taken as written.
    assert stored[LIU]["branch"] == "中国共产党河口乡委员会河口村党支部"
    with pytest.raises(RosterError) as raised:
        read_roster(path, committee_column="乡镇")
    assert str(raised.value) == (
        "表头里没有 --committee-column 指定的「乡镇」列，请核对列名（要和表头写得一样）。"
    )


def test_a_blank_committee_cell_is_read_from_the_branch_name() -> None:
    person = check(党委="", 支部="中共河口乡委员会河口村党支部")

    assert (person.committee, person.branch) == ("河口乡党委", "河口村党支部")
    assert check(党委="", 支部="河口村党支部").startswith("党委是空的，请填所属党委")


@pytest.mark.parametrize(
    ("full_name", "split"),
    [
        ("中共桃源镇委员会桃源村党支部", ("桃源镇党委", "桃源村党支部")),
        ("中国共产党桃源镇委员会桃源村党支部", ("桃源镇党委", "桃源村党支部")),
        ("桃源镇桃源村党支部", ("桃源镇党委", "桃源村党支部")),
        ("桃源镇党委桃源村党支部", ("桃源镇党委", "桃源村党支部")),
        ("桃源镇 桃源村党支部", ("桃源镇党委", "桃源村党支部")),
        ("中共城关街道工作委员会东街社区党支部", ("城关街道党委", "东街社区党支部")),
        ("城关街道东街社区党支部", ("城关街道党委", "东街社区党支部")),
        ("河口乡河口村党支部", ("河口乡党委", "河口村党支部")),
        ("桃源镇新乡村党支部", ("桃源镇党委", "新乡村党支部")),  # the first township wins
        ("桃源镇机关党支部", ("桃源镇党委", "机关党支部")),
        ("中共某县教育局委员会实验小学党支部", ("某县教育局党委", "实验小学党支部")),
        ("桃源村党支部", None),  # no township
        ("镇江路社区党支部", None),  # 镇 starts the name: not a township
        ("乡村振兴局党支部", None),
        ("桃源乡村党支部", None),  # 桃源乡 + 村党支部 does not name a branch
        ("桃源镇党支部", None),
        ("中共桃源镇委员会", None),
    ],
)
def test_split_branch(full_name: str, split: tuple[str, str] | None) -> None:
    assert split_branch(full_name) == split


async def test_without_a_roles_column_stored_roles_are_kept(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_roster(
        engine,
        write_csv(tmp_path / "模板.csv", roster()),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    lines = export()
    lines[0][9] = "13999990001"  # 张建国's new phone
    lines.append(national(6, "孙丽", SUN := make_id("19900101", "028"), "城关镇西村党支部"))
    later = datetime(2026, 4, 1, tzinfo=UTC)

    report = await import_roster(
        engine,
        write_national_xlsx(tmp_path / "导出.xlsx", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=later,
    )

    assert (report.created, report.updated, report.unchanged) == (1, 1, 4)
    stored = await load(engine)
    assert stored[LI]["roles"] == {"member", "secretary"}  # from the template, kept
    assert stored[LIU]["roles"] == {"member", "committee"}
    assert stored[SUN]["roles"] == {"member"}
    assert stored[ZHANG]["phone"] == "13999990001"
    assert stored[CHEN]["branch_id"] is None  # county staff, not in the export


async def test_county_staff_in_the_export_stay_with_the_county(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_roster(
        engine,
        write_csv(tmp_path / "模板.csv", roster()),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    lines = [national(1, "陈静", CHEN, "中共城关镇委员会东街社区党支部")]

    report = await import_roster(
        engine,
        write_national_xlsx(tmp_path / "导出.xlsx", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )

    assert (report.updated, report.unchanged) == (0, 1)
    chen = (await load(engine))[CHEN]
    assert (chen["branch_id"], chen["roles"]) == (None, {"department"})


async def test_fifty_thousand_rows_are_one_bulk_import(engine: AsyncEngine, tmp_path: Path) -> None:
    size = 50_000
    lines = [
        national(
            n,
            "张建国",
            with_check(f"{532901 + n // 1000}19600101{n % 1000:03d}"),
            f"中共镇{n % 20}镇委员会村{n % 300}村党支部",
            phone=f"138 1234 {n % 10_000:04d}",
            joined="1990-07-01",
        )
        for n in range(size)
    ]
    path = write_national_csv(tmp_path / "全县.csv", lines)
    statements = 0

    def counted(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", counted)
    try:
        report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", counted)

    assert (report.created, report.rejected, report.branches_created) == (size, [], 300)
    assert await count(engine, people) == size
    assert await count(engine, person_roles) == size
    # Lookups and writes go in batches: one statement per 500 people at most (and one per
    # new organisation), never one per row.
    assert statements < size / 50
