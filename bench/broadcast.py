"""Broadcasting to a county of 100,000 bound members.

1. Planning: `broadcasts.create()` for everyone, in one transaction, when every member has
   already had this month's 4 mass messages, so each recipient becomes an outbox row (the
   heaviest plan: a broadcast_recipients row and an outbox row per person). Baseline: one
   SELECT of the same 100,000 recipients' rows through the same engine.
2. Dispatch: the real `Dispatcher` loop sends those rows as template messages to the fake
   WeChat, served on loopback from a process of its own with 20 ms per call, for a bounded
   time, wired as app.py wires it (the token store in the database). Baseline: the ideal
   rate of the configured concurrency, concurrency / 20 ms. Judged with the 20 ms as it
   is and only the rest of each call's time scaled to the reference machine (the far
   side's wait does not get shorter on a faster CPU).

A fresh SQLite file under the workdir; `ctx.quick` runs a tenth of the county.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.broadcasts.models import broadcast_recipients, broadcasts
from bangfu_bot.broadcasts.service import MASS_PER_MONTH, create, month_of, send_pending
from bangfu_bot.clock import FrozenClock
from bangfu_bot.db import make_engine, migrate
from bangfu_bot.members.models import bindings, people
from bangfu_bot.notify.models import outbox
from bangfu_bot.notify.outbox import DeliveryRules, Dispatcher
from bangfu_bot.wechat.client import WeChatClient
from bangfu_bot.wechat.fake_api import FakeWeChatAPI
from bangfu_bot.wechat.tokens import DatabaseTokenStore
from bench.common import Context, cores, pin, stopwatch
from bench.county import CHUNK, BigCounty, openid_of, seed

SCENARIO = "broadcast"
MEMBERS = 100_000
LATENCY_S = 0.020  # the fake WeChat's answer time per call
CONCURRENCY = 64  # BANGFU_OUTBOX_CONCURRENCY for this run
DISPATCH_S = 12.0  # each dispatch run lasts this long at most
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in the county: no quiet hours
APPID, SECRET = "wxbench000000001", "bench-secret"
TEMPLATE = "bench-notice-template"
NOTICE = "12月5日上午九点在县委党校召开全县党员大会，请准时参加。"


async def run(ctx: Context) -> None:
    """Plan a broadcast to the whole county, then dispatch it against a 20 ms WeChat."""
    members = MEMBERS // 10 if ctx.quick else MEMBERS
    workdir = ctx.workdir / SCENARIO
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bangfu.db"
    for stale in workdir.glob("bangfu.db*"):
        stale.unlink()
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(engine)
        county = await seed(engine, members, NOW)
        await _mass_quota_used_up(engine, county)
        await _plan(ctx, engine, members)
        await _dispatch(ctx, engine, county)
    finally:
        await engine.dispose()


async def _mass_quota_used_up(engine: AsyncEngine, county: BigCounty) -> None:
    """This month's 4 broadcasts already went to everyone by mass send (bulk history)."""
    month = month_of(NOW, TZ)
    async with engine.begin() as conn:
        for n in range(MASS_PER_MONTH):
            result = await conn.execute(
                insert(broadcasts).values(
                    author_id=None,
                    text=f"本月第{n + 1}条通知",
                    audience="everyone",
                    training=False,
                    status="sent",
                    recipients=len(county.members),
                    mass_msg_ids="",
                    mass_sent=0,
                    mass_errors=0,
                    created_at=NOW,
                    sent_at=NOW,
                )
            )
            broadcast_id = int(result.inserted_primary_key[0])
            for start in range(0, len(county.members), CHUNK):
                await conn.execute(
                    insert(broadcast_recipients),
                    [
                        {
                            "broadcast_id": broadcast_id,
                            "openid": openid,
                            "person_id": person_id,
                            "channel": "mass",
                            "month": month,
                        }
                        for person_id, openid in county.members[start : start + CHUNK]
                    ],
                )


async def _plan(ctx: Context, engine: AsyncEngine, members: int) -> None:
    with stopwatch() as baseline:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(people.c.id, bindings.c.openid)
                    .select_from(
                        people.join(
                            bindings,
                            and_(
                                bindings.c.person_id == people.c.id, bindings.c.unbound_at.is_(None)
                            ),
                        )
                    )
                    .where(people.c.active.is_(True))
                    .order_by(people.c.id)
                )
            ).all()
    assert len(rows) == members
    with stopwatch() as took:
        async with engine.begin() as conn:
            _, count = await create(
                conn, author=None, text=NOTICE, audience="everyone", training=False, now=NOW, tz=TZ
            )
    async with engine.connect() as conn:
        queued = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    if count != members or queued != members:
        raise AssertionError(
            f"planned {count} recipients and {queued} outbox rows for {members} members"
        )
    ctx.add(
        SCENARIO,
        f"broadcast planning ({members:,} recipients, all via outbox)",
        took[0],
        "s",
        baseline="one SELECT of the recipients' rows",
        baseline_value=baseline[0],
    )
    ctx.seconds_target("broadcast planning ≤ 10 s", took[0], 10)


async def _dispatch(ctx: Context, engine: AsyncEngine, county: BigCounty) -> None:
    """Run the dispatcher loop for DISPATCH_S (or until nothing is pending); its rate."""
    clock = FrozenClock(NOW)
    sent_before = await _count(engine, "sent")
    async with (
        _fake_wechat(len(county.members)) as (base_url, received),
        aiohttp.ClientSession() as session,
    ):
        store = DatabaseTokenStore(engine, clock)
        client = WeChatClient(
            appid=APPID,
            secret=SECRET,
            api_base=base_url,
            token_store=store,
            session=session,
            clock=clock,
        )
        rules = DeliveryRules(template_id=TEMPLATE, tz=TZ, concurrency=CONCURRENCY)
        dispatcher = Dispatcher(
            engine=engine,
            client=client,
            clock=clock,
            rules=rules,
            also=[lambda: send_pending(engine, client, clock, rules)],
        )
        started = time.perf_counter()
        dispatcher.start()
        await _until_sent_or(engine, started + DISPATCH_S)
        await dispatcher.close()
        elapsed = time.perf_counter() - started
    sent = await _count(engine, "sent") - sent_before
    # Exactly once: WeChat got one template per row marked sent, each row's only once.
    if received != {"templates": sent, "rows": sent} or await _count(engine, "sending"):
        raise AssertionError(
            f"{sent} rows sent, WeChat received {received}, or rows were left in flight"
        )
    rate = sent / elapsed
    ctx.add(
        SCENARIO,
        f"dispatch ({sent:,} sends in {elapsed:.1f} s, concurrency "
        f"{CONCURRENCY}, {LATENCY_S * 1000:.0f} ms a call)",
        rate,
        "sends/s",
        baseline="concurrency / 20 ms",
        baseline_value=CONCURRENCY / LATENCY_S,
    )
    ctx.slots_rate_target(
        "dispatch ≥ 1,000 sends/s", rate, 1000, slots=CONCURRENCY, latency_s=LATENCY_S
    )


@asynccontextmanager
async def _fake_wechat(members: int) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """The fake WeChat in a process of its own on its own core, as the real one is another
    machine: yields its URL and, once the block ends, what it received."""
    server_cores, _ = cores()
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_fake, args=(members, child, server_cores), daemon=True
    )
    process.start()
    received: dict[str, int] = {}
    try:
        yield await _answer(parent, process), received
        parent.send("stop")
        received.update(await _answer(parent, process))
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


async def _answer(conn: Connection, process: Any) -> Any:
    """The fake's next message; an error rather than a hang if its process died."""
    deadline = time.perf_counter() + 60
    while not conn.poll():
        if not process.is_alive() or time.perf_counter() > deadline:
            raise RuntimeError(f"the fake WeChat process ended (exit {process.exitcode})")
        await asyncio.sleep(0.05)
    return conn.recv()


def _serve_fake(members: int, conn: Connection, cpus: set[int]) -> None:
    pin(cpus)
    asyncio.run(_fake_main(members, conn))


async def _fake_main(members: int, conn: Connection) -> None:
    api = FakeWeChatAPI(appid=APPID, secret=SECRET, clock=FrozenClock(NOW), latency_s=LATENCY_S)
    for n in range(members):
        api.follow(openid_of(n))
    api.add_template(TEMPLATE, {"thing1": "thing", "thing2": "thing", "time3": "time"})
    conn.send(await api.start())
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    sent = api.sent_templates()
    conn.send({"templates": len(sent), "rows": len({t["client_msg_id"] for t in sent})})
    await api.stop()


async def _until_sent_or(engine: AsyncEngine, deadline: float) -> None:
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        if not await _count(engine, "pending"):
            return


async def _count(engine: AsyncEngine, status: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.status == status)
                )
            ).scalar_one()
        )
