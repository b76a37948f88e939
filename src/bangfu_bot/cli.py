"""The `bangfu-bot` command: serve, db upgrade, ... Settings errors exit with status 2."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bangfu_bot import __version__
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bangfu_bot")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="bangfu-bot", description="帮扶 bot for WeChat")
    parser.add_argument("--config", help="TOML file of settings (BANGFU_* variables win)")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the webhook, /healthz and /metrics")
    database = commands.add_parser("db", help="database maintenance")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    database_commands.add_parser(
        "upgrade", help="run the Alembic migrations on BANGFU_DATABASE_URL"
    )
    commands.add_parser("config", help="print the effective settings (secrets hidden)")
    commands.add_parser("authority", help="print the authority table: who may do which act")
    flows = commands.add_parser("flows", help="the dialogues in conversations/")
    flows_commands = flows.add_subparsers(dest="flows_command", required=True)
    flows_commands.add_parser(
        "check", help="check every flow file and holidays.toml; problems with file:line"
    )
    holidays = commands.add_parser(
        "holidays", help="public holidays and make-up working days in conversations/holidays.toml"
    )
    holidays_commands = holidays.add_subparsers(dest="holidays_command", required=True)
    holidays_update = holidays_commands.add_parser(
        "update", help="write the years the chinese-calendar package knows into the file"
    )
    holidays_update.add_argument(
        "--years", help="FIRST-LAST or YEAR (default: last year to next year)"
    )
    holidays_update.add_argument(
        "--file", help="the file to write (default: BANGFU_CONVERSATIONS_DIR/holidays.toml)"
    )
    menu = commands.add_parser("menu", help="the custom menu in conversations/menu.toml")
    menu_commands = menu.add_subparsers(dest="menu_command", required=True)
    menu_commands.add_parser("push", help="check the menu and push it to WeChat")
    tags = commands.add_parser("tags", help="WeChat tags kept in step with the tree and roles")
    tags_commands = tags.add_subparsers(dest="tags_command", required=True)
    tags_commands.add_parser("sync", help="bring the tags in step now (serve does it hourly)")
    qrcode = commands.add_parser("qrcode", help="a personal QR code that binds whoever scans it")
    qrcode.add_argument("person", help="name or ID number on the roster")
    qrcode.add_argument("--days", type=int, default=30, help="valid for (1-30 days)")
    importer = commands.add_parser("import", help="import data")
    import_commands = importer.add_subparsers(dest="import_command", required=True)
    members = import_commands.add_parser("members", help="the roster, from CSV or XLSX")
    members.add_argument("file")
    members.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import the valid rows even if some are rejected",
    )
    # stays in Python: a default, the name the county's organisation is stored under
    members.add_argument("--county", default="县委组织部", help="name of the county organisation")
    members.add_argument(
        "--committee-column",
        metavar="NAME",
        help="the column holding the 党委 (else a 党委 column, else read "
        "from the branch's full name)",
    )
    roles = import_commands.add_parser(
        "roles", help="set roles (支部书记, 党委委员, ...) from 姓名, 身份证号, 角色 columns"
    )
    roles.add_argument("file")
    roles.add_argument(
        "--skip-invalid",
        action="store_true",
        help="set the valid lines' roles even if some lines are rejected",
    )
    broadcast = commands.add_parser("broadcast", help="send a notice (通知) to an audience")
    broadcast.add_argument("--text", required=True)
    broadcast.add_argument(
        "--to",
        required=True,
        dest="audience",
        help="everyone | township:党委全称 | branch:支部全称 | role:secretary | category:台账类别",
    )
    broadcast.add_argument("--training", action="store_true", help="members may answer 报名")
    fund = commands.add_parser("fund", help="the assistance fund")
    fund_commands = fund.add_subparsers(dest="fund_command", required=True)
    contribute = fund_commands.add_parser("contribute", help="record money coming in")
    contribute.add_argument(
        "--source",
        required=True,
        choices=["county_finance", "committee", "party_dues", "donation", "welfare_fund"],
    )
    contribute.add_argument("--amount", required=True, help="yuan, e.g. 100000 or 10万")
    contribute.add_argument("--document", required=True, help="the source document")
    contribute.add_argument("--date", required=True, help="YYYY-MM-DD on the document")
    report = fund_commands.add_parser("report", help="the year's report for supervisors")
    report.add_argument("--year", type=int, required=True)
    report.add_argument("--out", required=True, help="FILE.xlsx")
    outbox_parser = commands.add_parser("outbox", help="outbound messages")
    outbox_commands = outbox_parser.add_subparsers(dest="outbox_command", required=True)
    outbox_commands.add_parser("status", help="sent / delivered / escalated / failed counts")
    exporter = commands.add_parser("export", help="printable exports")
    export_commands = exporter.add_subparsers(dest="export_command", required=True)
    ledger = export_commands.add_parser("ledger", help="the yearly ledger (台账) as XLSX")
    ledger.add_argument("--year", type=int, required=True)
    ledger.add_argument("--township", help="one 党委 only")
    ledger.add_argument("--out", required=True, help="FILE.xlsx")
    audit = export_commands.add_parser("audit", help="every case transition, for supervisors")
    audit.add_argument("--out", required=True, help="FILE.xlsx")
    commands.add_parser("demo", help="play the whole mechanism against the fake WeChat")
    chat = commands.add_parser("chat", help="chat as a person on the roster, in the terminal")
    chat.add_argument("--as", dest="persona", required=True, help="name or ID number")
    from bangfu_bot.seed.county import add_arguments as add_demo_arguments

    add_demo_arguments(commands)
    notice = export_commands.add_parser("notice", help="the printable public notice of a case")
    notice.add_argument("case", type=int)
    minutes = export_commands.add_parser("minutes", help="the evaluation record of a case")
    minutes.add_argument("case", type=int)
    plan = commands.add_parser("plan", help="the year's plan (年度计划)")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True)
    plan_set = plan_commands.add_parser("set", help="set a year's plan from a TOML file")
    plan_set.add_argument("--year", type=int, required=True)
    plan_set.add_argument("file", help="FILE.toml (see README)")
    plan_show = plan_commands.add_parser("show", help="print a year's plan")
    plan_show.add_argument("--year", type=int, required=True)
    annual = commands.add_parser("report", help="the department's reports")
    annual_commands = annual.add_subparsers(dest="report_command", required=True)
    annual_year = annual_commands.add_parser("year", help="the annual report, years side by side")
    annual_year.add_argument("--year", type=int, required=True)
    annual_year.add_argument("--out", required=True, help="FILE.pdf, FILE.docx or FILE.xlsx")
    from bangfu_bot.visits.cli import add_parser as add_visits_parser

    add_visits_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    _configure_logging()
    try:
        settings = load_settings(config_file=args.config)
    except SettingsError as error:
        print(f"bangfu-bot: configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(settings)
    if args.command == "db":
        return db_upgrade(settings)
    if args.command == "config":
        return show_config(settings)
    if args.command == "authority":
        from bangfu_bot.authority import table_markdown

        print(table_markdown())
        return 0
    if args.command == "flows":
        return flows_check(settings)
    if args.command == "holidays":
        return holidays_update(settings, args.years, args.file)
    if args.command == "menu":
        return asyncio.run(menu_push(settings))
    if args.command == "qrcode":
        return asyncio.run(issue_qrcode(settings, args.person, args.days))
    if args.command == "tags":
        return asyncio.run(tags_sync(settings))
    if args.command == "visits":
        return asyncio.run(visits_command(settings, args))
    if args.command in {"demo", "chat"}:
        # The transcript is the output: keep the service's INFO lines out of it.
        logging.getLogger().setLevel(logging.WARNING)
    if args.command == "demo":
        from bangfu_bot.demo.play import main_demo

        return asyncio.run(main_demo(settings.storage_dir))
    if args.command == "chat":
        from bangfu_bot.demo.terminal import chat_as

        return asyncio.run(chat_as(args.persona, settings))
    if args.command == "seed-demo":
        from bangfu_bot.seed.county import run_seed_demo

        return asyncio.run(run_seed_demo(settings))
    if args.command == "broadcast":
        return asyncio.run(broadcast_command(settings, args))
    if args.command == "fund":
        return asyncio.run(fund_command(settings, args))
    if args.command == "plan":
        return asyncio.run(plan_command(settings, args))
    if args.command == "report":
        return asyncio.run(report_command(settings, args))
    if args.command == "outbox":
        return asyncio.run(outbox_status(settings))
    if args.command == "export":
        return asyncio.run(export(settings, args))
    if args.command == "import" and args.import_command == "roles":
        return asyncio.run(import_roles(settings, args.file, args.skip_invalid))
    if args.command == "import":
        return asyncio.run(
            import_members(
                settings, args.file, args.skip_invalid, args.county, args.committee_column
            )
        )
    return 2


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    # Alembic announces every plugin it loads; only the migrations themselves matter here.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def serve(settings: Settings) -> int:
    """Run the web server until interrupted."""
    from aiohttp import web

    from bangfu_bot.app import StartupError, create_app
    from bangfu_bot.common.holidays import HolidaysInvalid
    from bangfu_bot.conversation.flows import FlowsInvalid

    try:
        app = create_app(settings)
    except FlowsInvalid as invalid:
        # Refuse to start rather than serve a half-working dialogue.
        for problem in invalid.problems:
            print(f"bangfu-bot: {problem}", file=sys.stderr)
        return 2
    except HolidaysInvalid as invalid:
        # Nor count a notice's working days from a calendar it cannot read.
        print(f"bangfu-bot: {invalid}", file=sys.stderr)
        return 2
    _announce(settings)
    app.on_startup.append(_settle_heap)  # after the cleanup contexts: the app is built
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    except StartupError as error:
        print(f"bangfu-bot: cannot start: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"bangfu-bot: cannot serve on {settings.host}:{settings.port}: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    return 0


async def _settle_heap(app: object) -> None:
    """Move everything built at start-up out of the garbage collector's sight.

    The settings, flows, SQLAlchemy's metadata and compiled-statement caches live as long as
    the process. Left in the collected generations, each full collection walks them all: a
    pause of tens of milliseconds every few thousand messages, which was most of the p99.
    Again once the leader's start-up run of the jobs is over: what it leaves kept (on a big
    county, a hundred milliseconds of full collection every few seconds under the desk's
    load) is as long-lived.
    """
    from bangfu_bot.services import SERVICES

    gc.collect()
    gc.freeze()
    services = app[SERVICES]  # type: ignore[index]

    async def after_catch_up() -> None:
        await services.caught_up.wait()
        gc.collect()
        gc.freeze()

    task = asyncio.get_running_loop().create_task(after_catch_up())
    _settling.add(task)
    task.add_done_callback(_settling.discard)


_settling: set[asyncio.Task[None]] = set()


def _announce(settings: Settings) -> None:
    where = f"http://{settings.host}:{settings.port}"
    print(
        f"bangfu-bot {__version__} serving {where}/wechat (health {where}/healthz, "
        f"metrics {where}/metrics)",
        flush=True,
    )
    print(f"store: {_safe_url(settings.database_url)}", flush=True)
    if settings.sandbox:
        print(
            f"sandbox WeChat (no credentials set): token {settings.wechat_token!r}, "
            f"appid {settings.wechat_appid!r}; loopback only",
            flush=True,
        )
        print(f"sandbox page: open {where}/sandbox in a browser on this computer", flush=True)
    allowed = [name for name, on in settings.features().items() if on]
    print(f"account type {settings.wechat_account_type}: {', '.join(allowed)}", flush=True)


def _safe_url(url: str) -> str:
    from bangfu_bot.settings import _redact_url

    return _redact_url(url)


def db_upgrade(settings: Settings) -> int:
    """Run migrations to head on the configured database."""
    from bangfu_bot import db

    async def run() -> None:
        engine = db.make_engine(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
        try:
            await db.migrate(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as error:  # noqa: BLE001 - one line for the operator, not a traceback
        print(
            f"bangfu-bot: db upgrade failed on {_safe_url(settings.database_url)}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            file=sys.stderr,
        )
        return 1
    print(f"database at head: {_safe_url(settings.database_url)}")
    return 0


def flows_check(settings: Settings) -> int:
    """Check every flow file, templates.toml and the holidays file; print problems as
    file:line: message, and a warning when the holidays file lacks this year."""
    from bangfu_bot.chats import chat_bot
    from bangfu_bot.common.holidays import HolidaysInvalid
    from bangfu_bot.conversation.flows import FlowsInvalid

    try:
        bot = chat_bot(settings)
    except FlowsInvalid as invalid:
        for problem in invalid.problems:
            print(problem, file=sys.stderr)
        return 1
    except HolidaysInvalid as invalid:
        print(invalid, file=sys.stderr)
        return 1
    except (OSError, KeyError, ValueError) as error:
        print(f"bangfu-bot: {settings.conversations_dir}: {error}", file=sys.stderr)
        return 1
    names = ", ".join(sorted(bot.engine.flows))
    print(f"{len(bot.engine.flows)} flows OK ({names}) in {settings.conversations_dir}")
    from bangfu_bot.notify.outbox import DeliveryRules
    from bangfu_bot.notify.templates import TemplatesInvalid
    from bangfu_bot.settings import SettingsError

    try:
        rules = DeliveryRules.from_settings(settings)
    except (TemplatesInvalid, SettingsError) as invalid:
        print(invalid, file=sys.stderr)
        return 1
    print(f"templates OK ({', '.join(rules.catalogue.kinds)})")
    _holidays_status(settings)
    return 0


def _holidays_status(settings: Settings) -> None:
    """Which years the holidays file holds; a warning on stderr when this year is missing
    (a malformed file is the caller's to report: HolidaysInvalid)."""
    from bangfu_bot.clock import SystemClock

    holidays = ProcedureRules.from_settings(settings).holidays
    print(holidays.describe())
    missing = holidays.missing(SystemClock().now().astimezone(settings.tz).year)
    if missing is not None:
        print(f"bangfu-bot: warning: {missing}", file=sys.stderr)


def holidays_update(settings: Settings, years: str | None, file: str | None) -> int:
    """`bangfu-bot holidays update`: write the years chinese-calendar knows into the file."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.common import holidays

    tell = holidays.say
    this_year = SystemClock().now().astimezone(settings.tz).year
    try:
        wanted = holidays.parse_years(years) if years else [this_year - 1, this_year, this_year + 1]
    except ValueError as error:
        print(f"bangfu-bot: {error}", file=sys.stderr)
        return 2
    try:
        import chinese_calendar
    except ImportError:
        print(f"bangfu-bot: {tell('holidays_update_no_library')}", file=sys.stderr)
        return 1
    path = Path(file) if file else Path(settings.conversations_dir) / holidays.FILE_NAME
    known, unknown = holidays.from_library(wanted, chinese_calendar)
    source = f"chinese-calendar {chinese_calendar.__version__}"
    try:
        before = holidays.load_holidays(path)
        for found in known:
            print(
                tell(
                    "holidays_update_year",
                    year=found.year,
                    off=len(found.days_off),
                    make_up=len(found.make_up_days),
                    source=found.source,
                )
            )
        for year in unknown:
            kept = (
                tell("holidays_update_kept", year=year)
                if before.covers(year)
                else tell("holidays_update_absent")
            )
            print(tell("holidays_update_unknown", year=year, source=source, kept=kept))
        if not known:
            print(f"bangfu-bot: {tell('holidays_update_nothing', source=source)}", file=sys.stderr)
            return 1
        held = holidays.update_file(path, known)
    except holidays.HolidaysInvalid as invalid:
        print(f"bangfu-bot: {invalid}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"bangfu-bot: {path}: {error.strerror}", file=sys.stderr)
        return 1
    print(tell("holidays_update_wrote", path=path, years=holidays.year_ranges(held)))
    missing = holidays.load_holidays(path).missing(this_year)
    if missing is not None:
        print(f"bangfu-bot: warning: {missing}", file=sys.stderr)
    return 0


@asynccontextmanager
async def _engine(settings: Settings) -> AsyncIterator[Any]:
    from bangfu_bot import db

    engine = db.make_engine(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
    try:
        if settings.is_sqlite:
            await db.migrate(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def _client(settings: Settings, engine: Any) -> AsyncIterator[Any]:
    import aiohttp

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.wechat.client import WeChatClient
    from bangfu_bot.wechat.tokens import DatabaseTokenStore

    async with aiohttp.ClientSession() as session:
        yield WeChatClient(
            appid=settings.wechat_appid,
            secret=settings.wechat_secret,
            api_base=settings.wechat_api_base,
            token_store=DatabaseTokenStore(engine, SystemClock()),
            session=session,
            clock=SystemClock(),
            timeout_s=settings.http_timeout_s,
        )


async def menu_push(settings: Settings) -> int:
    """Check conversations/menu.toml and push it (only with real credentials)."""
    import json
    from pathlib import Path

    from bangfu_bot.conversation.menu import MenuInvalid, menu_json
    from bangfu_bot.conversation.router import load_words
    from bangfu_bot.wechat.client import WeChatAPIError

    folder = Path(settings.conversations_dir)
    try:
        menu = menu_json(folder / "menu.toml", load_words(folder / "commands.toml"))
    except (MenuInvalid, OSError) as error:
        print(f"bangfu-bot: {error}", file=sys.stderr)
        return 1
    if not settings.has_credentials or settings.sandbox:
        print(json.dumps(menu, ensure_ascii=False, indent=1))
        print("menu OK; sandbox (no credentials): not pushed")
        return 0
    async with _engine(settings) as engine, _client(settings, engine) as client:
        try:
            await client.create_menu(menu=menu)
        except WeChatAPIError as error:
            print(
                f"bangfu-bot: menu push failed: errcode {error.errcode} {error.errmsg}",
                file=sys.stderr,
            )
            return 1
    print("menu pushed")
    return 0


async def tags_sync(settings: Settings) -> int:
    """Bring our WeChat tags in step with the roster once and print what changed."""
    from bangfu_bot.broadcasts import tags
    from bangfu_bot.wechat.client import WeChatAPIError

    if not settings.has_credentials or settings.sandbox:
        print(
            "sandbox (no credentials): the fake WeChat lives inside `serve`, which keeps "
            "its tags in step"
        )
        return 0
    async with _engine(settings) as engine, _client(settings, engine) as client:
        try:
            report = await tags.sync(engine, client)
        except WeChatAPIError as error:
            print(
                f"bangfu-bot: tags sync failed: errcode {error.errcode} {error.errmsg}",
                file=sys.stderr,
            )
            return 1
    print(report)
    for name in report.without_room:
        print(f"no room for tag {name}: its notices go by openid list")
    return 0


async def issue_qrcode(settings: Settings, person: str, days: int) -> int:
    """Issue a personal binding QR code (a ticket in the database; WeChat makes the image)."""
    from datetime import timedelta

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.members.service import find_person, issue_binding_ticket
    from bangfu_bot.wechat.client import WeChatAPIError

    if not 1 <= days <= 30:
        print("bangfu-bot: --days must be between 1 and 30 (the platform's limit)", file=sys.stderr)
        return 2
    now = SystemClock().now()
    async with _engine(settings) as engine:
        async with engine.begin() as conn:
            found = await find_person(conn, person)
            if len(found) != 1:
                what = "nobody" if not found else f"{len(found)} people"
                print(
                    f"bangfu-bot: {what} on the roster match {person!r}; use the ID number",
                    file=sys.stderr,
                )
                return 1
            scene = await issue_binding_ticket(
                conn, person_id=found[0], now=now, valid=timedelta(days=days)
            )
        if not settings.has_credentials or settings.sandbox:
            print(f"scene bind:{scene} (sandbox: no QR image without credentials)")
            return 0
        async with _client(settings, engine) as client:
            try:
                answer = await client.create_qrcode(
                    scene_str=f"bind:{scene}", permanent=False, expire_seconds=days * 86400
                )
            except WeChatAPIError as error:
                print(
                    f"bangfu-bot: QR code failed: errcode {error.errcode} {error.errmsg}",
                    file=sys.stderr,
                )
                return 1
    print(f"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={answer['ticket']}")
    return 0


async def import_members(
    settings: Settings,
    file: str,
    skip_invalid: bool,
    county: str,
    committee_column: str | None = None,
) -> int:
    """Import the roster; nothing is written if a row is invalid (unless --skip-invalid)."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.members.roster import RosterError, import_roster

    now = SystemClock().now()
    async with _engine(settings) as engine:
        try:
            report = await import_roster(
                engine,
                Path(file),
                county_name=county,
                skip_invalid=skip_invalid,
                now=now,
                committee_column=committee_column,
            )
        except (RosterError, OSError) as error:
            print(f"bangfu-bot: {file}: {error}", file=sys.stderr)
            return 1
        for line in report.lines():
            print(line)
        if not report.refused and (report.updated or report.created):
            # People moved, came or changed roles: the to-dos follow their authority.
            await _hand_over(engine, now)
    return 1 if report.refused else 0


async def import_roles(settings: Settings, file: str, skip_invalid: bool) -> int:
    """Set roles from a short list; nothing is written if a line is invalid (unless
    --skip-invalid); the to-dos then follow, as after `import members`."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.members.roles import import_roles as set_roles
    from bangfu_bot.members.tables import RosterError

    now = SystemClock().now()
    async with _engine(settings) as engine:
        try:
            report = await set_roles(engine, Path(file), skip_invalid=skip_invalid, now=now)
        except (RosterError, OSError) as error:
            print(f"bangfu-bot: {file}: {error}", file=sys.stderr)
            return 1
        for line in report.lines():
            print(line)
        if report.changed:
            await _hand_over(engine, now)
    return 1 if report.refused else 0


async def _hand_over(engine: Any, now: Any) -> None:
    """After the roster or the roles changed: close and hand over to-dos, and say so."""
    from bangfu_bot.handover import hand_over
    from bangfu_bot.texts import speaker

    say = speaker("bangfu_bot.members")
    async with engine.begin() as conn:
        done = await hand_over(conn, now=now)
    if done.closed or done.handed:
        print(say("import_handover", closed=done.closed, handed=done.handed))
    for step in done.unowned:
        print(f"bangfu-bot: {say('import_unowned', step=step)}", file=sys.stderr)


async def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the ledger or audit workbook, or print a notice."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.ledger.export import export_audit, export_ledger

    async with _engine(settings) as engine:
        if args.export_command == "notice":
            return await _print_notice(engine, args.case)
        if args.export_command == "minutes":
            return await _print_minutes(engine, args.case, settings)
        out = Path(args.out)
        try:
            if args.export_command == "ledger":
                today = SystemClock().now().astimezone(settings.tz).date()
                result = await export_ledger(
                    engine, year=args.year, out=out, township=args.township, today=today
                )
                print(f"{result.rows} ledger rows, {len(result.townships)} townships -> {out}")
            else:
                rows = await export_audit(engine, out=out, tz=settings.tz)
                print(f"{rows} audit rows -> {out}")
        except (ValueError, OSError) as error:
            print(f"bangfu-bot: {error}", file=sys.stderr)
            return 1
    return 0


async def _print_notice(engine: Any, case_id: int) -> int:
    from sqlalchemy import select

    from bangfu_bot.cases.models import public_notices

    async with engine.connect() as conn:
        text = (
            await conn.execute(
                select(public_notices.c.text).where(public_notices.c.case_id == case_id)
            )
        ).scalar()
    if text is None:
        print(f"bangfu-bot: case {case_id} has no public notice", file=sys.stderr)
        return 1
    print(text)
    return 0


async def _print_minutes(engine: Any, case_id: int, settings: Settings) -> int:
    from bangfu_bot.cases.procedure import minutes_text

    async with engine.connect() as conn:
        text = await minutes_text(
            conn, case_id=case_id, rules=ProcedureRules.from_settings(settings)
        )
    if text is None:
        print(f"bangfu-bot: case {case_id} has no evaluation record", file=sys.stderr)
        return 1
    print(text)
    return 0


async def broadcast_command(settings: Settings, args: argparse.Namespace) -> int:
    """Queue a notice; the running bot's dispatcher makes the mass calls."""
    from bangfu_bot.broadcasts.service import AudienceError, create, describe
    from bangfu_bot.clock import SystemClock

    async with _engine(settings) as engine:
        try:
            async with engine.begin() as conn:
                broadcast_id, count = await create(
                    conn,
                    author=None,
                    text=args.text,
                    audience=args.audience,
                    training=args.training,
                    now=SystemClock().now(),
                    tz=settings.tz,
                    channel="cli",
                )
        except AudienceError as error:
            print(f"bangfu-bot: {error.message}", file=sys.stderr)
            return 1
    print(
        f"broadcast {broadcast_id} queued for {count} people ({describe(args.audience)}); "
        "the running bot sends it"
    )
    return 0


async def outbox_status(settings: Settings) -> int:
    """Counts of outbox rows by status, and how the latest notice went."""
    from bangfu_bot.broadcasts.service import latest_report
    from bangfu_bot.notify.outbox import status_counts

    async with _engine(settings) as engine, engine.connect() as conn:
        counts = await status_counts(conn)
        latest = await latest_report(conn, settings.tz)
    # unknown: nobody asked to make sure; unknown_escalated: a secretary was (a to-do)
    for status in (
        "pending",
        "sending",
        "sent",
        "delivered",
        "escalated",
        "undeliverable",
        "unknown",
        "unknown_escalated",
        "failed",
    ):
        print(f"{status:18} {counts.get(status, 0)}")
    if latest:
        print(latest)
    return 0


async def visits_command(settings: Settings, args: argparse.Namespace) -> int:
    """Open a visit campaign, or show a campaign's progress."""
    from bangfu_bot.clock import SystemClock
    from bangfu_bot.visits.cli import run

    async with _engine(settings) as engine:
        return await run(engine, args, now=SystemClock().now(), tz=settings.tz)


async def fund_command(settings: Settings, args: argparse.Namespace) -> int:
    """Record a contribution, or write the yearly fund report."""
    from datetime import date
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.common.fields import FieldError, parse_money_fen
    from bangfu_bot.fund.service import FundError, contribute
    from bangfu_bot.reports.fund import export_fund_report

    now = SystemClock().now()
    async with _engine(settings) as engine:
        if args.fund_command == "report":
            report = await export_fund_report(
                engine, year=args.year, out=Path(args.out), today=now.astimezone(settings.tz).date()
            )
            print(
                f"{report.movements} movements -> {report.path}; reconciliation "
                f"{report.reconciliation_fen / 100:.2f}"
            )
            return 0 if report.reconciliation_fen == 0 else 1
        try:
            amount = parse_money_fen(args.amount)
            on = date.fromisoformat(args.date)
            async with engine.begin() as conn:
                await contribute(
                    conn,
                    actor=None,
                    amount_fen=amount,
                    source=args.source,
                    document=args.document,
                    occurred_on=on,
                    now=now,
                )
        except FieldError as error:
            print(f"bangfu-bot: --amount: {error.message}", file=sys.stderr)
            return 2
        except FundError as error:
            print(f"bangfu-bot: {error.message}", file=sys.stderr)
            return 1
        except ValueError:
            print(f"bangfu-bot: --date: expected YYYY-MM-DD, got {args.date!r}", file=sys.stderr)
            return 2
    print(f"recorded {amount / 100:.2f} yuan from {args.source}")
    return 0


async def plan_command(settings: Settings, args: argparse.Namespace) -> int:
    """Set a year's plan from a TOML file, or print it."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.outcomes.service import PlanInvalid, parse_plan, plan_for, plan_text, set_plan

    async with _engine(settings) as engine:
        if args.plan_command == "show":
            async with engine.connect() as conn:
                print(plan_text(await plan_for(conn, args.year), args.year))
            return 0
        try:
            text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
            plan = parse_plan(text, year=args.year)
        except OSError as error:
            print(f"bangfu-bot: {args.file}: {error.strerror}", file=sys.stderr)
            return 2
        except PlanInvalid as error:
            print(f"bangfu-bot: {args.file}: {error.message}", file=sys.stderr)
            return 2
        async with engine.begin() as conn:
            await set_plan(conn, plan=plan, actor=None, channel="cli", now=SystemClock().now())
            print(plan_text(await plan_for(conn, args.year), args.year))
    return 0


async def report_command(settings: Settings, args: argparse.Namespace) -> int:
    """Write the annual report (PDF, DOCX or XLSX)."""
    from pathlib import Path

    from bangfu_bot.clock import SystemClock
    from bangfu_bot.reports.annual import ReportError, export_annual_report

    today = SystemClock().now().astimezone(settings.tz).date()
    async with _engine(settings) as engine:
        try:
            report = await export_annual_report(
                engine,
                year=args.year,
                out=Path(args.out),
                today=today,
                font=settings.report_font or None,  # BANGFU_REPORT_FONT
            )
        except ReportError as error:
            print(f"bangfu-bot: {error.message}", file=sys.stderr)
            return 1
    print(f"{len(report.sections)} sections -> {args.out}")
    return 0


def show_config(settings: Settings) -> int:
    """Print settings with secrets hidden."""
    hidden = {"wechat_secret", "wechat_aes_key", "wechat_aes_key_previous", "wechat_token"}
    for name, value in vars(settings).items():
        shown = "***" if name in hidden and value else value
        if name == "database_url":
            shown = _safe_url(str(value))
        if isinstance(value, frozenset):
            shown = ",".join(sorted(value))
        print(f"{name} = {shown}")
    from bangfu_bot.common.holidays import HolidaysInvalid

    try:
        _holidays_status(settings)
    except HolidaysInvalid as invalid:
        print(f"bangfu-bot: {invalid}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
