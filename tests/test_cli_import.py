"""`bangfu-bot import members` and `import roles`, run as a real process: what the operator
reads, the exit codes (0 done, 1 refused or unreadable, 2 a wrong option), the hand-over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bangfu_bot import db
from bangfu_bot.cases import procedure
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import cases
from bangfu_bot.cases.transitions import load_case
from bangfu_bot.members.models import organisations, people
from bangfu_bot.todos.models import todos
from tests.members.test_roster import (
    LI,
    LIU,
    WANG,
    ZHAO,
    bad_checksum,
    export,
    national,
    roster,
    write_csv,
    write_national_csv,
)
from tests.test_cli_wechat import run_cli

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SKIP_HINT = "加上 --skip-invalid 可以跳过这些行，先导入其余的。"


SRC = Path(__file__).resolve().parents[1] / "src"


def env_for(database_url: str, tmp_path: Path) -> dict[str, str]:
    # This checkout's code, not whichever checkout the virtualenv has installed.
    return {
        "BANGFU_DATABASE_URL": database_url,
        "BANGFU_STORAGE_DIR": str(tmp_path),
        "PYTHONPATH": str(SRC),
    }


def said(err: str) -> list[str]:
    """What the command told the operator on stderr (the log lines aside)."""
    return [line for line in err.splitlines() if line.startswith("bangfu-bot:")]


async def names(database_url: str, table: Any) -> set[str]:
    engine = db.make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(select(table.c.name))).scalars())
    finally:
        await engine.dispose()


async def test_import_members_reads_a_gbk_export(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    lines = export()
    lines[2][4] = bad_checksum(WANG)
    lines.append(national(6, "孙丽", LI, "城关镇西村党支部"))
    path = write_national_csv(tmp_path / "党员信息.csv", lines)

    code, out, err = await run_cli(env, "import", "members", str(path))

    assert code == 1, err
    assert out.splitlines() == [
        "第 5 行：公民身份号码最后一位（校验位）对不上，多半是抄错了一位，请对照身份证重填",
        "第 8 行：公民身份号码与第 4 行重复，同一个人只留一行",
        "有 2 行有错，名单没有导入。请改正这些行后重新导入；" + SKIP_HINT,
    ]
    assert await names(database_url, people) == set()

    code, out, err = await run_cli(
        env, "import", "members", str(path), "--skip-invalid", "--county", "示范县委组织部"
    )

    assert code == 0, err
    assert out.splitlines()[-1] == (
        "导入完成：新增 4 人，更新 0 人，无变化 0 人，跳过 2 行；新建党委 2 个，新建支部 2 个。"
    )
    assert await names(database_url, organisations) == {
        "示范县委组织部",
        "城关镇党委",
        "河口乡党委",
        "东街社区党支部",
        "河口村党支部",
    }


async def test_import_members_with_a_committee_column(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    path = tmp_path / "名单.csv"
    path.write_text(
        f"姓名,身份证号,所在党支部,乡镇\n李秀英,{LI},东街社区党支部,城关镇党委\n", encoding="utf-8"
    )

    code, out, err = await run_cli(env, "import", "members", str(path))
    assert code == 1 and "看不出属于哪个乡镇党委" in out, err

    code, out, err = await run_cli(
        env, "import", "members", str(path), "--committee-column", "乡镇"
    )
    assert code == 0 and "新建党委 1 个" in out, err

    code, out, err = await run_cli(
        env, "import", "members", str(path), "--committee-column", "所属党委"
    )
    assert (code, out) == (1, "")
    assert said(err) == [
        f"bangfu-bot: {path}: 表头里没有 --committee-column 指定的「所属党委」列，"
        "请核对列名（要和表头写得一样）。"
    ]


async def test_unreadable_files_are_one_line(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    old = tmp_path / "名单.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    only_header = tmp_path / "空表.csv"
    only_header.write_text("姓名,公民身份号码,所在党支部\n", encoding="gbk")

    for command in ("members", "roles"):
        code, out, err = await run_cli(env, "import", command, str(old))
        assert (code, out) == (1, ""), err
        assert said(err) == [
            f"bangfu-bot: {old}: 这是旧版 Excel 文件（.xls），请在 Excel 或 "
            "WPS 里打开，另存为 .xlsx（Excel 工作簿）后再导入。"
        ]
        code, _, err = await run_cli(env, "import", command, str(tmp_path / "没有.csv"))
        assert code == 1
        assert said(err) == [
            f"bangfu-bot: {tmp_path / '没有.csv'}: 找不到这个文件，请检查路径和文件名。"
        ]
    code, _, err = await run_cli(env, "import", "members", str(only_header))
    (line,) = said(err)
    assert code == 1 and "只有表头" in line
    code, _, err = await run_cli(env, "import", "roles")
    assert code == 2 and "file" in err  # argparse: the file is missing


async def test_import_roles_hands_over_the_to_dos(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    lines = roster()
    lines[3].roles = lines[4].roles = "党员、党委委员"  # 赵桂兰 and 刘志强 of 河口乡
    lines[2].committee, lines[2].branch = "河口乡党委", "河口村党支部"
    code, _, err = await run_cli(
        env, "import", "members", str(write_csv(tmp_path / "名单.csv", lines))
    )
    assert code == 0, err
    engine = db.make_engine(database_url)
    try:
        async with engine.begin() as conn:
            ids = {row.id_number: row.id for row in await conn.execute(select(people))}
            wang = ids[WANG]
            branch = (
                await conn.execute(select(people.c.branch_id).where(people.c.id == wang))
            ).scalar_one()
            case_id = int(
                (
                    await conn.execute(
                        insert(cases).values(
                            person_id=wang,
                            branch_id=branch,
                            kind="hardship",
                            status=S.REPORTED,
                            category="缺资金",
                            help_wanted="资金",
                            household_size=1,
                            household_income_fen=0,
                            looks_above_line=False,
                            answers={},
                            filed_by=wang,
                            consent_recorded=False,
                            created_at=NOW,
                            updated_at=NOW,
                        )
                    )
                ).inserted_primary_key[0]
            )
            officers = await procedure.hands(conn, "case.decide", await load_case(conn, case_id))
            assert sorted(officers) == sorted([ids[ZHAO], ids[LIU]])
            for officer in officers:
                await conn.execute(
                    insert(todos).values(
                        assignee_id=officer,
                        kind="approve",
                        key=f"case:{case_id}:approve:{officer}",
                        text="请审批",
                        subject_id=wang,
                        case_id=case_id,
                        created_at=NOW,
                    )
                )

        refused = tmp_path / "错的.csv"
        refused.write_text(
            f"姓名,身份证号,角色\n刘志强,{LIU},党员\n赵桂兰,{ZHAO[-6:]},会计\n", encoding="utf-8"
        )
        code, out, err = await run_cli(env, "import", "roles", str(refused))
        assert code == 1, err
        assert out.splitlines() == [
            "第 3 行：角色里的「会计」不认识，可填：党员、支部书记、党委委员、组织部、监督小组",
            "有 1 行有错，角色都没有改。请改正这些行后重新导入；" + SKIP_HINT,
        ]

        code, out, err = await run_cli(env, "import", "roles", str(refused), "--skip-invalid")
        assert code == 0, err
        assert out.splitlines()[1:] == [
            "角色已更新：改了 1 人，无变化 0 人，跳过 1 行。",
            "待办：1 条已关闭（原来的人不再有权办），0 条转给了现在有权办的人。",
        ]

        last = tmp_path / "角色.csv"
        last.write_text(f"姓名,身份证号,角色\n赵桂兰,{ZHAO[-6:]},党员\n", encoding="utf-8")
        code, out, err = await run_cli(env, "import", "roles", str(last))
        assert code == 0, err
        assert out.splitlines()[-1].startswith("待办：1 条已关闭")
        assert said(err) == [
            f"bangfu-bot: 名单上没有人能办这一步：case {case_id}: case.decide。"
            "请用 bangfu-bot import roles 给该办的人设上相应角色"
            "（如支部书记、党委委员）。"
        ]
        async with engine.connect() as conn:
            open_todos = (await conn.execute(select(todos).where(todos.c.done_at.is_(None)))).all()
        assert open_todos == []
    finally:
        await engine.dispose()
