"""The standing fault suite (`make faults`): the real server in its own process, the fake
WeChat in this one (so it outlives every kill), and the faults the issue measured, each
counted to the push or the message:

- kill -9 under load: distinct pushes, WeChat's three tries for the unanswered, the server
  killed and started again → sent / acknowledged / stored / lost / answered twice / 5xx;
- kill -9 mid-dispatch: a notice sent one by one through the outbox → delivered once /
  twice / never, and of the never how many a secretary was asked to pass on;
- the database away: all PostgreSQL backends cut three times under load, PostgreSQL refusing
  connections for 10 s, PostgreSQL read-only then writable (SQLite: the store locked 10 s);
- a journal directory that cannot be written at start;
- hostile pushes: XML nested a thousand deep (plain and in AES), a plain downgrade;
- a formula typed into every free-text answer, then every export scanned.

It prints one table and exits 1 on any loss, any duplicate, any 5xx, any message neither
delivered nor escalated. `python -m faults` runs on SQLite; with BANGFU_TEST_DATABASE_URL
set (as `make faults` passes it), on that PostgreSQL too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import func, select, text

from bangfu_bot import db
from bangfu_bot.clock import SystemClock
from bangfu_bot.settings import load_settings
from bangfu_bot.wechat.fake import FakeWeChatAPI, PushDriver
from bangfu_bot.wechat.models import inbound_messages

ROOT = Path(__file__).resolve().parent.parent
APPID, SECRET, TOKEN = "wxfaults000000001", "faults-secret", "faultstoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@dataclass
class Row:
    """One scenario's figures; `bad` names what must be zero."""

    store: str
    scenario: str
    figures: dict[str, int]
    bad: tuple[str, ...] = ("lost", "twice", "5xx", "never")
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(self.figures.get(name, 0) == 0 for name in self.bad) and not self.note

    def line(self) -> str:
        shown = ", ".join(f"{name} {value}" for name, value in self.figures.items())
        verdict = "ok" if self.ok else "FAIL"
        return f"| {self.store} | {self.scenario} | {shown} | {verdict}{self.note} |"


@dataclass
class Store:
    """A clean database for each scenario: a new SQLite file, or the PostgreSQL schema
    emptied and migrated."""

    name: str
    url: str  # as settings normalise it

    async def fresh(self, workdir: Path) -> str:
        if self.name == "sqlite":
            path = workdir / "bangfu.db"
            path.unlink(missing_ok=True)
            return f"sqlite+aiosqlite:///{path}"
        engine = db.make_engine(self.url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.migrate(engine)
        await engine.dispose()
        return self.url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def awake_window() -> str:
    """Quiet hours that do not include the next hour (non-urgent sends must go now)."""
    later = datetime.now(UTC) + timedelta(hours=8 + 3)  # Asia/Shanghai, three hours on
    start = later.strftime("%H:%M")
    end = (later + timedelta(minutes=30)).strftime("%H:%M")
    return f"{start}-{end}"


@dataclass
class Server:
    """`bangfu-bot serve` in its own process, on a store, talking to our fake WeChat."""

    url: str
    workdir: Path
    api_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "BANGFU_DATABASE_URL": self.url,
            "BANGFU_WECHAT_APPID": APPID,
            "BANGFU_WECHAT_SECRET": SECRET,
            "BANGFU_WECHAT_TOKEN": TOKEN,
            "BANGFU_WECHAT_AES_KEY": AES_KEY,
            "BANGFU_WECHAT_API_BASE": self.api_url,
            "BANGFU_PORT": str(self.port),
            "BANGFU_STORAGE_DIR": str(self.workdir),
            "BANGFU_CONVERSATIONS_DIR": str(ROOT / "conversations"),
            "BANGFU_QUIET_HOURS": awake_window(),
            **self.env,
        }
        log = open(self.workdir / f"serve-{self.starts}.log", "wb")  # noqa: SIM115
        self.starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bangfu_bot.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log()[-400:]}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz"):
                        return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return "".join(
            (self.workdir / f"serve-{n}.log").read_text(errors="replace")
            for n in range(self.starts)
        )

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/wechat"


class Pusher:
    """WeChat's side: each push tried up to three times (a refused connection is tried again
    after a pause, as the platform's retries come seconds apart)."""

    def __init__(self, server: Server, session: aiohttp.ClientSession, mode: str = "safe") -> None:
        self.server = server
        self.session = session
        self.driver = PushDriver(
            url=server.webhook,
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            clock=SystemClock(),
            session=session,
            mode=mode,
        )
        self.results: dict[str, str] = {}  # MsgId → ok | answered | 5xx | gave_up | 4xx

    async def push(self, openid: str, content: str, msg_id: int) -> None:
        xml = self.driver.message_xml(openid, "text", {"Content": content}, msg_id)
        query, body = self.driver.envelope(xml, openid)
        outcome = "gave_up"
        for _ in range(3):
            try:
                async with self.session.post(
                    self.server.webhook,
                    params=query,
                    data=body,
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as reply:
                    answer = await reply.text()
                    if reply.status == 200:
                        outcome = "ok" if answer.strip() == "success" else "answered"
                        break
                    outcome = "5xx" if reply.status >= 500 else f"{reply.status}"
                    if reply.status != 503:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(1.5)
        self.results[f"msg:{msg_id}"] = outcome  # the dedupe key the bot stores it under

    async def load(
        self,
        openids: int,
        each: int,
        start_id: int,
        during: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`openids` members sending `each` messages one after the other, while `during`
        does its damage."""

        async def member(n: int) -> None:
            for k in range(each):
                await self.push(f"o-fault-{n}", f"第{k}条", start_id + n * each + k)

        work = [member(n) for n in range(openids)]
        if during is not None:
            work.append(during())
        await asyncio.gather(*work)

    def acknowledged(self) -> set[str]:
        return {key for key, outcome in self.results.items() if outcome in {"ok", "answered"}}


async def stored_keys(url: str, keys: set[str], timeout: float = 40) -> set[str]:
    """Which of the pushes are stored (waiting for journaled ones to be replayed)."""
    engine = db.make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with engine.connect() as conn:
                found = set((await conn.execute(select(inbound_messages.c.dedupe_key))).scalars())
            if keys <= found or time.monotonic() > deadline:
                return keys & found
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def twice(url: str, answered: set[str]) -> int:
    """Pushes answered passively that also got a late reply queued."""
    from bangfu_bot.notify.models import outbox

    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            late = set(
                (
                    await conn.execute(
                        select(outbox.c.idempotency_key).where(
                            outbox.c.idempotency_key.like("reply:%")
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    return len({key for key in answered if f"reply:{key}" in late})


async def apologies(url: str) -> int:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(inbound_messages)
                        .where(inbound_messages.c.outcome == "failed")
                    )
                ).scalar_one()
            )
    finally:
        await engine.dispose()


async def load_figures(pusher: Pusher, url: str) -> dict[str, int]:
    acknowledged = pusher.acknowledged()
    stored = await stored_keys(url, acknowledged)
    answered = {key for key, outcome in pusher.results.items() if outcome == "answered"}
    outcomes = list(pusher.results.values())
    return {
        "sent": len(outcomes),
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "lost": len(acknowledged - stored),
        "twice": await twice(url, answered),
        "5xx": outcomes.count("5xx"),
        "apologies": await apologies(url),
        "gave up": outcomes.count("gave_up"),
    }


# --- scenarios ------------------------------------------------------------------------------


async def kill_under_load(store: Store, workdir: Path, api_url: str) -> Row:
    url = await store.fresh(workdir)
    server = Server(url, workdir, api_url)
    server.start()
    await server.ready()
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(server, session)

        async def kill_and_restart() -> None:
            while len(pusher.acknowledged()) < 150:
                await asyncio.sleep(0.01)
            server.kill9()
            await asyncio.sleep(1.0)
            server.start()
            await server.ready()

        await pusher.load(openids=40, each=12, start_id=10_000, during=kill_and_restart)
        figures = await load_figures(pusher, url)
    server.stop()
    return Row(store.name, "kill -9 under load", figures, bad=("lost", "twice", "5xx"))


async def database_away(store: Store, workdir: Path, api_url: str, kind: str) -> Row:
    url = await store.fresh(workdir)
    server = Server(
        url,
        workdir,
        api_url,
        env={"BANGFU_REPLY_BUDGET_S": "1.0", "BANGFU_DB_BUSY_TIMEOUT_MS": "200"},
    )
    server.start()
    await server.ready()
    damage = DAMAGE[kind]
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(server, session)

        async def during() -> None:
            while len(pusher.results) < 60:
                await asyncio.sleep(0.01)
            await damage(url)

        await pusher.load(openids=30, each=10, start_id=20_000, during=during)
        figures = await load_figures(pusher, url)
    server.stop()
    tracebacks = server.log().count("Traceback")
    figures["tracebacks"] = tracebacks
    return Row(store.name, SCENARIO_NAMES[kind], figures, bad=("lost", "twice", "5xx", "apologies"))


async def _admin(url: str, *statements: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    target = make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement.format(db=target.database)))
    finally:
        await admin.dispose()


TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = '{db}' AND pid <> pg_backend_pid()"
)


async def _terminate_three_times(url: str) -> None:
    for _ in range(3):
        await _admin(url, TERMINATE)
        await asyncio.sleep(0.7)


async def _refuse_ten_seconds(url: str) -> None:
    try:
        await _admin(url, "ALTER DATABASE {db} ALLOW_CONNECTIONS false", TERMINATE)
        await asyncio.sleep(10)
    finally:
        await _admin(url, "ALTER DATABASE {db} ALLOW_CONNECTIONS true")


async def _read_only_then_writable(url: str) -> None:
    try:
        await _admin(url, "ALTER DATABASE {db} SET default_transaction_read_only = on", TERMINATE)
        await asyncio.sleep(5)
    finally:
        await _admin(url, "ALTER DATABASE {db} SET default_transaction_read_only = off", TERMINATE)


async def _lock_sqlite_ten_seconds(url: str) -> None:
    import sqlite3

    raw = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
    raw.execute("BEGIN EXCLUSIVE")
    await asyncio.sleep(10)
    raw.execute("COMMIT")
    raw.close()


DAMAGE: dict[str, Callable[[str], Awaitable[None]]] = {
    "terminate": _terminate_three_times,
    "refuse": _refuse_ten_seconds,
    "read_only": _read_only_then_writable,
    "locked": _lock_sqlite_ten_seconds,
}
SCENARIO_NAMES = {
    "terminate": "all backends cut 3× under load",
    "refuse": "PostgreSQL refusing connections 10 s",
    "read_only": "PostgreSQL read-only 5 s, then writable",
    "locked": "store locked 10 s under load",
}


NOTICE = "12月5日上午九点在镇党委会议室开全体党员大会，请准时参加。"


async def kill_mid_dispatch(store: Store, workdir: Path, api: FakeWeChatAPI, api_url: str) -> Row:
    """250 members, a notice to each through the outbox as a customer-service message, four
    calls at once; the server killed with about 100 delivered, then started again."""
    url = await store.fresh(workdir)
    openids = await _branch_of(url, 250)
    for openid in openids:
        api.follow(openid)
        api.user_wrote(openid)
    api.latency_s = 0.03
    before = {openid: len(api.sent_texts(openid)) for openid in openids}
    server = Server(url, workdir, api_url, env={"BANGFU_OUTBOX_CONCURRENCY": "4"})
    server.start()
    await server.ready()
    try:
        deadline = time.monotonic() + 60
        while sum(len(api.sent_texts(o)) - before[o] for o in openids) < 100:
            if time.monotonic() > deadline:
                raise RuntimeError("the dispatcher did not start sending")
            await asyncio.sleep(0.01)
        server.kill9()
        server.start()
        await server.ready()
        await _outbox_settled(url, timeout=90)
    finally:
        server.stop()
        api.latency_s = 0.0
    counts = [len(api.sent_texts(o)) - before[o] for o in openids]
    escalated = await _escalated(url)
    never = [o for o, n in zip(openids, counts, strict=True) if n == 0]
    return Row(
        store.name,
        "kill -9 mid-dispatch (250, one by one)",
        {
            "members": len(openids),
            "once": counts.count(1),
            "twice": sum(n > 1 for n in counts),
            "never": len(set(never) - escalated),
            "in doubt, secretary asked": len(escalated),
        },
        bad=("twice", "never"),
    )


async def _branch_of(url: str, size: int) -> list[str]:
    """A branch of `size` members and its secretary, all bound and in their 48-hour window,
    with a notice queued for each member."""
    from sqlalchemy import insert

    from bangfu_bot.members.models import bindings, organisations, people, person_roles
    from bangfu_bot.notify.queue import queue_message
    from bangfu_bot.wechat.models import wechat_users

    now = datetime.now(UTC)
    engine = db.make_engine(url)
    if url.startswith("sqlite"):
        await db.migrate(engine)
    openids = [f"o-member-{n}" for n in range(size)]
    async with engine.begin() as conn:
        county = (
            await conn.execute(
                insert(organisations).values(kind="county", name="故障县委组织部", parent_id=None)
            )
        ).inserted_primary_key[0]
        township = (
            await conn.execute(
                insert(organisations).values(kind="committee", name="青山镇党委", parent_id=county)
            )
        ).inserted_primary_key[0]
        branch = (
            await conn.execute(
                insert(organisations).values(kind="branch", name="桃源村党支部", parent_id=township)
            )
        ).inserted_primary_key[0]
        for n, openid in enumerate([*openids, "o-secretary"]):
            person = (
                await conn.execute(
                    insert(people).values(
                        name=f"党员{n}",
                        gender="男",
                        birth_date=datetime(1960, 1, 1).date(),
                        id_number=f"52010219600101{n:04d}",
                        phone=None,
                        branch_id=branch,
                        urban_rural="农村",
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
            ).inserted_primary_key[0]
            roles = ["member", "secretary"] if openid == "o-secretary" else ["member"]
            for role in roles:
                await conn.execute(insert(person_roles).values(person_id=person, role=role))
            await conn.execute(
                insert(bindings).values(
                    openid=openid, person_id=person, channel="chat", bound_at=now
                )
            )
            await conn.execute(
                insert(wechat_users).values(
                    openid=openid, subscribed=True, first_seen_at=now, last_message_at=now
                )
            )
        for openid in openids:
            await queue_message(
                conn,
                key=f"notice:{openid}",
                openid=openid,
                kind="case",
                content=NOTICE,
                reason="faults: a notice",
                now=now,
            )
    await engine.dispose()
    return openids


async def _outbox_settled(url: str, timeout: float) -> None:
    from bangfu_bot.notify.models import outbox

    engine = db.make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                waiting = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.status.in_(["pending", "sending"]), outbox.c.kind == "case")
                    )
                ).scalar_one()
            if waiting == 0:
                return
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    raise RuntimeError(f"{waiting} notices still waiting after {timeout:.0f} s")


async def _escalated(url: str) -> set[str]:
    """Members whose notice is in doubt and whose secretary has a to-do about it."""
    from bangfu_bot.notify.models import outbox

    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(
                (
                    await conn.execute(
                        select(outbox.c.openid).where(
                            outbox.c.kind == "case",
                            outbox.c.status == "unknown",
                            outbox.c.channel == "escalated",
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()


async def journal_unwritable(store: Store, workdir: Path, api_url: str) -> Row:
    url = await store.fresh(workdir)
    blocker = workdir / "a-file"
    blocker.write_text("")
    server = Server(url, workdir, api_url, env={"BANGFU_SPOOL_DIR": str(blocker / "spool")})
    server.start()
    assert server.process is not None
    code = server.process.wait(60)
    said = server.log()
    named = f"cannot write the journal in {blocker}/spool" in said
    return Row(
        store.name,
        "journal directory unwritable at start",
        {"exit status": code, "path and cause named": int(named)},
        bad=(),
        note="" if code == 1 and named else " (not refused with its cause)",
    )


async def hostile(store: Store, workdir: Path, api_url: str) -> Row:
    url = await store.fresh(workdir)
    server = Server(url, workdir, api_url)
    server.start()
    await server.ready()
    deep = "<xml>" + "<a>" * 1000 + "x" + "</a>" * 1000 + "</xml>"
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        for mode, xml in (("plain", deep), ("safe", deep)):
            pusher = Pusher(server, session, mode)
            query, body = pusher.driver.envelope(xml, "o-hostile")
            async with session.post(server.webhook, params=query, data=body) as reply:
                statuses.append(reply.status)
        downgrade = Pusher(server, session, "plain")
        for n in range(12):
            xml = downgrade.driver.message_xml("o-staff", "text", {"Content": "基金"}, 900 + n)
            query, body = downgrade.driver.envelope(xml, "o-staff")
            async with session.post(server.webhook, params=query, data=body) as reply:
                statuses.append(reply.status)
    engine = db.make_engine(url)
    async with engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(inbound_messages))
        ).scalar_one()
    await engine.dispose()
    server.stop()
    figures = {
        "sent": len(statuses),
        "400": statuses.count(400),
        "403": statuses.count(403),
        "stored": int(count),
        "5xx": sum(s >= 500 for s in statuses),
    }
    ok = statuses[:2] == [400, 400] and statuses[2:] == [403] * 12 and count == 0
    return Row(
        store.name,
        "deep XML, plain downgrade",
        figures,
        bad=("5xx", "stored"),
        note="" if ok else " (unexpected statuses)",
    )


async def formulas(store: Store, workdir: Path, api_url: str) -> Row:
    env = {**os.environ, "BANGFU_TEST_DATABASE_URL": store.url if store.name != "sqlite" else ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "test_xlsx.py"),
            "-k",
            "shows_typed_formulas",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    passed = done.returncode == 0
    return Row(
        store.name,
        "formulas typed into every free-text answer, exports scanned",
        {"exports": 4, "formula cells": 0 if passed else 1},
        bad=("formula cells",),
    )


SCENARIOS = [kill_under_load, journal_unwritable, hostile, formulas]


async def run_store(store: Store, root: Path) -> list[Row]:
    api = FakeWeChatAPI(appid=APPID, secret=SECRET, clock=SystemClock())
    api_url = await api.start()
    rows: list[Row] = []
    plan: list[tuple[str, Callable[[Path], Awaitable[Row]]]] = [
        (scenario.__name__, lambda w, s=scenario: s(store, w, api_url)) for scenario in SCENARIOS
    ]
    kinds = ["terminate", "refuse", "read_only"] if store.name != "sqlite" else ["locked"]
    plan += [
        (f"away-{kind}", lambda w, k=kind: database_away(store, w, api_url, k)) for kind in kinds
    ]
    plan.insert(1, ("dispatch", lambda w: kill_mid_dispatch(store, w, api, api_url)))
    try:
        for name, scenario in plan:
            workdir = root / f"{store.name}-{name}"
            workdir.mkdir(parents=True)
            started = time.monotonic()
            try:
                row = await scenario(workdir)
            except Exception as error:
                row = Row(store.name, name, {}, note=f" ({type(error).__name__}: {error})")
            print(f"  {row.scenario}: {time.monotonic() - started:.0f} s", flush=True)
            rows.append(row)
    finally:
        await api.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    stores = [Store("sqlite", "")]
    pg = os.environ.get("BANGFU_TEST_DATABASE_URL", "")
    if pg:
        stores.append(Store("postgresql", load_settings({"BANGFU_DATABASE_URL": pg}).database_url))
    root = Path(tempfile.mkdtemp(prefix="bangfu-faults-"))
    rows: list[Row] = []
    try:
        for store in stores:
            print(f"faults on {store.name}:", flush=True)
            rows += asyncio.run(run_store(store, root))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    print(f"\nFaults, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu}):\n")
    print("| store | fault | figures | result |\n| --- | --- | --- | --- |")
    for row in rows:
        print(row.line())
    failed = [row for row in rows if not row.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} scenarios held.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
