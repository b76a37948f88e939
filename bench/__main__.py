"""`make bench`: run every scenario, print one table, write storage/bench/latest.json.

    python -m bench [--quick] [--only webhook,reminders,broadcast,memory,report,desk]

Every figure is printed beside its ratio to a baseline measured in this same run; PASS/FAIL
per target is judged on ratios (see bench/common.py), never on this machine's raw speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench import broadcast, desk, memory, reminders, report, webhook
from bench.common import ROOT, Context

SCENARIOS = {
    "webhook": webhook.run,
    "reminders": reminders.run,
    "broadcast": broadcast.run,
    "memory": memory.run,
    "report": report.run,
    "desk": desk.run,
}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+asyncpg://postgres@127.0.0.1:5432/bangfu_bench"


def ensure_tools() -> None:
    """wrk (the load generator) and libev (to build the peer's bjoern), from Debian."""
    missing = [
        package
        for package, present in (
            ("wrk", shutil.which("wrk")),
            ("libev-dev", os.path.exists("/usr/include/ev.h")),
        )
        if not present
    ]
    if not missing:
        return
    print(f"installing {' '.join(missing)} from Debian's packages…", flush=True)
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL
    )


async def bench_database() -> str | None:
    """A throw-away PostgreSQL database for the bench (never the tests' `test`)."""
    try:
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (TimeoutError, OSError, ImportError) as error:
        print(f"PostgreSQL not reachable ({type(error).__name__}): its rows are skipped")
        return None
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bangfu_bench'")
        if not exists:
            await admin.execute("CREATE DATABASE bangfu_bench")
    finally:
        await admin.close()
    return PG_BENCH


def table(ctx: Context) -> str:
    """The results and the verdicts, as a Markdown table the README can show."""
    lines = ["| scenario | figure | value | ratio to baseline |", "|---|---|---|---|"]
    for r in ctx.results:
        value = f"{r.value:,.0f}" if abs(r.value) >= 100 else f"{r.value:,.2f}"
        ratio = f"{r.ratio:.2f}× {r.baseline}" if r.ratio is not None else ""
        lines.append(f"| {r.scenario} | {r.metric} | {value} {r.unit} | {ratio} |")
    lines += ["", "| target | verdict | detail |", "|---|---|---|"]
    for v in ctx.verdicts:
        lines.append(f"| {v.target} | {'PASS' if v.passed else 'FAIL'} | {v.detail} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


async def main(args: argparse.Namespace) -> int:
    ensure_tools()
    workdir = ROOT / "storage" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(workdir=workdir, pg_url=await bench_database(), quick=args.quick)
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    if "webhook" not in chosen:
        print("note: without the webhook scenario, targets scale by the reference machine")
    started = time.monotonic()
    for name in chosen:
        print(f"--- {name}", flush=True)
        took = time.monotonic()
        await SCENARIOS[name](ctx)
        print(f"    {time.monotonic() - took:.0f} s", flush=True)
    report = table(ctx)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\nbench of {stamp} on {machine()}; scale {ctx.scale:.2f} (the wechatpy bot "
        f"{ctx.wechatpy_rps:,.0f}/s here vs 3,100/s on the reference; bare aiohttp "
        f"{ctx.bare_rps:,.0f}/s vs 6,100/s, {ctx.bare_scale:.2f})\n"
    )
    print(report)
    out = workdir / "latest.json"
    out.write_text(
        json.dumps(
            {"when": stamp, "machine": machine(), **ctx.as_json()}, ensure_ascii=False, indent=2
        ),
        encoding="utf-8",
    )
    (workdir / "latest.md").write_text(report + "\n", encoding="utf-8")
    print(
        f"\n{len(ctx.verdicts)} targets, {sum(not v.passed for v in ctx.verdicts)} failed; "
        f"{time.monotonic() - started:.0f} s; written to {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    sys.exit(asyncio.run(main(parser.parse_args())))
