"""The `bangfu-bot` command: serve, db upgrade, ... Settings errors exit with status 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bangfu_bot import __version__
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
    database_commands.add_parser("upgrade", help="run the Alembic migrations on BANGFU_DATABASE_URL")
    commands.add_parser("config", help="print the effective settings (secrets hidden)")
    flows = commands.add_parser("flows", help="the dialogues in conversations/")
    flows_commands = flows.add_subparsers(dest="flows_command", required=True)
    flows_commands.add_parser("check", help="check every flow file; problems with file:line")
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
    if args.command == "flows":
        return flows_check(settings)
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

    from bangfu_bot.app import create_app

    from bangfu_bot.conversation.flows import FlowsInvalid

    try:
        app = create_app(settings)
    except FlowsInvalid as invalid:
        # Refuse to start rather than serve a half-working dialogue.
        for problem in invalid.problems:
            print(f"bangfu-bot: {problem}", file=sys.stderr)
        return 2
    _announce(settings)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    except OSError as error:
        print(f"bangfu-bot: cannot serve on {settings.host}:{settings.port}: {error.strerror}",
              file=sys.stderr)
        return 1
    return 0


def _announce(settings: Settings) -> None:
    where = f"http://{settings.host}:{settings.port}"
    print(f"bangfu-bot {__version__} serving {where}/wechat (health {where}/healthz, "
          f"metrics {where}/metrics)", flush=True)
    print(f"store: {_safe_url(settings.database_url)}", flush=True)
    if settings.sandbox:
        print(f"sandbox WeChat (no credentials set): token {settings.wechat_token!r}, "
              f"appid {settings.wechat_appid!r}; loopback only", flush=True)
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
        print(f"bangfu-bot: db upgrade failed on {_safe_url(settings.database_url)}: "
              f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
              file=sys.stderr)
        return 1
    print(f"database at head: {_safe_url(settings.database_url)}")
    return 0


def flows_check(settings: Settings) -> int:
    """Check every flow file; print problems as file:line: message."""
    from datetime import timedelta

    from bangfu_bot.conversation.flows import FlowsInvalid
    from bangfu_bot.conversation.router import ChatBot

    try:
        bot = ChatBot.from_directory(settings.conversations_dir, tz=settings.tz,
                                     expiry=timedelta(hours=settings.flow_expiry_h))
    except FlowsInvalid as invalid:
        for problem in invalid.problems:
            print(problem, file=sys.stderr)
        return 1
    except (OSError, KeyError, ValueError) as error:
        print(f"bangfu-bot: {settings.conversations_dir}: {error}", file=sys.stderr)
        return 1
    names = ", ".join(sorted(bot.engine.flows))
    print(f"{len(bot.engine.flows)} flows OK ({names}) in {settings.conversations_dir}")
    return 0


def show_config(settings: Settings) -> int:
    """Print settings with secrets hidden."""
    hidden = {"wechat_secret", "wechat_aes_key", "wechat_aes_key_previous", "wechat_token"}
    for name, value in vars(settings).items():
        shown = "***" if name in hidden and value else value
        if name == "database_url":
            shown = _safe_url(str(value))
        print(f"{name} = {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
