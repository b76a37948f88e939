"""Reading the tables counties send: where the header is, what its columns are called, which
files are refused and how (one Chinese line that says what to do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from bangfu_bot.members.tables import SCAN_ROWS, RosterError, read_table

ALIASES = {
    "姓名": ("姓名",),
    "身份证号": ("身份证号", "公民身份号码", "身份证号码"),
    "手机号": ("手机号", "手机号码", "联系电话"),
    "党委": ("党委", "党(工)委"),
    "支部": ("支部", "所在党支部", "所在党组织"),
}
REQUIRED = ("姓名", "身份证号", "支部")


def write_xlsx(
    path: Path, rows: list[list[Any]], *, first_sheet: list[list[Any]] | None = None
) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    if first_sheet is not None:
        sheet.title = "说明"
        for cells in first_sheet:
            sheet.append(cells)
        sheet = workbook.create_sheet("名单")
    for cells in rows:
        sheet.append(cells)
    workbook.save(path)
    return path


def read(path: Path) -> Any:
    return read_table(path, ALIASES, REQUIRED)


def refusal(path: Path) -> str:
    with pytest.raises(RosterError) as raised:
        read(path)
    message = str(raised.value)
    assert "\n" not in message and not message.isascii()
    return message


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "导出.xlsx",
        [
            ["桃源县党员信息表"],
            ["导出时间：2026-03-01", None, "单位：桃源县委组织部"],
            [],
            ["序号", "姓名", "公民身份号码", "所在党支部"],
            [1, "张建国", "X", "桃源镇桃源村党支部"],
            [2, "李秀英", "Y", "桃源镇桃源村党支部"],
        ],
    )

    table = read(path)

    assert table.header_line == 4
    assert [record.line for record in table.records] == [5, 6]
    assert table.records[0].values == {
        "姓名": "张建国",
        "身份证号": "X",
        "支部": "桃源镇桃源村党支部",
    }
    assert table.headers == {"姓名": "姓名", "身份证号": "公民身份号码", "支部": "所在党支部"}


def test_headers_with_spaces_full_width_brackets_notes_asterisks_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "名单.csv"
    path.write_text(
        "\ufeff*姓　名 ,＊公民身份号码（18位）, 党（工）委 ,所在党组织【全称】\r\n"
        "张建国,X,桃源镇党委,桃源村党支部\r\n",
        encoding="utf-8",
    )

    table = read(path)

    assert set(table.headers) == {"姓名", "身份证号", "党委", "支部"}
    assert table.records[0].values["党委"] == "桃源镇党委"
    assert table.headers["身份证号"] == "＊公民身份号码（18位）"


def test_a_bom_inside_an_xlsx_header_cell(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "名单.xlsx",
        [["\ufeff姓名", "身份证号", "支部"], ["张建国", "X", "桃源村党支部"]],
    )

    assert read(path).records[0].values["姓名"] == "张建国"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-16"])
def test_csv_in_the_encodings_excel_writes(tmp_path: Path, encoding: str) -> None:
    separator = "\t" if encoding == "utf-16" else ","  # Excel's "Unicode text"
    path = tmp_path / "名单.csv"
    text = "\r\n".join(
        [
            separator.join(["姓名", "公民身份号码", "所在党支部"]),
            separator.join(["张建国", "X", "中共桃源镇委员会桃源村党支部"]),
        ]
    )
    path.write_bytes(text.encode(encoding))
    if encoding == "gbk":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")

    table = read(path)

    assert table.records[0].values == {
        "姓名": "张建国",
        "身份证号": "X",
        "支部": "中共桃源镇委员会桃源村党支部",
    }


def test_the_preferred_of_two_names_for_a_column_is_read(tmp_path: Path) -> None:
    path = tmp_path / "名单.csv"
    path.write_text(
        "姓名,身份证号,联系电话,手机号码,支部\n张建国,X,0851-1234567,13812340001,西村党支部\n",
        encoding="utf-8",
    )

    table = read(path)

    assert table.records[0].values["手机号"] == "13812340001"
    assert table.headers["手机号"] == "手机号码"


def test_the_same_header_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "名单.csv"
    path.write_text("姓名,身份证号,支部,身份证号\n张建国,X,西村党支部,Y\n", encoding="utf-8")

    assert refusal(path) == (
        "表头「身份证号」出现了两次（第 1 行第 2 列和第 4 列），请删掉或改名其中一列。"
    )


def test_a_file_with_only_a_header(tmp_path: Path) -> None:
    csv_path = tmp_path / "名单.csv"
    csv_path.write_text("标题\n姓名,身份证号,支部\n,,\n", encoding="utf-8")
    xlsx_path = write_xlsx(tmp_path / "名单.xlsx", [["姓名", "身份证号", "支部"]])

    assert refusal(csv_path) == (
        "文件里只有表头（第 2 行），下面没有一行数据，什么也没有导入。请检查是不是导出错了文件。"
    )
    assert "只有表头（第 1 行）" in refusal(xlsx_path)


def test_an_empty_file_and_a_file_without_a_header(tmp_path: Path) -> None:
    empty = tmp_path / "空.csv"
    empty.write_bytes(b"")
    no_header = tmp_path / "别的表.csv"
    no_header.write_text("品名,数量\n米,3\n", encoding="utf-8")

    assert refusal(empty).startswith("文件是空的")
    assert refusal(no_header) == (
        f"前 {SCAN_ROWS} 行里找不到表头：需要一行同时写着 姓名、身份证号、支部 这几列。"
    )


def test_a_header_further_down_than_the_scan_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "名单.csv"
    path.write_text(
        "标题\n" * SCAN_ROWS + "姓名,身份证号,支部\n张建国,X,西村党支部\n", encoding="utf-8"
    )

    assert refusal(path).startswith(f"前 {SCAN_ROWS} 行里找不到表头")


def test_a_missing_column_names_what_it_may_be_called(tmp_path: Path) -> None:
    path = tmp_path / "名单.csv"
    path.write_text("党员信息\n姓名,公民身份号码,性别\n张建国,X,男\n", encoding="utf-8")

    assert refusal(path) == (
        "表头（第 2 行）缺少列：「支部」（也可以叫 所在党支部、所在党组织）。请在表头加上后再导入。"
    )


def test_instructions_on_the_first_sheet_are_passed_over(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "名单.xlsx",
        [["姓名", "身份证号", "支部"], ["张建国", "X", "西村党支部"]],
        first_sheet=[["填表说明"], ["身份证号请设为文本"]],
    )

    assert [record.values["姓名"] for record in read(path).records] == ["张建国"]


def test_files_that_are_not_tables_say_so_in_one_line(tmp_path: Path) -> None:
    old_excel = tmp_path / "名单.xls"
    old_excel.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    word = tmp_path / "名单.docx"
    word.write_bytes(b"PK\x03\x04")
    renamed = tmp_path / "名单.csv"
    write_xlsx(tmp_path / "真的.xlsx", [["姓名"]]).rename(renamed)
    broken = tmp_path / "坏的.xlsx"
    broken.write_text("姓名,身份证号\n", encoding="utf-8")
    folder = tmp_path / "文件夹.csv"
    folder.mkdir()

    assert refusal(old_excel) == (
        "这是旧版 Excel 文件（.xls），请在 Excel 或 WPS 里打开，"
        "另存为 .xlsx（Excel 工作簿）后再导入。"
    )
    assert refusal(word).startswith("不认识这种文件（.docx）")
    assert refusal(renamed).startswith("这个文件其实是 Excel 工作簿")
    assert refusal(broken).startswith("打不开这个 Excel 文件")
    assert refusal(folder).startswith("这是一个文件夹")
    assert refusal(tmp_path / "没有这个.csv") == "找不到这个文件，请检查路径和文件名。"


def test_a_file_with_no_suffix_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "名单"
    path.write_text("姓名,身份证号,支部\n", encoding="utf-8")

    assert refusal(path).startswith("不认识这种文件（没有扩展名）")
