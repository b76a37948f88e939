"""CLI commands that talk to WeChat, run as a real process against the fake WeChat API."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

from sqlalchemy import insert, select

from bangfu_bot import db
from bangfu_bot.members.models import binding_tickets
from tests.conftest import APPID, CONVERSATIONS, SECRET, TOKEN
from tests.factories import make_person, make_tree


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bangfu_bot.cli",
        *args,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def real_env(database_url: str, api: str, tmp_path: Any) -> dict[str, str]:
    return {
        "BANGFU_DATABASE_URL": database_url,
        "BANGFU_WECHAT_APPID": APPID,
        "BANGFU_WECHAT_SECRET": SECRET,
        "BANGFU_WECHAT_TOKEN": TOKEN,
        "BANGFU_WECHAT_API_BASE": api,
        "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
        "BANGFU_STORAGE_DIR": str(tmp_path),
    }


async def test_menu_push_sends_the_menu(
    database_url: str, fake_api: Any, fake_api_url: str, tmp_path: Any
) -> None:
    code, out, err = await run_cli(real_env(database_url, fake_api_url, tmp_path), "menu", "push")
    assert (code, out.strip()) == (0, "menu pushed"), err
    names = [button["name"] for button in fake_api.menu["button"]]
    assert names == ["申请帮扶", "查进度", "更多"]


async def test_tags_sync_puts_the_roster_on_the_platform(
    database_url: str, fake_api: Any, fake_api_url: str, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from bangfu_bot.members.models import bindings
    from bangfu_bot.wechat.models import wechat_users

    engine = db.make_engine(database_url)
    await db.migrate(engine)
    now = datetime.now(UTC)
    tree = await make_tree(engine, now)
    wang, _ = await make_person(engine, now, name="王德福", branch=tree.branch)
    async with engine.begin() as conn:
        await conn.execute(
            insert(bindings).values(openid="o-wang", person_id=wang, channel="import", bound_at=now)
        )
        await conn.execute(
            insert(wechat_users).values(  # he followed, and the bot heard
                openid="o-wang", subscribed=True, first_seen_at=now, subscribed_at=now
            )
        )
    await engine.dispose()
    fake_api.follow("o-wang")
    env = real_env(database_url, fake_api_url, tmp_path)
    code, out, err = await run_cli(env, "tags", "sync")
    assert code == 0, err
    assert out.startswith("tags: 4 created") and "; 4 tagged" in out  # 全体, 党员, 镇, 村
    assert fake_api.tagged("帮扶·桃源村党支部") == {"o-wang"}
    code, out, _ = await run_cli(env, "tags", "sync")
    assert (code, out.split(";")[0]) == (0, "tags: 0 created, 0 deleted, 0 without room")
    fake_api.fail_next("tags/get", 40164, errmsg="invalid ip, not in whitelist")
    code, _, err = await run_cli(env, "tags", "sync")
    assert code == 1 and "errcode 40164" in err


async def test_qrcode_issues_a_ticket_for_one_person(
    database_url: str, fake_api: Any, fake_api_url: str, tmp_path: Any
) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    tree = await make_tree(engine, now)
    _, number = await make_person(engine, now, name="王德福", branch=tree.branch)
    env = real_env(database_url, fake_api_url, tmp_path)
    code, out, err = await run_cli(env, "qrcode", number, "--days", "7")
    assert code == 0, err
    assert out.startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=")
    ticket = out.strip().split("ticket=")[1]
    async with engine.connect() as conn:
        (row,) = (await conn.execute(select(binding_tickets))).all()
    await engine.dispose()
    assert fake_api.qr_scene(ticket) == f"bind:{row.scene}"
    code, _, err = await run_cli(env, "qrcode", "没这个人")
    assert code == 1 and "nobody on the roster" in err


async def test_import_members_reports_bad_rows_and_writes_nothing(
    database_url: str, tmp_path: Any
) -> None:
    from tests.factories import id_number

    good = id_number(serial=101)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    roster = tmp_path / "名单.csv"
    roster.write_text(
        "姓名,性别,出生日期,入党日期,身份证号,手机号,党委,支部,角色,城乡\n"
        f"王德福,男,,1975-07-01,{good},13800138000,青山镇党委,桃源村党支部,党员,农村\n"
        f"张建国,男,,,{bad},,青山镇党委,桃源村党支部,党员、支部书记,农村\n",
        encoding="utf-8",
    )
    env = {"BANGFU_DATABASE_URL": database_url, "BANGFU_STORAGE_DIR": str(tmp_path)}
    code, out, err = await run_cli(env, "import", "members", str(roster))
    assert code == 1, err
    assert "第 3 行" in out and bad not in out
    code, out, err = await run_cli(env, "import", "members", str(roster), "--skip-invalid")
    assert code == 0, err
    assert "新增 1 人" in out
    code, out, err = await run_cli(
        env, "import", "members", str(roster), "--skip-invalid", "--county", "示范县委组织部"
    )
    assert code == 0 and "新增 0 人" in out, out + err  # keyed by ID number: no duplicate


async def test_broadcast_and_outbox_status_commands(database_url: str, tmp_path: Any) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    await engine.dispose()
    env = {"BANGFU_DATABASE_URL": database_url, "BANGFU_STORAGE_DIR": str(tmp_path)}
    code, _, err = await run_cli(env, "broadcast", "--text", "开会", "--to", "branch:没有的支部")
    assert code == 1 and "没有叫“没有的支部”的支部" in err
    code, _, err = await run_cli(env, "broadcast", "--text", "开会" * 251, "--to", "everyone")
    (refusal,) = [line for line in err.splitlines() if line.startswith("bangfu-bot:")]
    assert code == 1 and "通知太长：共 502 字，最多 500 字" in refusal
    code, out, err = await run_cli(env, "outbox", "status")
    assert code == 0 and "pending" in out and "escalated" in out


async def test_fund_contribute_and_report_commands(database_url: str, tmp_path: Any) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    await engine.dispose()
    env = {"BANGFU_DATABASE_URL": database_url, "BANGFU_STORAGE_DIR": str(tmp_path)}
    code, out, err = await run_cli(
        env,
        "fund",
        "contribute",
        "--source",
        "county_finance",
        "--amount",
        "27万",
        "--document",
        "县财政〔2026〕3号",
        "--date",
        "2026-01-05",
    )
    assert code == 0 and "270000.00" in out, err
    code, _, err = await run_cli(
        env,
        "fund",
        "contribute",
        "--source",
        "donation",
        "--amount",
        "很多",
        "--document",
        "x",
        "--date",
        "2026-01-05",
    )
    assert code == 2 and err.strip().splitlines()[-1].startswith("bangfu-bot: --amount:")
    report = tmp_path / "fund.xlsx"
    code, out, err = await run_cli(env, "fund", "report", "--year", "2026", "--out", str(report))
    assert code == 0 and "reconciliation 0.00" in out and report.exists(), err


async def test_seed_demo_then_chat_as_and_exports(tmp_path: Any) -> None:
    """The README's newcomer commands, run as a person would (on the embedded SQLite)."""
    import openpyxl

    env = {
        "BANGFU_STORAGE_DIR": str(tmp_path / "storage"),
        "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path}/storage/bangfu.db",
        "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
    }
    code, out, err = await run_cli(env, "seed-demo")
    assert code == 0, err
    code, out, err = await run_cli(
        env, "export", "ledger", "--year", "2026", "--out", str(tmp_path / "台账.xlsx")
    )
    assert code == 0 and "ledger rows" in out, err
    assert openpyxl.load_workbook(tmp_path / "台账.xlsx")["汇总"]
    code, out, err = await run_cli(env, "export", "audit", "--out", str(tmp_path / "审计.xlsx"))
    assert code == 0 and "audit rows" in out, err
    import sqlite3

    with sqlite3.connect(tmp_path / "storage" / "bangfu.db") as raw:
        (noticed,) = raw.execute("SELECT case_id FROM public_notices LIMIT 1").fetchone()
    code, out, err = await run_cli(env, "export", "notice", str(noticed))
    assert code == 0 and "公示" in out, err
    code, out, err = await run_cli(env, "export", "minutes", str(noticed))
    assert code == 0 and "赞成" in out, err
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bangfu_bot.cli",
        "chat",
        "--as",
        "没有这个人",
        env={"PATH": "/usr/bin:/bin", **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_b, err_b = await process.communicate("/退出\n".encode())
    assert process.returncode != 0 and "seed-demo" in (out_b + err_b).decode()
    with sqlite3.connect(tmp_path / "storage" / "bangfu.db") as raw:
        (name,) = raw.execute("SELECT name FROM people ORDER BY id LIMIT 1").fetchone()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bangfu_bot.cli",
        "chat",
        "--as",
        name,
        env={"PATH": "/usr/bin:/bin", **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_b, err_b = await process.communicate("帮助\n/退出\n".encode())
    assert process.returncode == 0, err_b.decode()
    assert "您可以回复" in out_b.decode() or "书记您好" in out_b.decode()
    # The person chatted as is bound now: a notice to everyone reaches them.
    code, out, err = await run_cli(
        env, "broadcast", "--text", "周五下午开支部大会。", "--to", "everyone", "--training"
    )
    assert code == 0 and "queued for 1 people" in out, err
    code, out, err = await run_cli(env, "outbox", "status")
    # The demo's history holds the notices of earlier years; this one is the latest.
    assert code == 0 and re.search(
        r"最近一条通知（编号 \d+，发给全县已绑定的人，共 1 人）：还在发送。", out
    ), err


async def test_serve_answers_a_member_and_stops_cleanly(database_url: str, tmp_path: Any) -> None:
    """`bangfu-bot serve` (what `make run` starts), as a process, on the sandbox WeChat."""
    import signal
    import socket

    import aiohttp

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.settings import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN
    from bangfu_bot.wechat.fake_push import PushDriver

    engine = db.make_engine(database_url)
    await db.migrate(engine)  # serve migrates SQLite itself; PostgreSQL is `db upgrade`'s job
    await engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "BANGFU_DATABASE_URL": database_url,
        "BANGFU_PORT": str(port),
        "BANGFU_HOST": "127.0.0.1",
        "BANGFU_STORAGE_DIR": str(tmp_path),
        "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bangfu_bot.cli",
        "serve",
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                try:
                    async with session.get(f"{url}/healthz") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            driver = PushDriver(
                url=f"{url}/wechat",
                token=SANDBOX_TOKEN,
                appid=SANDBOX_APPID,
                aes_key=SANDBOX_AES_KEY,
                clock=SystemClock(),
                session=session,
                mode="safe",
            )
            delivery = await driver.text("o-newcomer", "帮助")
        assert not delivery.shown_error and "绑定" in (delivery.text or "")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-500:]
    assert f"serving {url}/wechat" in out.decode()


async def test_the_demo_command_tells_the_whole_story(tmp_path: Any) -> None:
    """`bangfu-bot demo`, which `make demo` runs, as a process."""
    env = {
        "BANGFU_STORAGE_DIR": str(tmp_path / "storage"),
        "BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS),
    }
    code, out, err = await run_cli(env, "demo")
    assert code == 0, err[-500:]
    assert "基金对账：平" in out and "台账：" in out and "基金报告：" in out
