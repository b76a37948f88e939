"""`bangfu-bot visits open …` and `bangfu-bot visits status`: the department's command line."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bangfu_bot.common.fields import FieldError, parse_money_fen
from bangfu_bot.visits import service
from bangfu_bot.visits.enums import Occasion

OCCASIONS = {
    "spring": Occasion.SPRING_FESTIVAL,
    "july1": Occasion.JULY_FIRST,
    "double9": Occasion.DOUBLE_NINTH,
    "custom": Occasion.CUSTOM,
}


def add_parser(commands: Any) -> None:
    """Add `visits open` and `visits status` to the bangfu-bot subcommands."""
    visits = commands.add_parser("visits", help="consolation-visit campaigns (走访慰问)")
    visit_commands = visits.add_subparsers(dest="visits_command", required=True)
    opener = visit_commands.add_parser(
        "open", help="open a campaign: build the list from the ledger and hand it out"
    )
    opener.add_argument(
        "--occasion",
        required=True,
        choices=sorted(OCCASIONS),
        help="spring (春节), july1 (七一), double9 (重阳) or custom",
    )
    opener.add_argument("--name", help="custom occasions: the campaign's name")
    opener.add_argument(
        "--date", type=date.fromisoformat, help="custom occasions: the day (YYYY-MM-DD)"
    )
    opener.add_argument(
        "--deadline",
        type=date.fromisoformat,
        help="visits done by (YYYY-MM-DD); default the day before",
    )
    opener.add_argument("--cash", default="0", help="cash per household in yuan, e.g. 500")
    # stays in Python: the help speaks English; the Chinese is an example of what to type
    opener.add_argument("--goods", help="goods per household, e.g. 米一袋、油一桶")
    opener.add_argument(
        "--reminders", default="14,7,3", help="days before the deadline to remind (default 14,7,3)"
    )
    opener.add_argument(
        "--allow-late", action="store_true", help="accept reports after the deadline"
    )
    opener.add_argument("--ledger-year", type=int, help="the ledger year (default this year)")
    status = visit_commands.add_parser("status", help="progress per township and branch")
    status.add_argument("--campaign", type=int, help="campaign id (default the current one)")


def _reminder_days(text: str) -> tuple[int, ...]:
    try:
        days = tuple(sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True))
    except ValueError:
        raise ValueError(f"--reminders: expected days like 14,7,3, got {text!r}") from None
    if any(not 0 <= day <= 366 for day in days):
        raise ValueError(f"--reminders: days must be between 0 and 366, got {text!r}")
    return days


async def run(engine: Any, args: argparse.Namespace, *, now: datetime, tz: ZoneInfo) -> int:
    """Run a `visits` subcommand; 0 on success, 1 when refused, 2 on a bad argument."""
    if args.visits_command == "status":
        return await _status(engine, args.campaign, today=now.astimezone(tz).date())
    try:
        cash_fen = parse_money_fen(args.cash)
        rules = service.Rules(
            reminder_days=_reminder_days(args.reminders), late_reports=args.allow_late
        )
    except FieldError as error:
        print(f"bangfu-bot: --cash: {error.message}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"bangfu-bot: {error}", file=sys.stderr)
        return 2
    try:
        async with engine.begin() as conn:
            opened = await service.open_campaign(
                conn,
                occasion=OCCASIONS[args.occasion],
                now=now,
                tz=tz,
                cash_fen=cash_fen,
                goods=args.goods,
                occasion_on=args.date,
                name=args.name,
                deadline=args.deadline,
                ledger_year=args.ledger_year,
                rules=rules,
            )
    except service.VisitRefused as refused:
        print(f"bangfu-bot: {refused.message}", file=sys.stderr)
        return 1
    print(
        f"campaign {opened.campaign_id} opened: {opened.name}, on {opened.occasion_on}, "
        f"visits by {opened.deadline}; {opened.households} households "
        f"({opened.pre_1949} pre-1949 without a ledger entry), {opened.assignees} assignees, "
        f"{opened.unassigned} unassigned"
    )
    return 0


async def _status(engine: Any, campaign_id: int | None, *, today: date) -> int:
    async with engine.connect() as conn:
        campaign = (
            await service.campaign_row(conn, campaign_id)
            if campaign_id is not None
            else await service.current_campaign(conn, today)
        )
        if campaign is None:
            print(
                "no visit campaigns"
                if campaign_id is None
                else f"bangfu-bot: no campaign {campaign_id}",
                file=sys.stderr,
            )
            return 1
        rows = await service.progress(conn, campaign.id)
        others = [row for row in await service.campaigns(conn) if row.id != campaign.id]
    print(
        f"campaign {campaign.id}: {campaign.name} ({campaign.occasion} {campaign.occasion_on}, "
        f"deadline {campaign.deadline})"
    )
    print(f"{'township':14} {'branch':16} {'visited':>9} {'cash (yuan)':>12}")
    for row in rows:
        print(
            f"{row.township:14} {row.branch:16} {row.visited:>4}/{row.households:<4} "
            f"{row.cash_fen / 100:>12.2f}"
        )
    visited = sum(row.visited for row in rows)
    households = sum(row.households for row in rows)
    cash = sum(row.cash_fen for row in rows)
    print(f"{'total':31} {visited:>4}/{households:<4} {cash / 100:>12.2f}")
    if others:
        print("other campaigns: " + ", ".join(f"{row.id} {row.name}" for row in others[:10]))
    return 0
