"""Resident memory of `serve` with a 100,000-member county loaded: idle, and under load."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from bangfu_bot import db
from bench import county, webhook
from bench.common import Context, rss_mb

MEMBERS = 100_000


async def run(ctx: Context) -> None:
    members = MEMBERS // 10 if ctx.quick else MEMBERS
    path = ctx.workdir / "memory.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    engine = db.make_engine(url)
    await db.migrate(engine)
    await county.seed(engine, members, datetime.now(UTC))
    await engine.dispose()
    process, port = await webhook.serve_ours(ctx, url)
    try:
        await asyncio.sleep(3)  # settle: start-up work, the first scheduler round
        idle = rss_mb(process.pid)
        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], rss_mb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load, _ = await asyncio.to_thread(
            webhook.measure, ctx, port, process.pid, "plain", seconds=5
        )
        done.set()
        sampler.join()
        after = rss_mb(process.pid)
    finally:
        webhook.stop(process)
    name = f"serve with {members:,} members"
    ctx.add(name, "RSS idle", idle, "MB")
    ctx.add(name, "RSS peak under load", peak[0], "MB", baseline="idle", baseline_value=idle)
    ctx.add(name, "RSS after load", after, "MB")
    ctx.add(name, "load", load.rps, "messages/s")
    ctx.target(
        "RSS ≤ 200 MB idle with 100,000 members",
        idle <= 200 and members == MEMBERS,
        f"{idle:.0f} MB idle, {peak[0]:.0f} MB at peak under load",
    )
