"""The desk (issue 16) on the bench's big county: 100,000 members, 1,000,000 instalments.

The county: 100,000 bound members in 20 townships and 500 branches; 250,000 disbursed loans
of four yearly instalments each (the reminder scenario's book, with their fund movements);
110,000 cases over five years, 100,000 of them in this year's ledger and the rest at every
step of the procedure (some notices held by an objection); officials' to-dos.

The county's day is NOW's (the server reads the sandbox clock back at start, as the
sandbox does); the server's start-up run of the jobs is waited out (on this county mostly
`outcomes.loan_follow_ups`, minutes) and the messages it queued are marked gone, as a county
running for a while has them; the server is left to go idle before each run.

Measured, with `serve` pinned to one core and wrk to the other:
- each page one session at a time (one connection, the 64 sessions in turn, 10 s): the
  page's own time;
- in turns (see `webhook.in_turns`: a neighbour's burst on this shared machine should not
  fall on one page alone), the best of `RUNS` runs each (the run that answered most):
  a bare aiohttp page (`/healthz` of bench.servers' bare server, 5 s), the baseline; 工作台
  (`/desk`) and the case list (`/desk/cases`), 10 s, under 64 connections, each request
  carrying the next of 64 live sessions (16 department staff, 8 supervisors, 40 township
  officers: two per township), made by the login's own `start_session` and sent as the
  encrypted cookie the desk reads. A closed loop, as the webhook's: 64 sessions each asking
  for its next page as soon as the last one came;
- the year's ledger as the desk downloads it (`ledger_xlsx`, the same workbook as the
  CLI), the best of three, against one SQL pass over the year's entries.
Targets: p95 ≤ 150 ms at reference speed for each page (and every request answered, at
least one per session); the ledger download of 100,000 rows ≤ 10 s at reference speed.
Without the webhook scenario in the same run, the scale is this scenario's own measure of
the stateless wechatpy bot.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bangfu_bot import db
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import cases, ledger_entries, objections, public_notices
from bangfu_bot.clock import OffsetClock
from bangfu_bot.desk.base import COOKIE
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.jobs import all_jobs
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.members.models import bindings, person_roles
from bangfu_bot.notify.models import outbox
from bangfu_bot.reports import login
from bangfu_bot.reports.ledger import ledger_xlsx
from bangfu_bot.sandbox import clock as sandbox_clock
from bangfu_bot.scheduler_models import job_runs
from bangfu_bot.settings import load_settings
from bangfu_bot.todos.models import todos
from bench import reminders, webhook
from bench.common import ROOT, Context, cores, stopwatch
from bench.county import BigCounty, seed

SCENARIO = "desk"
MEMBERS = 100_000
LOANS = 250_000  # four instalments each: 1,000,000
EXTRA_CASES = 10_000  # cases still under way, beside one in the ledger per member
YEAR = 2026
NOW = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)
SESSIONS = {"department": 16, "supervisor": 8, "committee": 40}
PAGES = {"工作台": "/desk", "案件": "/desk/cases"}
RUNS = 3
SECONDS = 5  # a run of the bare page
PAGE_SECONDS = 10  # a run of a desk page: long enough for answers that take seconds
CHUNK = 5_000
CATEGORIES = ("年纪大、没劳力、没退休金", "缺技术、缺资金", "生病", "企业下岗", "其他")
UNDER_WAY = (
    CaseStatus.SUBMITTED,
    CaseStatus.UNDER_EVALUATION,
    CaseStatus.EVALUATED_PASSED,
    CaseStatus.ON_NOTICE,
    CaseStatus.NOTICE_CLOSED,
    CaseStatus.REPORTED,
    CaseStatus.APPROVED,
    CaseStatus.RETURNED,
    CaseStatus.EVALUATED_FAILED,
    CaseStatus.FILED,
)
SERVER_CPUS, LOAD_CPUS = cores()


@dataclass
class PageLoad:
    """What one wrk run of one page measured."""

    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: int


async def run(ctx: Context) -> None:
    """Seed the county, serve it, measure the pages in turns, then the ledger download."""
    folder = ctx.workdir / "desk"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = f"sqlite+aiosqlite:///{folder}/bangfu.db"
    members = MEMBERS // (20 if ctx.quick else 1)
    engine = db.make_engine(url)
    try:
        with stopwatch() as took:
            await db.migrate(engine)
            county = await seed(engine, members, NOW)
            await _lend(engine, county, LOANS * members // MEMBERS)
            await _cases(engine, county)
            viewers = await _officials(engine, county)
            await db.refresh_statistics(engine)
        count = await _count(engine, instalments)
        print(
            f"{SCENARIO}: seeded {members:,} members, {count:,} instalments, "
            f"{await _count(engine, cases):,} cases in {took[0]:.1f} s",
            flush=True,
        )
        clock = OffsetClock(NOW - datetime.now(UTC))
        jobs = await _county_day(ctx, engine, url, clock)
        cookies = await _sessions(engine, viewers, clock)
        await _pages(ctx, url, folder, cookies, engine, jobs, clock)
        await _download(ctx, engine, folder, members)
    finally:
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


# --- the county ----------------------------------------------------------------------------


async def _lend(engine: AsyncEngine, county: BigCounty, total: int) -> None:
    """The reminder scenario's loans (and what was repaid), with the fund's movements."""
    people = county.members
    for start in range(0, total, reminders.CHUNK * 5):
        rows = [
            reminders._loan(
                k,
                people[k % len(people)][0],
                county.branches[k % len(people) % len(county.branches)],
            )
            for k in range(start, min(start + reminders.CHUNK * 5, total))
        ]
        movements = [_movement("loan_out", row["loan"]["amount_fen"], row["loan"]) for row in rows]
        for row in rows:
            paid = row["paid"]
            if paid:
                movements.append(_movement("principal_in", paid["principal_fen"], row["loan"]))
                movements.append(_movement("interest_in", paid["interest_fen"], row["loan"]))
        async with engine.begin() as conn:
            await conn.execute(insert(loans), [row["loan"] for row in rows])
            await conn.execute(insert(instalments), [i for row in rows for i in row["plan"]])
            paid_rows = [row["paid"] for row in rows if row["paid"]]
            if paid_rows:
                await conn.execute(insert(repayments), paid_rows)
            await conn.execute(insert(fund_movements), movements)
    async with engine.begin() as conn:
        await conn.execute(
            insert(fund_movements),
            [_movement("contribution", 400_000_000 * total // LOANS + 1, None)],
        )


def _movement(kind: str, amount: int, loan: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "amount_fen": amount,
        "source": "county_finance" if kind == "contribution" else None,
        "document": "基准",
        "occurred_on": loan["disbursed_on"] if loan else date(2021, 1, 4),
        "loan_id": loan["id"] if loan else None,
        "recorded_at": NOW,
    }


async def _cases(engine: AsyncEngine, county: BigCounty) -> None:
    """One case a member in this year's ledger, and cases under way at every step."""
    people = county.members
    branches = county.branches
    branch_of = {pid: branches[n % len(branches)] for n, (pid, _) in enumerate(people)}
    extra = EXTRA_CASES * len(people) // MEMBERS
    for start in range(0, len(people) + extra, CHUNK):
        numbers = range(start, min(start + CHUNK, len(people) + extra))
        rows = [_case(n, people[n % len(people)][0], branch_of) for n in numbers]
        async with engine.begin() as conn:
            first = (await conn.execute(select(func.coalesce(func.max(cases.c.id), 0)))).scalar()
            for offset, row in enumerate(rows, start=1):
                row["id"] = int(first) + offset
            await conn.execute(insert(cases), rows)
            ledger = [_entry(row) for row in rows if row["status"] == CaseStatus.IN_LEDGER]
            if ledger:
                await conn.execute(insert(ledger_entries), ledger)
            notices = [row for row in rows if row["status"] == CaseStatus.ON_NOTICE]
            if notices:
                await conn.execute(insert(public_notices), [_notice(row) for row in notices])
                await conn.execute(
                    insert(objections),
                    [
                        {
                            "case_id": row["id"],
                            "raised_by": row["person_id"],
                            "text": "家里有两头牛，收入不低",
                            "raised_at": NOW,
                        }
                        for row in notices[::3]
                    ],
                )


def _case(n: int, person_id: int, branch_of: dict[int, int]) -> dict[str, Any]:
    members = len(branch_of)
    status = CaseStatus.IN_LEDGER if n < members else UNDER_WAY[n % len(UNDER_WAY)]
    created = NOW - timedelta(days=n % 1500)
    return {
        "person_id": person_id,
        "branch_id": branch_of[person_id],
        "kind": "hardship",
        "status": status,
        "category": CATEGORIES[n % len(CATEGORIES)],
        "help_wanted": "生活补助",
        "household_size": 1 + n % 5,
        "household_income_fen": 300_000 + n % 97 * 1_000,
        "looks_above_line": n % 11 == 0,
        "answers": {"causes": "年老体弱，无劳动能力", "situation": "靠低保和儿女接济"},
        "filed_by": person_id,
        "consent_recorded": False,
        "created_at": created,
        "updated_at": created,
    }


def _entry(case: dict[str, Any]) -> dict[str, Any]:
    n = case["id"]
    return {
        "person_id": case["person_id"],
        "year": YEAR,
        "case_id": case["id"],
        "category": case["category"],
        "causes": "年老体弱，无劳动能力，老伴常年生病",
        "household": [
            {"name": "李秀英", "relation": "配偶", "age": 60 + n % 20},
            {"name": "王小军", "relation": "儿子", "age": 30 + n % 10},
        ],
        "household_size": case["household_size"],
        "annual_income_fen": case["household_income_fen"],
        "situation": "种两亩地，靠低保和儿女接济过日子",
        "paired_cadre": "张建华",
        "assistance": ["慰问金500元", "大米一袋、食用油一桶"],
        "status": "active" if n % 9 else "exited",
        "exit_reason": None if n % 9 else "收入超过标准",
        "created_at": case["created_at"],
    }


def _notice(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_id": case["id"],
        "starts_on": date(2026, 6, 10),
        "ends_on": date(2026, 6, 17),
        "place": "村委会公示栏",
        "text": "公示",
        "created_at": NOW,
    }


async def _officials(engine: AsyncEngine, county: BigCounty) -> list[int]:
    """The desk's 64 people with their roles and to-dos: who each session is."""
    people = county.members
    branches = len(county.branches)
    chosen: list[tuple[int, str]] = []
    n = 0
    for role, count in SESSIONS.items():
        for k in range(count):
            # A township officer sits in a branch of their township (branch n mod branches,
            # 25 branches a township): two officers in each of the 20.
            index = (k % 20) * 25 + 7 + (2 + k // 20) * branches if role == "committee" else n
            chosen.append((people[index][0], role))
            n += 1
    async with engine.begin() as conn:
        await conn.execute(
            insert(person_roles), [{"person_id": pid, "role": role} for pid, role in chosen]
        )
        await conn.execute(
            insert(todos),
            [
                {
                    "assignee_id": pid,
                    "kind": "evaluate",
                    "key": f"bench:{pid}:{k}",
                    "text": "请组织评议",
                    "created_at": NOW,
                }
                for pid, _ in chosen
                for k in range(5)
            ],
        )
    return [pid for pid, _ in chosen]


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _county_day(ctx: Context, engine: AsyncEngine, url: str, clock: OffsetClock) -> list[str]:
    """The county's day is NOW's: the data is dated around it, and the server reads the
    sandbox clock back at start. Returns the ids of the jobs the server runs at start."""
    await sandbox_clock.save(engine, clock)
    settings = load_settings(webhook.ours_env(ctx, url, 0))
    return [job.id for job in all_jobs(settings, None) if job.at_start]  # type: ignore[arg-type]


async def _messages_gone(engine: AsyncEngine, clock: OffsetClock) -> None:
    """What a running county has done by the time the desk is busy: the messages of the
    day's jobs (50,000 reminders) have gone, so that serving the desk is what is measured."""
    async with engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.sent_at.is_(None)).values(sent_at=clock.now())
        )


async def _caught_up(engine: AsyncEngine, jobs: list[str], since: datetime) -> float:
    """Wait for the server's own start-up run of the jobs (quick now: nothing is due)."""
    started = time.monotonic()
    deadline = started + 600
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            done = (
                await conn.execute(
                    select(func.count()).where(
                        job_runs.c.job_id.in_(jobs), job_runs.c.last_started_at >= since
                    )
                )
            ).scalar_one()
        if done == len(jobs):
            await asyncio.sleep(2)  # the last job's own transaction
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise RuntimeError("the server's start-up jobs did not finish in 10 minutes")


# --- sessions --------------------------------------------------------------------------------


async def _sessions(engine: AsyncEngine, people: list[int], clock: OffsetClock) -> list[str]:
    """A live session per official, made by the login's own functions, as the cookie value
    a browser would send (aiohttp-session's encrypted cookie with the session's token)."""
    now = clock.now()
    key = await login.cookie_key(engine, now=now)
    fernet = Fernet(key)
    cookies = []
    async with engine.begin() as conn:
        for person_id in people:
            binding = (
                await conn.execute(
                    select(bindings.c.id).where(
                        bindings.c.person_id == person_id, bindings.c.unbound_at.is_(None)
                    )
                )
            ).scalar_one()
            started = await login.start_session(
                conn, person_id=person_id, binding_id=binding, via="code", now=now
            )
            data = {"created": int(time.time()), "session": {"sid": started.token}}
            cookies.append(fernet.encrypt(json.dumps(data).encode()).decode())
    return cookies


# --- the pages -------------------------------------------------------------------------------


async def _scale(ctx: Context) -> None:
    """Alone (without the webhook scenario), this run's own measure of how fast Python runs
    here: the stateless wechatpy bot, as the webhook scenario measures it."""
    if ctx.scale_measured:
        return
    port = webhook.free_port()
    process = webhook.start([sys.executable, "-m", "bench.servers", "wechatpy", str(port)])
    try:
        await webhook.wait_ready(port)
        load, _ = await asyncio.to_thread(
            webhook.measure, ctx, port, process.pid, "plain", seconds=SECONDS, runs=RUNS
        )
    finally:
        webhook.stop(process)
    ctx.wechatpy_rps = load.rps
    ctx.scale_measured = True
    ctx.add(f"{SCENARIO}: aiohttp + wechatpy, no state, plain", "messages/s", load.rps, "/s")
    print(f"{SCENARIO}: the wechatpy bot {load.rps:,.0f}/s: scale {ctx.scale:.2f}", flush=True)


async def _pages(
    ctx: Context,
    url: str,
    folder: Path,
    cookies: list[str],
    engine: AsyncEngine,
    jobs: list[str],
    clock: OffsetClock,
) -> None:
    await _scale(ctx)
    port = webhook.free_port()
    bare = webhook.start([sys.executable, "-m", "bench.servers", "bare", str(port)])
    ours_port = webhook.free_port()
    since = clock.now()
    ours = webhook.start(
        [sys.executable, "-m", "bangfu_bot.cli", "serve"],
        env=webhook.ours_env(ctx, url, ours_port),
        log=ctx.workdir / "serve.log",
    )
    cookie_file = folder / "cookies.txt"
    cookie_file.write_text("\n".join(f"{COOKIE}={c}" for c in cookies) + "\n")
    targets = {"bare aiohttp page": (port, "/healthz")}
    targets.update({page: (ours_port, path) for page, path in PAGES.items()})
    best: dict[str, PageLoad] = {}
    try:
        await webhook.wait_ready(port)
        took = await _caught_up(engine, jobs, since)
        print(f"{SCENARIO}: the server's start-up jobs took {took:.0f} s", flush=True)
        await _messages_gone(engine, clock)
        await webhook.wait_ready(ours_port)
        await _drain(ours.pid)
        # One session at a time first, on a server nothing has queued on: the page's own time.
        alone: dict[str, PageLoad] = {}
        for page, path in PAGES.items():
            alone[page] = await asyncio.to_thread(
                _wrk, ours_port, path, cookie_file, PAGE_SECONDS, 1
            )
            await _drain(ours.pid)
        for target_port, path in targets.values():
            await asyncio.to_thread(_wrk, target_port, path, cookie_file, 2)  # warm up
            await _drain(ours.pid)
        for _ in range(1 if ctx.quick else RUNS):
            for name, (target_port, path) in targets.items():
                seconds = SECONDS if target_port == port else PAGE_SECONDS
                load = await asyncio.to_thread(_wrk, target_port, path, cookie_file, seconds)
                # The best run answered most: what a neighbour took away counts least.
                if name not in best or load.rps > best[name].rps:
                    best[name] = load
                # Requests still in flight when wrk stops are still being served: wait them
                # out, so that the next run does not pay for them.
                await _drain(ours.pid)
    finally:
        webhook.stop(ours)
        webhook.stop(bare)
    baseline = best.pop("bare aiohttp page")
    name = "bare aiohttp page"
    ctx.add(f"{SCENARIO}: {name}", "requests/s", baseline.rps, "/s")
    ctx.add(f"{SCENARIO}: {name}", "p95", baseline.p95_ms, "ms")
    for page, load in best.items():
        label = f"{SCENARIO}: {page}, 64 sessions"
        ctx.add(label, "pages/s", load.rps, "/s", baseline=name, baseline_value=baseline.rps)
        ctx.add(label, "p50", load.p50_ms, "ms")
        ctx.add(label, "p95", load.p95_ms, "ms", baseline=name, baseline_value=baseline.p95_ms)
        ctx.add(label, "p99", load.p99_ms, "ms")
        ctx.add(f"{SCENARIO}: {page}, one session at a time", "p50", alone[page].p50_ms, "ms")
        ctx.add(f"{SCENARIO}: {page}, one session at a time", "p95", alone[page].p95_ms, "ms")
        answered = sum(load.statuses.values())
        # Fewer answers than sessions: most requests were still waiting when the run ended,
        # and the p95 of the few answered says nothing.
        ok = set(load.statuses) == {"200"} and not load.errors and answered >= len(cookies)
        at_reference = load.p95_ms * ctx.scale
        ctx.target(
            f"{page} p95 ≤ 150 ms at 64 sessions",
            ok and at_reference <= 150,
            f"{load.p95_ms:.0f} ms here = {at_reference:.0f} ms at reference speed "
            f"({load.p95_ms / baseline.p95_ms:.0f}× the bare page's {baseline.p95_ms:.1f} ms); "
            f"answers {load.statuses} in {PAGE_SECONDS} s, {load.errors} errors; alone "
            f"p50 {alone[page].p50_ms:.0f} ms, p95 {alone[page].p95_ms:.0f} ms",
        )
        print(
            f"{SCENARIO}: {page} {load.rps:,.0f}/s, p95 {load.p95_ms:.0f} ms "
            f"(bare page {baseline.rps:,.0f}/s, p95 {baseline.p95_ms:.1f} ms)",
            flush=True,
        )


async def _drain(pid: int) -> None:
    """Wait until the server is idle (under 5 % of a core for two seconds running)."""
    started = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - started < 900:
        before = webhook.cpu_seconds(pid)
        await asyncio.sleep(1)
        quiet = quiet + 1 if webhook.cpu_seconds(pid) - before < 0.05 else 0
    took = time.monotonic() - started
    if took > 5:
        print(f"{SCENARIO}: the server took {took:.0f} s to drain", flush=True)


def _wrk(
    port: int, path: str, cookies: Path, seconds: float, connections: int = webhook.CONNECTIONS
) -> PageLoad:
    """One wrk run on the load core: GETs of `path`, each with the next session's cookie."""
    command = [
        "taskset",
        "-c",
        ",".join(map(str, LOAD_CPUS)),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "desk.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        str(cookies),
        path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK-JSON "))
    data = json.loads(line[len("WRK-JSON ") :])
    # No answer at all within the run: no latency to speak of, and never the best run.
    none = float("inf") if not data["requests"] else 0.0
    return PageLoad(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000 + none,
        p95_ms=data["p95_us"] / 1000 + none,
        p99_ms=data["p99_us"] / 1000 + none,
        statuses=data["statuses"],
        errors=data["timeouts"] + data["connect_errors"] + data["read_errors"],
    )


# --- the ledger download ---------------------------------------------------------------------


async def _download(ctx: Context, engine: AsyncEngine, folder: Path, members: int) -> None:
    """The year's ledger as the desk's download writes it, against one SQL pass over it."""
    with stopwatch() as took:
        async with engine.connect() as conn:
            await conn.execute(
                select(func.count(), func.sum(ledger_entries.c.annual_income_fen)).where(
                    ledger_entries.c.year == YEAR
                )
            )
    baseline = took[0]
    out = folder / "台账.xlsx"
    best = float("inf")
    for _ in range(1 if ctx.quick else RUNS):  # the best of three, as the pages' runs
        with stopwatch() as took:
            async with AsyncSession(engine) as session:
                with out.open("wb") as handle:
                    written = await ledger_xlsx(session, year=YEAR, out=handle, today=NOW.date())
        best = min(best, took[0])
    took = [best]
    label = f"{SCENARIO}: ledger download"
    ctx.add(label, "one SQL pass over the year's entries", baseline, "s")
    ctx.add(
        label,
        f"{written.rows:,} rows, {out.stat().st_size / 1e6:.1f} MB",
        took[0],
        "s",
        baseline="one SQL pass",
        baseline_value=baseline,
    )
    ctx.seconds_target(f"ledger download of {members:,} rows ≤ 10 s", took[0], 10)
    print(f"{SCENARIO}: ledger of {written.rows:,} rows in {took[0]:.2f} s", flush=True)
