"""The webhook under load: bare aiohttp, our full conversation step, and the peer WeRoBot.

Every server runs in its own process pinned to one core; wrk runs pinned to the other, on
loopback, for a bounded time, replaying pushes prepared beforehand (signed, and encrypted in
safe mode, exactly as the platform would send them). Our step is a real one: a bound member
starts the application (申请), then alternately stops (取消, the draft is kept) and resumes it
(继续) — each push loads and saves the dialogue state and records the push, durably.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bangfu_bot import db
from bangfu_bot.clock import SystemClock
from bangfu_bot.settings import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN
from bangfu_bot.wechat.fake_push import PushDriver
from bench import county
from bench.common import ROOT, Context, cores

CONNECTIONS = 64
USERS = 2_000
STEPS = ("取消", "继续")
SERVER_CPUS, LOAD_CPUS = cores()


@dataclass
class Load:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    timeouts: int
    cpu_us: float  # server CPU time per request

    @property
    def errors(self) -> int:
        return self.timeouts


_msg_id_blocks = iter(range(7_000_000_000_000, 8_000_000_000_000, 10_000_000))


# --- prepared pushes ---------------------------------------------------------------------


def prepare(path: Path, mode: str, count: int, *, duplicates: float = 0.0,
            forged: float = 0.0) -> dict[str, int]:
    """Write `count` pushes: user n % USERS, that user's k-th step. Returns what was mixed in
    (repeated MsgIds re-send an earlier push; forged ones carry a wrong signature)."""
    driver = PushDriver(url="", token=SANDBOX_TOKEN, appid=SANDBOX_APPID, clock=SystemClock(),
                        session=None, aes_key=SANDBOX_AES_KEY, mode=mode)  # type: ignore[arg-type]
    mixed = {"duplicates": 0, "forged": 0}
    lines: list[str] = []
    base = next(_msg_id_blocks)
    for n in range(count):
        if duplicates and n >= USERS and n % round(1 / duplicates) == 0:
            lines.append(lines[n - USERS])  # the platform's retry: same MsgId, same body
            mixed["duplicates"] += 1
            continue
        user, step = n % USERS, n // USERS
        openid = county.openid_of(user)
        text = "申请" if step == 0 else STEPS[(step - 1) % 2]
        query, body = driver.envelope(driver.message_xml(openid, "text", {"Content": text},
                                                         base + n), openid)
        if forged and n % round(1 / forged) == 1:
            query["signature"] = "0" * 40
            query.pop("msg_signature", None) if mode == "plain" else query.update(
                msg_signature="0" * 40)
            mixed["forged"] += 1
        lines.append("/wechat?" + "&".join(f"{k}={v}" for k, v in query.items()) + "\t"
                     + body.decode("utf-8"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return mixed


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(argv: list[str], env: dict[str, str] | None = None, log: Path | None = None
          ) -> subprocess.Popen[bytes]:
    """Start a server pinned to the server core."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    return subprocess.Popen(["taskset", "-c", ",".join(map(str, SERVER_CPUS)), *argv],
                            env={**os.environ, **(env or {})}, stdout=out, stderr=out,
                            cwd=ROOT)


async def wait_ready(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start in {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(process: subprocess.Popen[bytes]) -> int:
    """taskset execs the server, so the pid is the server's."""
    return process.pid


def wrk(port: int, requests_file: Path, *, seconds: float, pause_ms: int = 0,
        pid: int | None = None) -> Load:
    """Run wrk on the load core against one server; return what it measured."""
    before = cpu_seconds(pid) if pid else 0.0
    command = ["taskset", "-c", ",".join(map(str, LOAD_CPUS)), "wrk", "-t1",
               f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s",
               str(ROOT / "bench" / "wrk.lua"), f"http://127.0.0.1:{port}",
               "--", str(requests_file), str(pause_ms)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    output = done.stdout
    line = next(x for x in output.splitlines() if x.startswith("WRK-JSON "))
    data = json.loads(line[len("WRK-JSON "):])
    used = (cpu_seconds(pid) - before) if pid else 0.0
    requests = max(data["requests"], 1)
    return Load(rps=data["requests"] / (data["duration_us"] / 1e6),
                p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000, statuses=data["statuses"],
                timeouts=data["timeouts"], cpu_us=used / requests * 1e6)


# --- the scenarios -----------------------------------------------------------------------


async def fresh_store(ctx: Context, store: str, name: str) -> str:
    """A migrated store with USERS bound members; returns its URL."""
    if store == "sqlite":
        path = ctx.workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        assert ctx.pg_url is not None
        url = ctx.pg_url
        engine = db.make_engine(url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
        await engine.dispose()
    engine = db.make_engine(url)
    await db.migrate(engine)
    await county.seed(engine, USERS, datetime.now(UTC), townships=4, branches_per_township=5)
    await engine.dispose()
    return url


def ours_env(ctx: Context, url: str, port: int) -> dict[str, str]:
    """The bot as `make run` serves it (sandbox WeChat: no credentials), on this store."""
    storage = ctx.workdir / "storage"
    storage.mkdir(exist_ok=True)
    return {"BANGFU_DATABASE_URL": url, "BANGFU_PORT": str(port), "BANGFU_HOST": "127.0.0.1",
            "BANGFU_STORAGE_DIR": str(storage), "BANGFU_SPOOL_DIR": str(storage / "spool"),
            "BANGFU_CONVERSATIONS_DIR": str(ROOT / "conversations")}


async def serve_ours(ctx: Context, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = start([sys.executable, "-m", "bangfu_bot.cli", "serve"],
                    env=ours_env(ctx, url, port), log=ctx.workdir / "serve.log")
    await wait_ready(port)
    return process, port


def measure(ctx: Context, port: int, pid: int, mode: str, *, seconds: float,
            pause_ms: int = 0, **mix: float) -> tuple[Load, dict[str, int]]:
    """Warm up, then one measured wrk run with pushes no run has sent before."""
    warm = ctx.workdir / "warm.txt"
    prepare(warm, mode, USERS)
    wrk(port, warm, seconds=2)
    count = int(seconds * 4000 / (1 if mode == "plain" else 1.5))
    if ctx.quick:
        count //= 4
    requests = ctx.workdir / f"pushes-{mode}.txt"
    mixed = prepare(requests, mode, count, **mix)
    return wrk(port, requests, seconds=seconds, pause_ms=pause_ms, pid=pid), mixed
