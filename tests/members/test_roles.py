"""Setting roles from a short list after a roster without a 角色 column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.members.models import person_roles
from bangfu_bot.members.roles import RolesReport, import_roles
from bangfu_bot.members.roster import Rejection, import_roster
from tests.members.test_roster import (
    CHEN,
    COUNTY,
    LI,
    LIU,
    NOW,
    WANG,
    ZHANG,
    ZHAO,
    bad_checksum,
    count,
    load,
    make_id,
    roster,
    write_csv,
)


def write_roles(
    path: Path, lines: list[list[Any]], header: tuple[str, ...] = ("姓名", "身份证号", "角色")
) -> Path:
    rows = [",".join(header)] + [",".join(str(cell) for cell in line) for line in lines]
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


async def members_only(engine: AsyncEngine, tmp_path: Path) -> None:
    """The template roster with everyone a plain 党员, except 陈静 of the department."""
    lines = roster()
    for line in lines[:5]:
        line.roles = "党员"
    await import_roster(
        engine,
        write_csv(tmp_path / "名单.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )


async def roles_of(engine: AsyncEngine) -> dict[str, set[str]]:
    return {number: person["roles"] for number, person in (await load(engine)).items()}


async def test_roles_by_full_id_or_last_six(engine: AsyncEngine, tmp_path: Path) -> None:
    await members_only(engine, tmp_path)
    path = write_roles(
        tmp_path / "角色.csv",
        [
            ["李秀英", LI, "支部书记"],
            ["刘志强", LIU[-6:], "党委委员"],
            ["刘志强", LIU, "监督小组"],  # a second line adds to the first
            ["陈静", CHEN[-6:], "组织部、监督小组"],
        ],
    )

    report = await import_roles(engine, path, skip_invalid=False, now=NOW)

    assert report == RolesReport(changed=3, unchanged=0)
    assert report.lines() == ["角色已更新：改了 3 人，无变化 0 人，跳过 0 行。"]
    roles = await roles_of(engine)
    # 党员 stays with whoever has it: membership is the roster's word.
    assert roles[LI] == {"member", "secretary"}
    assert roles[LIU] == {"member", "committee", "supervisor"}
    assert roles[CHEN] == {"department", "supervisor"}
    assert roles[ZHANG] == roles[WANG] == roles[ZHAO] == {"member"}  # not listed: unchanged

    again = await import_roles(engine, path, skip_invalid=False, now=NOW)

    assert (again.changed, again.unchanged) == (0, 3)


async def test_a_later_list_takes_roles_away(engine: AsyncEngine, tmp_path: Path) -> None:
    await members_only(engine, tmp_path)
    await import_roles(
        engine,
        write_roles(tmp_path / "v1.csv", [["李秀英", LI, "支部书记"]]),
        skip_invalid=False,
        now=NOW,
    )

    report = await import_roles(
        engine,
        write_roles(
            tmp_path / "v2.csv", [["李秀英", LI, "党员"], ["王德明", WANG[-6:], "支部书记"]]
        ),
        skip_invalid=False,
        now=NOW,
    )

    assert (report.changed, report.unchanged) == (2, 0)
    roles = await roles_of(engine)
    assert (roles[LI], roles[WANG]) == ({"member"}, {"member", "secretary"})


async def test_bad_lines_refuse_the_list_with_reasons(engine: AsyncEngine, tmp_path: Path) -> None:
    await members_only(engine, tmp_path)
    path = write_roles(
        tmp_path / "角色.csv",
        [
            ["李秀英", LI, "支部书记"],
            ["李秀兰", LI, "支部书记"],  # nobody of that name
            ["张建国", WANG, "党委委员"],  # the ID is someone else's
            ["王德明", WANG[-6:], "会计"],
            ["陈静", CHEN[-6:], "支部书记"],  # county staff have no branch
            ["赵桂兰", bad_checksum(ZHAO), "党员"],
            ["赵桂兰", "12345", "党员"],
            ["", "", ""],  # a blank line between is not a line
            ["刘志强", "", "党员"],
        ],
    )

    report = await import_roles(engine, path, skip_invalid=False, now=NOW)

    assert report.refused and await roles_of(engine) == {
        **{number: {"member"} for number in (ZHANG, LI, WANG, ZHAO, LIU)},
        CHEN: {"department"},
    }
    assert report.lines() == [
        "第 3 行：名单上没有叫李秀兰的人，请核对姓名，或先用 bangfu-bot import members 导入名单",
        "第 4 行：名单上叫张建国的人，身份证号都对不上，请核对身份证号",
        "第 5 行：角色里的「会计」不认识，可填：党员、支部书记、党委委员、组织部、监督小组",
        "第 6 行：陈静在名单上没有所在支部，不能当支部书记：请先在名单里填上此人的支部"
        "（组织部、监督小组不需要支部）",
        "第 7 行：身份证号不是有效的身份证号，请对照身份证重填，或只填后 6 位",
        "第 8 行：身份证号应为 18 位身份证号，或它的后 6 位（最后一位可以是 X），请核对后重填",
        "第 10 行：身份证号是空的，请填 18 位身份证号，或它的后 6 位",
        "有 7 行有错，角色都没有改。请改正这些行后重新导入；"
        "加上 --skip-invalid 可以跳过这些行，先导入其余的。",
    ]

    skipped = await import_roles(engine, path, skip_invalid=True, now=NOW)

    assert (skipped.changed, len(skipped.rejected), skipped.refused) == (1, 7, False)
    assert (await roles_of(engine))[LI] == {"member", "secretary"}


async def test_two_people_with_one_name_and_one_tail_need_the_full_id(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lines = roster()[:1]
    await import_roster(
        engine,
        write_csv(tmp_path / "名单.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    # Two 张建国 whose IDs end alike: same birth day and sequence, another area, and the
    # same check character.
    other = make_id("19480312", "013", area="110119")
    lines[0].id_number = other
    await import_roster(
        engine,
        write_csv(tmp_path / "名单2.csv", lines),
        county_name=COUNTY,
        skip_invalid=False,
        now=NOW,
    )
    assert other[-6:] == ZHANG[-6:]

    by_tail = await import_roles(
        engine,
        write_roles(tmp_path / "角色.csv", [["张建国", ZHANG[-6:], "支部书记"]]),
        skip_invalid=False,
        now=NOW,
    )
    by_id = await import_roles(
        engine,
        write_roles(tmp_path / "角色2.csv", [["张建国", ZHANG, "支部书记"]]),
        skip_invalid=False,
        now=NOW,
    )

    assert by_tail.rejected == [
        Rejection(2, "名单上有 2 个叫张建国的人身份证号后 6 位相同，请填完整的 18 位身份证号")
    ]
    assert by_id.changed == 1
    roles = await roles_of(engine)
    assert (roles[ZHANG], roles[other]) == ({"member", "secretary"}, {"member"})


async def test_the_headers_a_department_writes(engine: AsyncEngine, tmp_path: Path) -> None:
    await members_only(engine, tmp_path)
    path = tmp_path / "角色.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["帮扶工作人员名单"])
    sheet.append(["序号", "姓 名", "身份证号后六位", "职务"])
    sheet.append([1, "李秀英", LI[-6:], "党支部书记"])
    sheet.append([2, "刘志强", int(LIU[-6:]), "组织委员"])  # typed as a number: still six
    sheet.append([3, "王德明", int(WANG[-6:]), "支部书记"])  # its leading 0 is lost
    workbook.save(path)

    report = await import_roles(engine, path, skip_invalid=True, now=NOW)

    assert report.changed == 2
    assert report.rejected == [
        Rejection(5, "身份证号后六位存成了数字，数字会丢位，请把这一列设成文本后重填")
    ]
    roles = await roles_of(engine)
    assert (roles[LI], roles[LIU]) == ({"member", "secretary"}, {"member", "committee"})
    assert await count(engine, person_roles) == 8
