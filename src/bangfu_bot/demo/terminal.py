"""`bangfu-bot chat --as NAME`: chat as a person on the roster, from a terminal.

The same in-process setup as the demo: the fake WeChat on loopback, the bot served over HTTP
on the configured database, every typed line a signed push. `/天 N` moves the simulated clock
N days ahead and runs the scheduled jobs; `/退出` (or Ctrl-D) quits.

On an empty store (a fresh clone) the demo county is created first, as `bangfu-bot
seed-demo` would, so the README's `bangfu-bot chat --as 王德福` works from the start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.cases.eligibility import load_rules
from bangfu_bot.clock import FrozenClock
from bangfu_bot.demo.play import BOT_NAME, Sandbox
from bangfu_bot.members.models import bindings, people
from bangfu_bot.seed.county import seed_demo
from bangfu_bot.texts import speaker

__all__ = ["chat_as"]

say = speaker("bangfu_bot.demo")


def _show(prefix: str, text: str) -> None:
    first, *rest = text.splitlines() or [""]
    print(f"{prefix}{first}")
    for line in rest:
        print(" " * 8 + line)


async def _seed_if_empty(engine: AsyncEngine, settings: Any, clock: FrozenClock) -> None:
    """Create the demo county when nobody is on the roster yet, and say so."""
    async with engine.connect() as conn:
        anyone = (await conn.execute(select(func.count()).select_from(people))).scalar_one()
    if anyone:
        return
    print(say("seeding_demo"))
    summary = await seed_demo(
        engine,
        now=clock.now(),
        tz=settings.tz,
        rules=load_rules(Path(settings.conversations_dir) / "eligibility.toml"),
    )
    for line in summary.lines():
        print(f"  {line}")


async def chat_as(persona: str, settings: Any) -> int:
    """A line-based REPL as `persona` (a name or ID number on the roster)."""
    env = {
        "BANGFU_DATABASE_URL": settings.database_url,
        "BANGFU_STORAGE_DIR": str(settings.storage_dir),
    }
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    async with Sandbox(env, clock) as box:
        engine = box.services.engine
        await _seed_if_empty(engine, settings, clock)
        async with engine.begin() as conn:
            found = (
                await conn.execute(
                    select(people.c.id, people.c.name)
                    .where((people.c.name == persona) | (people.c.id_number == persona))
                    .order_by(people.c.id)
                )
            ).first()
            if found is None:
                print(say("not_on_roster", persona=persona))
                return 1
            openid = f"o-terminal-{found.id}"
            bound = (
                await conn.execute(
                    select(bindings.c.id).where(
                        bindings.c.openid == openid, bindings.c.unbound_at.is_(None)
                    )
                )
            ).first()
            if bound is None:
                await conn.execute(
                    insert(bindings).values(
                        openid=openid, person_id=found.id, channel="chat", bound_at=clock.now()
                    )
                )
        box.api.follow(openid)
        print(say("chatting_as", name=found.name))
        seen = [0, 0, 0]
        while True:
            try:
                line = (await asyncio.to_thread(input, f"[{box.stamp()}] {found.name} > ")).strip()
            except EOFError:
                break
            if not line:
                continue
            if line in ("/退出", "/quit"):
                break
            if line.startswith("/天"):
                try:
                    days = float(line.removeprefix("/天").strip() or "1")
                except ValueError:
                    print(say("days_usage"))
                    continue
                clock.advance(days=days)
                await box.run_jobs()
                print(say("time_now", stamp=box.stamp()))
            else:
                answer = await box.send(openid, line)
                _show(f"{BOT_NAME} > ", answer if answer is not None else say("answer_later"))
                await box.flush_outbox()
            texts = box.api.sent_texts(openid)
            templates = box.api.sent_templates(openid)
            masses = [job.content for job in box.api.mass_jobs() if openid in job.delivered]
            for text in texts[seen[0] :]:
                _show(say("pushed"), text)
            for template in templates[seen[1] :]:
                values = template.get("data", {}).values()
                _show(say("pushed_template"), say("template_separator").join(map(str, values)))
            for content in masses[seen[2] :]:
                _show(say("pushed_mass"), content)
            seen = [len(texts), len(templates), len(masses)]
    return 0
