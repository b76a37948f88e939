"""`bangfu-bot visits open` and `visits status`, through the parser they add."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from bangfu_bot.visits import cli
from bangfu_bot.visits.models import visit_campaigns
from tests.visits.conftest import OPENED, TZ, local, make_county


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bangfu-bot")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["visits", *argv])


async def test_open_and_status(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    await make_county(engine)
    args = parse(
        "open",
        "--occasion",
        "spring",
        "--cash",
        "3百",
        "--goods",
        "米一袋",
        "--reminders",
        "10,5",
        "--allow-late",
    )
    assert await cli.run(engine, args, now=OPENED, tz=TZ) == 0
    out = capsys.readouterr().out
    assert "campaign 1 opened: 2027年春节走访慰问, on 2027-02-06, visits by 2027-02-05" in out
    assert "31 households (1 pre-1949 without a ledger entry), 3 assignees" in out
    async with engine.connect() as conn:
        campaign = (await conn.execute(select(visit_campaigns))).one()
    assert (campaign.cash_fen, campaign.reminder_days, campaign.late_reports) == (
        30000,
        [10, 5],
        True,
    )
    assert await cli.run(engine, parse("status"), now=local(date(2027, 1, 10)), tz=TZ) == 0
    out = capsys.readouterr().out
    assert "campaign 1: 2027年春节走访慰问 (spring_festival 2027-02-06, deadline 2027-02-05)" in out
    assert "桃源村党支部" in out and "0/11" in out
    assert out.splitlines()[-1].split() == ["total", "0/31", "0.00"]
    # The same festival again is refused with the reason.
    assert await cli.run(engine, parse("open", "--occasion", "spring"), now=OPENED, tz=TZ) == 1
    assert "已经开展了" in capsys.readouterr().err


async def test_a_custom_campaign_and_bad_arguments(
    engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_county(engine)
    assert (
        await cli.run(
            engine, parse("open", "--occasion", "custom", "--name", "防汛慰问"), now=OPENED, tz=TZ
        )
        == 1
    )
    assert "名称和日期" in capsys.readouterr().err
    assert (
        await cli.run(
            engine, parse("open", "--occasion", "july1", "--cash", "五块钱多"), now=OPENED, tz=TZ
        )
        == 2
    )
    assert "--cash" in capsys.readouterr().err
    assert (
        await cli.run(
            engine, parse("open", "--occasion", "july1", "--reminders", "7,x"), now=OPENED, tz=TZ
        )
        == 2
    )
    assert "--reminders" in capsys.readouterr().err
    assert (
        await cli.run(
            engine,
            parse("open", "--occasion", "custom", "--name", "防汛慰问", "--date", "2027-06-20"),
            now=OPENED,
            tz=TZ,
        )
        == 0
    )
    assert "防汛慰问, on 2027-06-20, visits by 2027-06-19" in capsys.readouterr().out
    assert await cli.run(engine, parse("status", "--campaign", "9"), now=OPENED, tz=TZ) == 1
    assert "no campaign 9" in capsys.readouterr().err


async def test_status_without_campaigns(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli.run(engine, parse("status"), now=OPENED, tz=TZ) == 1
    assert "no visit campaigns" in capsys.readouterr().err
