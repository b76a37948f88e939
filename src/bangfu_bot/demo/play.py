"""`make demo`: the whole mechanism played through the real webhook and the fake WeChat.

A fresh SQLite database in `out_dir`, the fake WeChat on a loopback port, the bot served by
aiohttp on another; every line a persona types is a signed (safe-mode) push, every reply and
every message the platform delivers is printed with the persona's name and the simulated date.
The clock is frozen and moved by hand, so the notice period, campaign and loan reminders run
in seconds.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select

import bangfu_bot
from bangfu_bot.app import SERVICES, create_app, run_jobs
from bangfu_bot.clock import FrozenClock
from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.idnumbers import with_check
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.settings import Settings, load_settings
from bangfu_bot.texts import speaker
from bangfu_bot.wechat.fake import FakeWeChatAPI, PushDriver

tell = speaker("bangfu_bot.demo")

__all__ = ["BOT_NAME", "DemoResult", "Sandbox", "main_demo", "play"]

APPID = "wx5a3c9e7d1b2f4a60"
SECRET = "d3m0-county-secret-7f2b9c1e"
TOKEN = "demotoken2026"
AES_KEY = "Dm7kQ2xW9pL4nR8sT1vY6zB3cF5hJ0gK2mN4qP6rS8u"
TEMPLATE = "tpl-demo-notice"
BOT_NAME = "帮扶助手"
START = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in the county
LATE_ANSWER_S = 30  # how long an answer sent as a customer-service message is waited for

Echo = Callable[[str], None]


def conversations_dir() -> Path:
    """The repository's dialogues, found next to the package (or under the working dir)."""
    beside = Path(bangfu_bot.__file__).resolve().parents[2] / "conversations"
    return beside if beside.is_dir() else Path.cwd() / "conversations"


def id_number(born: date, serial: int, region: str = "529901") -> str:
    """A made-up ID number, valid in form (right check character)."""
    return with_check(f"{region}{born:%Y%m%d}{serial:03d}")


class Sandbox:
    """The fake WeChat, the bot over HTTP on loopback, and pushes as any openid."""

    def __init__(self, env: dict[str, str], clock: FrozenClock) -> None:
        self.env = env
        self.clock = clock
        self.api = FakeWeChatAPI(appid=APPID, secret=SECRET, clock=clock)
        self.app: web.Application | None = None
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.driver: PushDriver | None = None

    async def __aenter__(self) -> Self:
        api_url = await self.api.start()
        self.api.add_template(TEMPLATE, {"thing1": "thing", "thing2": "thing", "time3": "time"})
        settings = load_settings(
            {
                "BANGFU_WECHAT_APPID": APPID,
                "BANGFU_WECHAT_SECRET": SECRET,
                "BANGFU_WECHAT_TOKEN": TOKEN,
                "BANGFU_WECHAT_AES_KEY": AES_KEY,
                "BANGFU_WECHAT_API_BASE": api_url,
                "BANGFU_WECHAT_TEMPLATE_ID": TEMPLATE,
                "BANGFU_CONVERSATIONS_DIR": str(conversations_dir()),
                "BANGFU_SPOOL_RETRY_S": "0.2",
                "BANGFU_SHUTDOWN_GRACE_S": "1",
                "BANGFU_LEADER_RETRY_S": "0.2",
                **self.env,
            }
        )
        self.app = create_app(settings, clock=self.clock, migrate=True)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.session = aiohttp.ClientSession()
        self.driver = PushDriver(
            url=f"http://127.0.0.1:{port}/wechat",
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            clock=self.clock,
            session=self.session,
            mode="safe",
            api=self.api,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.api.stop()

    @property
    def services(self) -> Any:
        assert self.app is not None
        return self.app[SERVICES]

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def send(self, openid: str, text: str) -> str | None:
        """Push a typed line; the passive answer (None when the bot answered `success`)."""
        assert self.driver is not None
        delivery = await self.driver.text(openid, text)
        return delivery.text

    async def flush_outbox(self, timeout: float = 10) -> None:
        """Send every due outbox row (as the dispatcher would)."""
        await self.services.dispatcher.flush(timeout)

    async def run_jobs(self) -> None:
        await run_jobs(self.services)
        await self.flush_outbox()

    def stamp(self) -> str:
        local = self.clock.now().astimezone(self.settings.tz)
        return f"{chinese_date(local)} {local:%H:%M}"


@dataclass
class DemoResult:
    """What the demo exported and how much happened."""

    ledger_path: Path
    fund_report_path: Path
    database_path: Path
    transcript: list[str] = field(default_factory=list)
    messages_sent: int = 0
    pushes_received: int = 0
    ledger_rows: int = 0
    reconciled: bool = False


class _Story:
    """Prints the transcript and keeps track of what each persona has already been shown."""

    def __init__(self, box: Sandbox, echo: Echo) -> None:
        self.box = box
        self.echo = echo
        self.lines: list[str] = []
        self.openids: dict[str, str] = {}
        self.seen: dict[str, tuple[int, int, int]] = {}
        self.sent = 0
        self.pushes = 0

    def say(self, line: str = "") -> None:
        self.lines.append(line)
        self.echo(line)

    def scene(self, title: str) -> None:
        self.say("")
        self.say(f"━━ {title} ━━")

    async def send(self, who: str, text: str, expect: str | None = None) -> str:
        openid = self.openids[who]
        self.say(f"[{self.box.stamp()}] {who} > {text}")
        self.sent += 1
        before = len(self.box.api.sent_texts(openid))
        answer = await self.box.send(openid, text)
        if answer is None:  # past the reply budget (a busy machine): it comes as a message
            answer = await self._answered_later(who, openid, before)
        shown = answer if answer is not None else "（稍后以客服消息回复）"
        first, *rest = shown.splitlines() or [""]
        self.say(f"    {BOT_NAME} > {first}")
        for line in rest:
            self.say(f"    {' ' * (2 * len(BOT_NAME))}   {line}")
        if expect is not None and expect not in (answer or ""):
            raise RuntimeError(
                f"demo: after {who} said {text!r} expected {expect!r}, got {answer!r}"
            )
        return answer or ""

    async def _answered_later(self, who: str, openid: str, before: int) -> str | None:
        """The customer-service message that brings an answer the bot acknowledged with
        `success`, as the member's phone shows it a moment later (None if none came)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LATE_ANSWER_S
        while loop.time() < deadline:
            await self.box.flush_outbox()
            texts = self.box.api.sent_texts(openid)
            if len(texts) > before:
                t0, p0, m0 = self.seen.get(who, (0, 0, 0))
                if t0 == before:  # shown here as the answer, not again as a push
                    self.seen[who] = (before + 1, p0, m0)
                return str(texts[before])
            await asyncio.sleep(0.05)
        return None

    async def script(self, who: str, lines: Sequence[str | tuple[str, str]]) -> str:
        last = ""
        for item in lines:
            text, expect = (item, None) if isinstance(item, str) else item
            last = await self.send(who, text, expect)
        return last

    async def pushes_shown(self) -> None:
        """Deliver what is due and print what reached each persona since last time."""
        await self.box.flush_outbox()
        api = self.box.api
        jobs = api.mass_jobs()
        for who, openid in self.openids.items():
            texts = api.sent_texts(openid)
            templates = api.sent_templates(openid)
            masses = [job.content for job in jobs if openid in job.delivered]
            t0, p0, m0 = self.seen.get(who, (0, 0, 0))
            for text in texts[t0:]:
                self._push(who, "客服消息", text)
            for template in templates[p0:]:
                values = "；".join(str(v) for v in template.get("data", {}).values())
                self._push(who, "模板消息", values)
            for content in masses[m0:]:
                self._push(who, "群发", content)
            self.seen[who] = (len(texts), len(templates), len(masses))

    def _push(self, who: str, kind: str, text: str) -> None:
        self.pushes += 1
        first, *rest = text.splitlines() or [""]
        self.say(f"    （推送）→ {who}［{kind}］{first}")
        for line in rest:
            self.say(f"              {line}")

    async def advance(self, **delta: float) -> None:
        self.box.clock.advance(**delta)
        self.say("")
        self.say(f"⏩ 时间来到 {self.box.stamp()}，运行定时任务")
        await self.box.run_jobs()
        await self.pushes_shown()


async def _org(conn: Any, kind: str, name: str, parent: int | None) -> int:
    result = await conn.execute(
        insert(organisations).values(kind=kind, name=name, parent_id=parent)
    )
    return inserted_id(result)


# name, openid, branch key, roles, serial, born
PEOPLE = (
    ("王德福", "o-wang", "taoyuan", ("member",), 231, date(1956, 3, 14)),
    ("张建国", "o-zhang", "taoyuan", ("member", "secretary"), 457, date(1970, 5, 2)),
    ("赵明", "o-zhao", "lijia", ("member", "committee"), 773, date(1978, 1, 20)),
    ("孙丽", "o-sun", None, ("department",), 884, date(1985, 8, 8)),
    ("钱进", "o-qian", None, ("department", "supervisor"), 885, date(1982, 4, 4)),
)


async def _populate(engine: Any, now: datetime) -> dict[str, tuple[int, str]]:
    """示范县 → 青山镇党委 → 桃源村/李家村党支部 and the five personas."""
    async with engine.begin() as conn:
        county = await _org(conn, "county", "示范县委组织部", None)
        committee = await _org(conn, "committee", "青山镇党委", county)
        branches = {
            "taoyuan": await _org(conn, "branch", "桃源村党支部", committee),
            "lijia": await _org(conn, "branch", "李家村党支部", committee),
        }
        found: dict[str, tuple[int, str]] = {}
        for name, _, branch, roles, serial, born in PEOPLE:
            number = id_number(born, serial)
            result = await conn.execute(
                insert(people).values(
                    name=name,
                    gender="女" if name == "孙丽" else "男",
                    birth_date=born,
                    id_number=number,
                    phone=f"1390851{serial:04d}",
                    branch_id=branches[branch] if branch else None,
                    urban_rural="农村",
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            person_id = inserted_id(result)
            for role in roles:
                await conn.execute(insert(person_roles).values(person_id=person_id, role=role))
            found[name] = (person_id, number)
    return found


APPLY = [
    "申请",
    "3",
    "农村",
    "不是",
    "李秀英",
    "1",
    "六十八",
    "有高血压，在家",
    "有",
    "王小军",
    "儿子",
    "35",
    "身体好，在外打工",
    "没有",
    "3千5",
    "0",
    "没有",
    "1,200.50",
    "0",
    "老伴生病住院，欠了两万块钱",
    "1",
    "跳过",
]
MEETING = [
    "今天",
    "9",
    "8",
    "李书文、王芳",
    "刘洋",
    "陈红",
    "6",
    "1",
    "1",
    "大家同意王德福家确实困难",
    "跳过",
]


async def play(out_dir: Path, *, echo: Echo = print) -> DemoResult:
    """Play the story; return the exported files and counts."""
    from bangfu_bot.fund.service import contribute
    from bangfu_bot.ledger.export import export_ledger
    from bangfu_bot.loans.models import instalments, loans
    from bangfu_bot.loans.service import position
    from bangfu_bot.members.service import person_by_id
    from bangfu_bot.reports.fund import export_fund_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    database = out_dir / "demo.db"
    for stale in out_dir.glob("demo.db*"):
        stale.unlink()
    env = {
        "BANGFU_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "BANGFU_STORAGE_DIR": str(out_dir / "storage"),
    }
    clock = FrozenClock(START)
    async with Sandbox(env, clock) as box:
        story = _Story(box, echo)
        engine = box.services.engine
        found = await _populate(engine, clock.now())
        story.say("示范县 · 困难党员帮扶机制演示（真实 webhook + 模拟微信，时间为模拟时间）")
        story.say(
            "人物：王德福（桃源村党员）、张建国（桃源村支部书记）、赵明（青山镇党委）、"
            "孙丽、钱进（县委组织部；钱进兼基金监督小组）"
        )
        for name, openid, *_ in PEOPLE:
            story.openids[name] = openid
            box.api.follow(openid)

        story.scene("一、绑定身份")
        for name, _, *_rest in PEOPLE:
            number = found[name][1]
            await story.script(name, ["绑定", name, number[-6:], ("1", "绑定好了")])

        story.scene("二、王德福申请帮扶")
        await story.script("王德福", APPLY[:-1])
        await story.send("王德福", APPLY[-1])
        await story.send("王德福", "1", "申请已经交上去了")
        await story.pushes_shown()

        story.scene("三、支部书记组织民主评议")
        await story.send("张建国", "待办", "新的帮扶申请：王德福")
        await story.send("张建国", "1", "记录王德福的民主评议")
        await story.script("张建国", MEETING)
        await story.send("张建国", "1", "评议通过")
        await story.pushes_shown()

        story.scene("四、公示七天")
        await story.advance(days=8)
        await story.send("张建国", "待办", "公示已结束")
        await story.script("张建国", [("1", "上报党委"), "跳过", ("1", "已上报党委")])
        await story.pushes_shown()

        story.scene("五、党委审批，组织部备案")
        await story.send("王德福", "进度")
        await story.script(
            "赵明", [("待办", "请审批"), ("1", "批准还是退回"), "1", ("1", "已批准")]
        )
        await story.pushes_shown()
        await story.script("孙丽", [("待办", "请备案"), ("1", "结对帮扶干部"), "刘洋"])
        await story.send("孙丽", "1", "列入")
        story.say(tell("filed_in_ledger", bot=BOT_NAME))
        await story.pushes_shown()
        await story.send("王德福", "进度", "已列入帮扶台账")

        story.scene("六、帮扶基金筹集，春节走访慰问")
        today = clock.now().astimezone(box.settings.tz).date()
        async with engine.begin() as conn:
            await contribute(
                conn,
                actor=await person_by_id(conn, found["孙丽"][0]),
                amount_fen=27_000_000,
                source="county_finance",
                document="县财政〔2026〕3号",
                occurred_on=date(2026, 1, 5),
                now=clock.now(),
            )
        story.say(f"[{box.stamp()}] 孙丽 登记基金收入：县财政拨款 270000元（县财政〔2026〕3号）")
        await story.send("张建国", "帮助")
        await story.send("孙丽", "开展走访", "开展一次走访慰问")
        await story.script("孙丽", ["1", "跳过", "500", "米一袋、油一桶"])
        await story.send("孙丽", "1", "已开展")
        await story.pushes_shown()
        await story.script(
            "张建国", ["走访", "王德福", "今天", "是", "是", "身体还好，缺冬衣", "跳过"]
        )
        await story.send("张建国", "1", "记下了")
        await story.send("赵明", "走访进度")
        await story.pushes_shown()

        story.scene("七、小额借款：申请、审批、考核、担保、放款、复核")
        await story.script(
            "王德福",
            [
                ("借款", "想借多少元"),
                "三千五百元",
                "生猪养殖",
                "年底出栏 8 头，约 1 万 6 千元",
                "每年年底还一部分",
            ],
        )
        await story.send("王德福", "1", "借款申请已交上去")
        await story.pushes_shown()
        await story.script("赵明", ["待办", "1", "批准", "1"])
        await story.pushes_shown()
        await story.script("孙丽", ["待办", "1", "今天", "孙丽", "猪圈已建好，饲料已备", "是", "1"])
        await story.script("孙丽", ["待办", "1", "青山镇财政所", "青财担〔2026〕7号", "1"])
        await story.script("孙丽", ["待办", "1", "今天", "放款单 001"])
        await story.send("孙丽", "1", "复核")
        await story.pushes_shown()
        await story.script("钱进", [("待办", "放款"), "1", "是"])
        await story.send("钱进", "1", "已确认放款")
        await story.pushes_shown()

        story.scene("八、到期前三十天提醒")
        async with engine.connect() as conn:
            loan_id = (await conn.execute(select(loans.c.id))).scalar_one()
            first_due = (
                await conn.execute(
                    select(func.min(instalments.c.due_on)).where(instalments.c.loan_id == loan_id)
                )
            ).scalar_one()
        today = clock.now().astimezone(box.settings.tz).date()
        await story.advance(days=(first_due - today).days - 30)

        story.scene("九、还款登记")
        today = clock.now().astimezone(box.settings.tz).date()
        async with engine.connect() as conn:
            owed = (await position(conn, loan_id, today)).owed_now_fen
        amount = f"{owed // 100}" if owed % 100 == 0 else f"{owed / 100:.2f}"
        await story.script(
            "孙丽",
            [
                ("还款登记", "谁还的款"),
                "王德福",
                found["王德福"][1][-6:],
                amount,
                "今天",
                "收据 0098",
            ],
        )
        await story.send("孙丽", "1", "全部还清")
        await story.pushes_shown()

        story.scene("十、组织部发通知")
        await story.script(
            "孙丽",
            [
                ("通知", "先写内容"),
                "12月5日上午在镇农技站办食用菌种植培训。",
                "一个支部",
                "桃源村党支部",
                "是",
            ],
        )
        await story.send("孙丽", "1", "共 ")
        await story.pushes_shown()
        await story.send("王德福", "报名", "报名")
        await story.send("孙丽", "报名情况")

        story.scene("十一、监督小组查基金")
        funds = await story.send("钱进", "基金", "对账：平")
        await story.pushes_shown()

        story.scene("导出")
        year = clock.now().astimezone(box.settings.tz).year
        ledger_path = out_dir / f"台账-{START.year}.xlsx"
        report_path = out_dir / f"基金报告-{year}.xlsx"
        ledger = await export_ledger(engine, year=START.year, out=ledger_path, today=today)
        await export_fund_report(engine, year=year, out=report_path, today=today)

        story.say("")
        story.say("━━ 小结 ━━")
        balanced = tell("balanced") if tell("balanced_mark") in funds else tell("unbalanced")
        story.say(
            tell("summary", sent=story.sent, pushes=story.pushes, rows=ledger.rows, fund=balanced)
        )
        story.say(f"台账：{ledger_path}")
        story.say(f"基金报告：{report_path}")
        story.say(f"数据库：{database}")
        return DemoResult(
            ledger_path=ledger_path,
            fund_report_path=report_path,
            database_path=database,
            transcript=story.lines,
            messages_sent=story.sent,
            pushes_received=story.pushes,
            ledger_rows=ledger.rows,
            reconciled="对账：平" in funds,
        )


async def main_demo(settings_storage_dir: str) -> int:
    """`bangfu-bot demo`: play into storage/demo, made fresh each run."""
    out_dir = Path(settings_storage_dir) / "demo"
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        await play(out_dir)
    except RuntimeError as error:
        print(str(error))
        return 1
    return 0
