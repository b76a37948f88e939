"""`bangfu-bot chat --as 王德福`, the README's example, as a newcomer types it on a fresh
clone: nothing configured, an empty store under storage/, the command run from the checkout."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import CONVERSATIONS

CHECKOUT = CONVERSATIONS.parent


async def chat(cwd: Path, *lines: str) -> tuple[int, str, str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bangfu_bot.cli",
        "chat",
        "--as",
        "王德福",
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate("".join(f"{line}\n" for line in lines).encode())
    return process.returncode or 0, out.decode(), err.decode()


async def test_chat_as_wang_defu_on_an_empty_store_creates_the_demo_county(tmp_path: Path) -> None:
    # A checkout of our own: the conversations beside it, storage/ not yet made.
    (tmp_path / "conversations").symlink_to(CHECKOUT / "conversations")
    code, out, err = await chat(tmp_path, "进度", "/退出")
    assert code == 0, err
    assert "名册是空的，先建示范县" in out and "示范县建好了" in out
    assert "以 王德福 的身份聊天" in out
    # Bound as 王德福 of 桃源村, who has not applied yet.
    assert "王德福 > 帮扶助手 > 您还没有申请。" in out
    assert (tmp_path / "storage" / "bangfu.db").exists()
    # A second time the county is there: no second seeding, the same person.
    code, out, err = await chat(tmp_path, "帮助", "/退出")
    assert code == 0, err
    assert "名册是空的" not in out and "以 王德福 的身份聊天" in out
    assert "您可以回复" in out
