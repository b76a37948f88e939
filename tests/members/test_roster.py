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
from sqlalchemy import func, select, text
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


HEADER = ["姓名", "性别", "出生日期", "入党日期", "身份证号", "手机号", "党委", "支部", "角色", "城乡"]


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
        return [self.name, self.gender, self.birth, self.joined, self.id_number, self.phone,
                self.committee, self.branch, self.roles, self.urban_rural]


ZHANG = make_id("19480312", "013")
LI = make_id("19650820", "024")
WANG = make_id("19551102", "035")
ZHAO = make_id("19580105", "046")
LIU = make_id("19700315", "057")
CHEN = make_id("19850607", "068")


def roster() -> list[Line]:
    """Six people over two committees and three branches, plus one county staff member."""
    return [
        Line("张建国", "男", "1948-03-12", "1972-07-01", ZHANG, "13812340001",
             "城关镇党委", "东街社区党支部", "党员", "城镇"),
        Line("李秀英", "", "", "1990-06-15", LI, "138 1234 0002",
             "城关镇党委", "东街社区党支部", "党员、支部书记", "城镇"),
        Line("王德明", "男", "1955/11/02", "", WANG, "",
             "城关镇党委", "西村党支部", "党员", "农村"),
        Line("赵桂兰", "女", "", "1980年1月20日", ZHAO, "13812340004",
             "河口乡党委", "河口村党支部", "党员", "乡村"),
        Line("刘志强", "", "", "1995-07-01", LIU, "13812340005",
             " 河口乡党委 ", "河口村党支部", "党委委员，党员", ""),
        Line("陈静", "女", "", "", CHEN, "13812340006", "", "", "组织部", ""),
    ]


def write_csv(path: Path, lines: Sequence[Line], *, header: Sequence[str] = HEADER,
              encoding: str = "utf-8") -> Path:
    """Write a roster CSV the way Excel does (CRLF line ends)."""
    rows = [",".join(header)] + [",".join(line.cells()) for line in lines]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode(encoding))
    return path


async def load(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Everyone stored, by ID number, with the names of their branch and committee."""
    branch = organisations.alias("branch")
    committee = organisations.alias("committee")
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(people, branch.c.name.label("branch"), committee.c.name.label("committee"))
            .select_from(people.outerjoin(branch, branch.c.id == people.c.branch_id)
                         .outerjoin(committee, committee.c.id == branch.c.parent_id)))).all()
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
            select(organisations.c.kind, organisations.c.name, parent.c.name)
            .select_from(organisations.outerjoin(
                parent, parent.c.id == organisations.c.parent_id)))
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
        "张建国", "男", date(1948, 3, 12), date(1972, 7, 1))
    assert (zhang["committee"], zhang["branch"], zhang["roles"]) == (
        "城关镇党委", "东街社区党支部", {"member"})
    assert (zhang["phone"], zhang["urban_rural"], zhang["active"]) == ("13812340001", "城镇", True)
    li = stored[LI]
    # Gender and birth date left blank are read from the ID number.
    assert (li["gender"], li["birth_date"], li["phone"]) == ("女", date(1965, 8, 20), "13812340002")
    assert li["roles"] == {"member", "secretary"}
    assert (stored[WANG]["phone"], stored[WANG]["joined_on"]) == (None, None)
    assert (stored[ZHAO]["urban_rural"], stored[ZHAO]["joined_on"]) == ("农村", date(1980, 1, 20))
    assert (stored[LIU]["committee"], stored[LIU]["roles"]) == ("河口乡党委", {"member", "committee"})
    chen = stored[CHEN]
    assert (chen["branch_id"], chen["roles"]) == (None, {"department"})
    assert all(row["created_at"] == NOW == row["updated_at"] for row in stored.values())


# --- A first import and a repeat -----------------------------------------------------------


async def test_csv_import_builds_the_tree_and_stores_everyone(engine: AsyncEngine,
                                                              tmp_path: Path) -> None:
    path = write_csv(tmp_path / "花名册.csv", roster())

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.created, report.updated, report.unchanged, report.rejected) == (6, 0, 0, [])
    assert (report.committees_created, report.branches_created) == (2, 3)
    assert report.lines() == ["导入完成：新增 6 人，更新 0 人，无变化 0 人，跳过 0 行；"
                              "新建党委 2 个，新建支部 3 个。"]
    assert await tree(engine) == EXPECTED_TREE
    assert_roster_stored(await load(engine))


async def test_postgresql_counts_a_freshly_imported_roster(engine: AsyncEngine,
                                                           tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite gathers no statistics (see db.refresh_statistics)")
    await import_roster(engine, write_csv(tmp_path / "花名册.csv", roster()),
                        county_name=COUNTY, skip_invalid=False, now=NOW)
    async with engine.connect() as conn:
        counted = (await conn.execute(text(
            "SELECT reltuples FROM pg_class WHERE relname = 'people'"))).scalar_one()
    # What the planner believes, not left at "never counted" (-1) until autovacuum comes:
    # a lookup by openid would otherwise be planned as a scan of the whole roster.
    assert counted == 6


async def test_importing_the_same_file_again_changes_nothing(engine: AsyncEngine,
                                                             tmp_path: Path) -> None:
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


async def test_a_changed_phone_and_branch_update_those_people_only(engine: AsyncEngine,
                                                                  tmp_path: Path) -> None:
    lines = roster()
    await import_roster(engine, write_csv(tmp_path / "v1.csv", lines),
                        county_name=COUNTY, skip_invalid=False, now=NOW)
    lines[0].phone = "13999990001"
    lines[2].branch = "东街社区党支部"  # 王德明 moves from 西村 to 东街
    lines[3].branch = "新河村党支部"  # 赵桂兰 moves to a branch not seen before
    later = datetime(2026, 4, 1, tzinfo=UTC)

    report = await import_roster(engine, write_csv(tmp_path / "v2.csv", lines),
                                 county_name=COUNTY, skip_invalid=False, now=later)

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


async def test_a_blank_optional_cell_keeps_what_is_stored(engine: AsyncEngine,
                                                          tmp_path: Path) -> None:
    lines = roster()
    await import_roster(engine, write_csv(tmp_path / "v1.csv", lines),
                        county_name=COUNTY, skip_invalid=False, now=NOW)
    lines[0].phone = lines[0].joined = lines[0].urban_rural = ""

    report = await import_roster(engine, write_csv(tmp_path / "v2.csv", lines),
                                 county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.updated, report.unchanged) == (0, 6)
    zhang = (await load(engine))[ZHANG]
    assert (zhang["phone"], zhang["joined_on"], zhang["urban_rural"]) == (
        "13812340001", date(1972, 7, 1), "城镇")


async def test_roles_are_replaced_by_the_files_roles(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    await import_roster(engine, write_csv(tmp_path / "v1.csv", lines),
                        county_name=COUNTY, skip_invalid=False, now=NOW)
    lines[1].roles = "党员"  # 李秀英 is no longer secretary
    lines[2].roles = "党员/支部书记"  # 王德明 takes over in his branch

    report = await import_roster(engine, write_csv(tmp_path / "v2.csv", lines),
                                 county_name=COUNTY, skip_invalid=False, now=NOW)

    assert (report.updated, report.unchanged) == (2, 4)
    stored = await load(engine)
    assert stored[LI]["roles"] == {"member"}
    assert stored[WANG]["roles"] == {"member", "secretary"}
    assert await count(engine, person_roles) == 8


# --- Refusing and skipping bad lines -------------------------------------------------------


async def test_one_bad_checksum_refuses_the_whole_file(engine: AsyncEngine,
                                                       tmp_path: Path) -> None:
    lines = roster()
    lines[1].id_number = bad_checksum(LI)
    path = write_csv(tmp_path / "花名册.csv", lines)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert report.refused
    assert report.rejected == [Rejection(3, "身份证号校验位不对")]
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert report.lines() == ["第 3 行：身份证号校验位不对",
                              "有 1 行有错，名单没有导入。请改正后重新导入，或选择跳过错误行。"]
    assert await count(engine, people) == 0
    assert await count(engine, organisations) == 0


async def test_skip_invalid_imports_the_good_lines(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    lines[1].id_number = bad_checksum(LI)
    path = write_csv(tmp_path / "花名册.csv", lines)

    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)

    assert not report.refused
    assert (report.created, report.rejected) == (5, [Rejection(3, "身份证号校验位不对")])
    assert report.lines()[-1].startswith("导入完成：新增 5 人") and "跳过 1 行" in report.lines()[-1]
    stored = await load(engine)
    assert set(stored) == {ZHANG, WANG, ZHAO, LIU, CHEN}
    assert stored[ZHANG]["roles"] == {"member"}


async def test_a_duplicate_id_rejects_the_later_line(engine: AsyncEngine, tmp_path: Path) -> None:
    lines = roster()
    lines.append(Line("张建华", "男", "", "", ZHANG, "", "城关镇党委", "西村党支部", "党员", ""))
    path = write_csv(tmp_path / "花名册.csv", lines)

    refused = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)
    skipped = await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)

    assert refused.rejected == [Rejection(8, "身份证号与第 2 行重复")]
    assert skipped.created == 6
    assert (await load(engine))[ZHANG]["name"] == "张建国"


async def test_rejections_never_show_a_full_id_or_phone(engine: AsyncEngine,
                                                        tmp_path: Path) -> None:
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
    path.write_text(",".join(header) + "\n" + ",".join(["张建国"] + [""] * 8) + "\n",
                    encoding="utf-8")

    with pytest.raises(RosterError) as raised:
        read_roster(path)

    message = str(raised.value)
    assert "支部" in message and "\n" not in message


async def test_a_missing_header_writes_nothing(engine: AsyncEngine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "花名册.csv", roster(),
                     header=[name if name != "角色" else "职务" for name in HEADER])

    with pytest.raises(RosterError, match="角色"):
        await import_roster(engine, path, county_name=COUNTY, skip_invalid=True, now=NOW)
    assert await count(engine, organisations) == 0


def test_headers_in_any_order_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "花名册.csv"
    path.write_text(f" 角色 ,序号,身份证号 ,姓  名,支部,党委\n党员,1,{ZHANG},张建国,西村党支部,城关镇党委\n",
                    encoding="utf-8")

    rows = read_roster(path)

    assert [row.line for row in rows] == [2]
    assert (rows[0].value("姓名"), rows[0].value("身份证号"), rows[0].value("角色")) == (
        "张建国", ZHANG, "党员")
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


async def test_xlsx_import_reads_dates_and_numeric_phones(engine: AsyncEngine,
                                                          tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "花名册.xlsx", roster())

    rows = read_roster(path)
    report = await import_roster(engine, path, county_name=COUNTY, skip_invalid=False, now=NOW)

    assert isinstance(rows[0].value("入党日期"), datetime) and rows[0].value("手机号") == 13812340001
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
    values: dict[str, Any] = {"姓名": "张建国", "身份证号": ZHANG, "党委": "城关镇党委",
                              "支部": "西村党支部", "角色": "党员"}
    values.update(cells)
    return RosterRow(line, values)


def check(**cells: Any) -> Any:
    """The person a single line gives, or its rejection reason."""
    valid, rejected = validate([row(**cells)], today=TODAY)
    return valid[0] if valid else rejected[0].reason


@pytest.mark.parametrize(("typed", "roles"), [
    ("党员", {"member"}),
    ("党员、支部书记", {"member", "secretary"}),
    ("党员，党委委员", {"member", "committee"}),
    ("党员/支部书记", {"member", "secretary"}),
    ("支部书记 党员", {"member", "secretary"}),
    ("支部书记", {"secretary"}),  # a secretary is not made a member unless the file says so
    ("组织部、监督小组", {"department", "supervisor"}),
])
def test_role_lists(typed: str, roles: set[str]) -> None:
    assert check(角色=typed).roles == roles


def test_an_unknown_role_is_named() -> None:
    assert check(角色="党员、会计") == (
        "角色「会计」不认识（可填：党员、支部书记、党委委员、组织部、监督小组）")
    assert check(角色="") == "角色不能为空"


def test_department_staff_need_no_branch() -> None:
    staff = check(角色="组织部", 党委="", 支部="")
    supervisor = check(角色="监督小组", 党委="城关镇党委", 支部="西村党支部")

    assert (staff.committee, staff.branch, staff.roles) == (None, None, {"department"})
    assert (supervisor.committee, supervisor.branch) == (None, None)
    assert check(角色="组织部、党员", 党委="", 支部="") == "党委不能为空；支部不能为空"
    assert check(角色="党员", 支部=" ") == "支部不能为空"


def test_gender_and_birth_date_come_from_the_id_when_blank() -> None:
    person = check(性别="", 出生日期="")

    assert (person.gender, person.birth_date) == ("男", date(1948, 3, 12))
    assert check(出生日期=datetime(1948, 3, 12)).birth_date == date(1948, 3, 12)
    assert check(出生日期="1948年3月13日") == "出生日期与身份证号不符"
    assert check(性别="男的") == "性别只能填男或女"


def test_joining_date_must_fall_between_birth_and_today() -> None:
    assert check(入党日期="1972.7.1").joined_on == date(1972, 7, 1)
    assert check(入党日期="1940-07-01") == "入党日期早于出生日期"
    assert check(入党日期="2026-03-03") == "入党日期不能晚于今天"
    assert check(入党日期=datetime(2027, 1, 1)) == "入党日期不能晚于今天"
    assert check(入党日期="去年").startswith("入党日期看不懂")


def test_urban_rural_phone_and_name() -> None:
    assert check(城乡="城市").urban_rural == "城镇"
    assert check(城乡="乡村").urban_rural == "农村"
    assert check(城乡="郊区") == "城乡只能填城镇或农村"
    assert check(手机号=13812340001.0).phone == "13812340001"
    assert check(姓名="Zhang") == "姓名应为 2 到 20 个汉字"


def test_every_problem_of_a_line_is_reported_together() -> None:
    reason = check(姓名="", 身份证号=ZHANG[:17], 城乡="郊区")

    assert reason == "姓名不能为空；身份证号应为 18 位；城乡只能填城镇或农村"


def test_a_report_prints_one_line_per_rejection_and_a_summary() -> None:
    report = ImportReport(rejected=[Rejection(12, "身份证号校验位不对")], refused=True)

    assert report.lines() == ["第 12 行：身份证号校验位不对",
                              "有 1 行有错，名单没有导入。请改正后重新导入，或选择跳过错误行。"]


def test_people_and_rows_keep_numbers_out_of_their_repr() -> None:
    person = check(手机号="13812340001")

    assert ZHANG not in repr(person) and "13812340001" not in repr(person)
    assert ZHANG not in repr(row())
