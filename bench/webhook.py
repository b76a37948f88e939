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
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bangfu_bot import db
from bangfu_bot.clock import SystemClock
from bangfu_bot.settings import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN
from bangfu_bot.wechat.fake_push import PushDriver
from bench import county
from bench.common import ROOT, Context, cores

CONNECTIONS = 64
RUNS = 3  # measured runs per server and mode, in turns; the best counts (see in_turns)
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


def prepare(
    path: Path, mode: str, count: int, *, duplicates: float = 0.0, forged: float = 0.0
) -> list[str]:
    """Write `count` pushes: user n % USERS, that user's k-th step. Returns the kind of each
    line: "step", "duplicate" (the platform's retry of an earlier push, same MsgId) or
    "forged" (a wrong signature)."""
    driver = PushDriver(
        url="",
        token=SANDBOX_TOKEN,
        appid=SANDBOX_APPID,
        clock=SystemClock(),
        session=None,
        aes_key=SANDBOX_AES_KEY,
        mode=mode,
    )  # type: ignore[arg-type]
    kinds: list[str] = []
    lines: list[str] = []
    base = next(_msg_id_blocks)
    for n in range(count):
        if duplicates and n >= USERS and n % round(1 / duplicates) == 0:
            lines.append(lines[n - USERS])  # the platform's retry: same MsgId, same body
            kinds.append("duplicate")
            continue
        user, step = n % USERS, n // USERS
        openid = county.openid_of(user)
        text = "申请" if step == 0 else STEPS[(step - 1) % 2]
        query, body = driver.envelope(
            driver.message_xml(openid, "text", {"Content": text}, base + n), openid
        )
        kind = "step"
        if forged and n % round(1 / forged) == 1:
            query["signature"] = "0" * 40
            if mode != "plain":
                query["msg_signature"] = "0" * 40
            kind = "forged"
        kinds.append(kind)
        lines.append(
            "/wechat?"
            + "&".join(f"{k}={v}" for k, v in query.items())
            + "\t"
            + body.decode("utf-8")
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kinds


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    argv: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server pinned to the server core."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        ["taskset", "-c", ",".join(map(str, SERVER_CPUS)), *argv],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=out,
        cwd=ROOT,
    )


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


def wrk(
    port: int, requests_file: Path, *, seconds: float, pause_ms: int = 0, pid: int | None = None
) -> Load:
    """Run wrk on the load core against one server; return what it measured."""
    before = cpu_seconds(pid) if pid else 0.0
    command = [
        "taskset",
        "-c",
        ",".join(map(str, LOAD_CPUS)),
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(ROOT / "bench" / "wrk.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        str(requests_file),
        str(pause_ms),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    output = done.stdout
    line = next(x for x in output.splitlines() if x.startswith("WRK-JSON "))
    data = json.loads(line[len("WRK-JSON ") :])
    used = (cpu_seconds(pid) - before) if pid else 0.0
    requests = max(data["requests"], 1)
    if data["requests"] > prepared_lines(requests_file):
        print(
            f"  warning: wrk sent {data['requests']} requests from "
            f"{requests_file.name}, which has fewer; some were repeats",
            flush=True,
        )
    return Load(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses=data["statuses"],
        timeouts=data["timeouts"],
        cpu_us=used / requests * 1e6,
    )


def prepared_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


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
    """The bot as `make run` serves it (sandbox WeChat: no credentials), on this store;
    its storage (the push journal) is its own, since servers may run side by side."""
    storage = ctx.workdir / f"storage-{port}"
    storage.mkdir(exist_ok=True)
    return {
        "BANGFU_DATABASE_URL": url,
        "BANGFU_PORT": str(port),
        "BANGFU_HOST": "127.0.0.1",
        "BANGFU_STORAGE_DIR": str(storage),
        "BANGFU_SPOOL_DIR": str(storage / "spool"),
        "BANGFU_CONVERSATIONS_DIR": str(ROOT / "conversations"),
    }


async def serve_ours(ctx: Context, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = start(
        [sys.executable, "-m", "bangfu_bot.cli", "serve"],
        env=ours_env(ctx, url, port),
        log=ctx.workdir / "serve.log",
    )
    await wait_ready(port)
    return process, port


async def steady_statistics(url: str) -> None:
    """The planner statistics a running county has. The warm-up fills tables that were empty
    when the seeding counted them (one dialogue a member, thousands of pushes); autovacuum
    would count them again within a minute, and until then PostgreSQL plans them as empty,
    scanning every row of them for each batch. The bench does not wait the minute."""
    engine = db.make_engine(url)
    try:
        await db.refresh_statistics(engine)
    finally:
        await engine.dispose()


def warm_up(ctx: Context, port: int, mode: str) -> None:
    """Two seconds of load first: imports, caches and the store settle before measuring."""
    warm = ctx.workdir / "warm.txt"
    prepare(warm, mode, 6 * USERS)  # more than two seconds' worth: no push sent twice
    wrk(port, warm, seconds=2)


def measure(
    ctx: Context,
    port: int,
    pid: int,
    mode: str,
    *,
    seconds: float,
    pause_ms: int = 0,
    warm: bool = True,
    runs: int = 1,
    **mix: float,
) -> tuple[Load, list[str]]:
    """The best of `runs` measured wrk runs, each with pushes no run has sent before (after
    a warm-up). Best, not mean: what a neighbour on this shared machine takes away is noise,
    and baselines and ours are measured alike (RUNS each)."""
    if warm:
        warm_up(ctx, port, mode)
    results = [
        _measure_once(ctx, port, pid, mode, seconds=seconds, pause_ms=pause_ms, **mix)
        for _ in range(runs)
    ]
    return max(results, key=lambda result: result[0].rps)


def _measure_once(
    ctx: Context, port: int, pid: int, mode: str, *, seconds: float, pause_ms: int, **mix: float
) -> tuple[Load, list[str]]:
    # Enough distinct pushes that wrk never wraps round to pushes already answered (which
    # would be answered from the store, cheaply); no server here is faster than a third of
    # bare aiohttp.
    # Not smaller in a quick run: the run lasts as long, so it needs as many pushes.
    count = int(seconds * max(4000, ctx.bare_rps / 3) / (1 if mode == "plain" else 1.5))
    requests = ctx.workdir / f"pushes-{mode}.txt"
    kinds = prepare(requests, mode, count, **mix)
    return wrk(port, requests, seconds=seconds, pause_ms=pause_ms, pid=pid), kinds


async def metrics(port: int) -> dict[str, float]:
    """The server's Prometheus counters, summed by name and label set."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = values.get(name, 0.0) + float(value)
    return values


def counted(values: dict[str, float], prefix: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include `labels`."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        v for k, v in values.items() if k.startswith(prefix + "{") and all(w in k for w in wanted)
    )


def record(ctx: Context, name: str, load: Load, bare_rps: float) -> None:
    ctx.add(name, "messages/s", load.rps, "/s", baseline="bare aiohttp", baseline_value=bare_rps)
    ctx.add(name, "p50", load.p50_ms, "ms")
    ctx.add(name, "p99", load.p99_ms, "ms")
    ctx.add(name, "CPU per message", load.cpu_us, "µs")


@dataclass
class Contender:
    """One server in one mode, measured in turns with the others (see `in_turns`)."""

    server: str  # "bare", "wechatpy", or ours: "SQLite" or "PostgreSQL"
    process: subprocess.Popen[bytes]
    port: int
    mode: str
    ours: bool = False
    best: Load | None = None
    answered: int = 0  # over all its runs (ours only): 200s, steps handled, apologies
    handled: float = 0.0
    failed: float = 0.0


async def in_turns(ctx: Context, contenders: list[Contender], runs: int) -> None:
    """`runs` rounds; in each, every contender gets one measured run, in order. The best run
    counts. Turns, not one server after another, because what a neighbour on this shared
    machine takes away lasts tens of seconds: measured back to back, one server could get a
    quiet minute and the one it is compared with a busy one. The first contender should be
    bare aiohttp: the size of every later run's pushes follows its rate."""
    for _ in range(runs):
        for contender in contenders:
            before = await metrics(contender.port) if contender.ours else {}
            load, _ = _measure_once(
                ctx, contender.port, contender.process.pid, contender.mode, seconds=5, pause_ms=0
            )
            if contender.ours:
                after = await metrics(contender.port)
                contender.answered += load.statuses.get("200", 0)
                for outcome in ("handled", "failed"):
                    grown = counted(after, "bangfu_messages_total", outcome=outcome) - counted(
                        before, "bangfu_messages_total", outcome=outcome
                    )
                    setattr(contender, outcome, getattr(contender, outcome) + grown)
            if contender.best is None or load.rps > contender.best.rps:
                contender.best = load
            if contender.server == "bare":
                ctx.bare_rps = contender.best.rps


async def contenders(ctx: Context) -> list[Contender]:
    """Every server of the main comparison, started and warmed up: bare aiohttp, the
    stateless wechatpy bot, and ours on SQLite and on PostgreSQL, each in plain and safe mode."""
    found: list[Contender] = []
    for server in ("bare", "wechatpy"):
        port = free_port()
        process = start([sys.executable, "-m", "bench.servers", server, str(port)])
        await wait_ready(port)
        modes = ("plain",) if server == "bare" else ("plain", "safe")
        found += [Contender(server, process, port, mode) for mode in modes]
    for store in ("sqlite", "pg") if ctx.pg_url else ("sqlite",):
        url = await fresh_store(ctx, store, f"ours-{store}")
        process, port = await serve_ours(ctx, url)
        server = "SQLite" if store == "sqlite" else "PostgreSQL"
        found += [Contender(server, process, port, mode, ours=True) for mode in ("plain", "safe")]
        for mode in ("plain", "safe"):
            warm_up(ctx, port, mode)
        await steady_statistics(url)
    for contender in found:
        if not contender.ours:
            warm_up(ctx, contender.port, contender.mode)
    return found


def stop_all(found: list[Contender]) -> None:
    for process in {id(c.process): c.process for c in found}.values():
        stop(process)


def record_turns(ctx: Context, found: list[Contender]) -> dict[str, dict[str, Load]]:
    """The table's rows from the contenders' best runs; ours by store and mode."""
    ours: dict[str, dict[str, Load]] = {}
    for contender in found:
        load = contender.best
        assert load is not None
        if contender.server == "bare":
            ctx.add(
                "bare aiohttp `success`",
                "requests/s",
                load.rps,
                "/s",
                baseline="bare aiohttp",
                baseline_value=load.rps,
            )
            ctx.add("bare aiohttp `success`", "CPU per request", load.cpu_us, "µs")
        elif contender.server == "wechatpy":
            name = f"aiohttp + wechatpy, no state, {contender.mode}"
            ctx.add(
                name,
                "messages/s",
                load.rps,
                "/s",
                baseline="bare aiohttp",
                baseline_value=ctx.bare_rps,
            )
            ctx.add(name, "CPU per message", load.cpu_us, "µs")
            if contender.mode == "plain":
                ctx.wechatpy_rps = load.rps
                ctx.scale_measured = True
        else:
            name = f"ours, {contender.mode}, {contender.server}"
            record(ctx, name, load, ctx.bare_rps)
            ctx.add(name, "apologies (domain errors)", contender.failed, "")
            # A failed step is not a step measured.
            if contender.failed or contender.handled < 0.95 * contender.answered:
                ctx.target(
                    f"{name}: every step handled",
                    False,
                    f"{contender.answered} answered, {contender.handled:.0f} handled, "
                    f"{contender.failed:.0f} failed",
                )
            store = "sqlite" if contender.server == "SQLite" else "pg"
            ours.setdefault(store, {})[contender.mode] = load
    return ours


async def half_load(ctx: Context, full: Load) -> Load:
    """p99 when the load is about half the measured maximum (the usual busy hour)."""
    url = await fresh_store(ctx, "sqlite", "ours-half")
    process, port = await serve_ours(ctx, url)
    try:
        pause_ms = max(1, round(CONNECTIONS * 1000 / (full.rps / 2) - full.p50_ms / 2))
        load, _ = measure(ctx, port, process.pid, "plain", seconds=5, pause_ms=pause_ms)
    finally:
        stop(process)
    name = "ours, plain, SQLite, half load"
    ctx.add(name, "messages/s", load.rps, "/s", baseline="its maximum", baseline_value=full.rps)
    ctx.add(name, "p99", load.p99_ms, "ms")
    return load


async def hostile(ctx: Context) -> None:
    """Full speed with 10 % repeated MsgIds and 5 % forged signatures: each answered right
    (a duplicate gets the stored answer, a forgery 403) and counted."""
    url = await fresh_store(ctx, "sqlite", "ours-hostile")
    process, port = await serve_ours(ctx, url)
    try:
        warm_up(ctx, port, "plain")
        before = await metrics(port)
        load, kinds = measure(
            ctx, port, process.pid, "plain", seconds=5, warm=False, duplicates=0.10, forged=0.05
        )
        after = await metrics(port)
    finally:
        stop(process)
    sent = load.statuses
    total = sum(sent.values())
    forged = sum(1 for n in range(total) if kinds[n % len(kinds)] == "forged")
    repeated = sum(1 for n in range(total) if kinds[n % len(kinds)] == "duplicate")
    refused = counted(after, "bangfu_rejected_pushes_total", status="403") - counted(
        before, "bangfu_rejected_pushes_total", status="403"
    )
    deduped = counted(after, "bangfu_duplicates_total") - counted(before, "bangfu_duplicates_total")
    name = "ours, plain, SQLite, 10 % repeats + 5 % forged"
    record(ctx, name, load, ctx.bare_rps)
    ctx.add(name, "forged sent / refused 403", forged, f"/ {refused:.0f}")
    ctx.add(name, "repeats sent / answered from store", repeated, f"/ {deduped:.0f}")
    # Pushes still in flight when wrk stops are counted by the server but not by wrk.
    ok = (
        abs(sent.get("403", 0) - refused) <= CONNECTIONS
        and abs(refused - forged) <= CONNECTIONS
        and abs(deduped - repeated) <= CONNECTIONS
        and load.timeouts == 0
        and set(sent) <= {"200", "403"}
    )
    ctx.target(
        "hostile load: repeats and forgeries answered right and counted",
        ok,
        f"403s {sent.get('403', 0)} (forged {forged}, counted {refused:.0f}); "
        f"repeats {repeated}, answered from store {deduped:.0f}",
    )


async def run(ctx: Context) -> None:
    """All webhook scenarios; the baselines first, since every target is judged on them."""
    found = await contenders(ctx)
    try:
        await in_turns(ctx, found, RUNS)
    finally:
        stop_all(found)
    loads = record_turns(ctx, found)
    sqlite, pg = loads["sqlite"], loads.get("pg")
    half = await half_load(ctx, sqlite["plain"])
    await hostile(ctx)
    peer = await peer_loads(ctx)
    plain, safe = sqlite["plain"], sqlite["safe"]
    ctx.rate_target("full step, plain, SQLite ≥ 1,500/s", plain.rps, 1500)
    ctx.target(
        "… ≥ 20 % of bare aiohttp",
        plain.rps >= 0.2 * ctx.bare_rps,
        f"{plain.rps / ctx.bare_rps:.0%} of bare aiohttp",
    )
    if peer:
        ctx.target(
            "… ≥ 3.5× WeRoBot with its session",
            plain.rps >= 3.5 * peer["plain"].rps,
            f"{plain.rps / peer['plain'].rps:.1f}× WeRoBot",
        )
    ctx.rate_target("full step, safe, SQLite ≥ 1,000/s", safe.rps, 1000)
    if pg:
        ctx.target(
            "PostgreSQL within 20 % of SQLite",  # plain and safe mode both
            pg["plain"].rps >= 0.8 * plain.rps and pg["safe"].rps >= 0.8 * safe.rps,
            f"plain {pg['plain'].rps / plain.rps:.0%}, safe {pg['safe'].rps / safe.rps:.0%}"
            f" of SQLite; the bot's own CPU a message {pg['plain'].cpu_us:.0f} µs against "
            f"{plain.cpu_us:.0f} µs (PostgreSQL's backends share the two cores)",
        )
    else:
        ctx.target("PostgreSQL within 20 % of SQLite", False, "PostgreSQL not reachable")
    p99 = plain.p99_ms * ctx.scale
    ctx.target(
        "p99 ≤ 100 ms at 64 connections",
        p99 <= 100,
        f"{plain.p99_ms:.0f} ms here = {p99:.0f} ms at reference speed; "
        f"at half load {half.p99_ms:.0f} ms",
    )
    loads = [*sqlite.values(), *(pg or {}).values(), half]
    latest = max(load.max_ms for load in loads)
    ctx.target(
        "no reply later than the budget",
        latest < 3000 and not any(load.timeouts for load in loads),
        f"slowest answer {latest:.0f} ms (budget 3,000 ms)",
    )


# --- the peer ----------------------------------------------------------------------------


def peer_python(ctx: Context) -> Path | None:
    """WeRoBot 1.13 + bjoern + cryptography in a throw-away venv (not a project dependency)."""
    venv = ctx.workdir / "werobot-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(python), "-c", "import werobot, bjoern, cryptography"], capture_output=True
    )
    if done.returncode != 0:
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "werobot==1.13.1",
                "bjoern",
                "cryptography",
            ],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            print(f"  peer skipped: cannot install WeRoBot/bjoern: {install.stderr[-200:]}")
            return None
    return python


async def peer_loads(ctx: Context) -> dict[str, Load] | None:
    """WeRoBot's text echo with its SQLite session, same requests, same machine."""
    python = peer_python(ctx)
    if python is None:
        return None
    loads: dict[str, Load] = {}
    for mode in ("plain", "safe"):
        session_db = ctx.workdir / f"werobot-session-{mode}.db"
        session_db.unlink(missing_ok=True)
        port = free_port()
        process = start(
            [
                str(python),
                str(ROOT / "bench" / "werobot_echo.py"),
                str(port),
                SANDBOX_TOKEN,
                SANDBOX_APPID,
                SANDBOX_AES_KEY,
                str(session_db),
            ],
            log=ctx.workdir / "werobot.log",
        )
        try:
            await wait_ready(port, path="/")
            load, _ = measure(ctx, port, process.pid, mode, seconds=5, runs=RUNS)
        finally:
            stop(process)
        name = f"WeRoBot 1.13 + bjoern, {mode}, SQLite session"
        record(ctx, name, load, ctx.bare_rps)
        loads[mode] = load
    return loads
