"""The store: migrations by command, SQLite pragmas, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from bangfu_bot import db
from bangfu_bot.cli import main
from bangfu_bot.wechat.client import StoredToken
from bangfu_bot.wechat.tokens import DatabaseTokenStore


def test_db_upgrade_command_migrates_any_url(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BANGFU_DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    assert "database at head" in capsys.readouterr().out


def test_db_upgrade_on_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BANGFU_DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:9/none")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bangfu-bot: db upgrade failed") and "\n" not in err
    assert "pw@" not in err


async def test_migrations_create_every_table(database_url: str) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        if engine.dialect.name == "sqlite":
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            assert mode == "wal" and keys == 1
    await engine.dispose()
    assert {"inbound_messages", "outbox", "outbox_attempts", "wechat_tokens",
            "wechat_users", "alembic_version"} <= tables


async def test_token_is_shared_through_the_store_in_utc(database_url: str) -> None:
    engine = db.make_engine(database_url)
    await db.migrate(engine)
    clock_now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    class Clock:
        def now(self) -> datetime:
            return clock_now

    store = DatabaseTokenStore(engine, Clock())
    beijing = timezone(timedelta(hours=8))
    await store.save("wxA", StoredToken("tok-1", datetime(2026, 11, 30, 22, 0, tzinfo=beijing)))
    await store.save("wxA", StoredToken("tok-2", datetime(2026, 11, 30, 22, 0, tzinfo=beijing)))
    loaded = await store.load("wxA")
    other_account = await store.load("wxB")
    await engine.dispose()
    assert loaded is not None and loaded.token == "tok-2"
    assert loaded.expires_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    assert other_account is None


async def test_errors_never_carry_sql_parameters(database_url: str) -> None:
    """An error (which ends up in a log) must not show the ID number it was about."""
    from datetime import UTC, datetime

    from sqlalchemy import exc, insert

    from bangfu_bot.members.models import people

    engine = db.make_engine(database_url)
    await db.migrate(engine)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    row = dict(name="王德福", id_number="520102195603142319", active=True, created_at=now,
               updated_at=now)
    with pytest.raises(exc.IntegrityError) as error:
        async with engine.begin() as conn:
            await conn.execute(insert(people).values(**row))
            await conn.execute(insert(people).values(**row))
    await engine.dispose()
    assert "520102195603142319" not in str(error.value)


async def test_migrations_match_the_models(database_url: str) -> None:
    # A model change without its migration would pass on a fresh test store and fail on a
    # county's database: autogenerate must find nothing to do.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bangfu_bot.models import metadata

    engine = db.make_engine(database_url)
    await db.migrate(engine)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(
            MigrationContext.configure(sync, opts={"compare_type": False}), metadata))
    await engine.dispose()
    assert diff == []


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),
                           timezones=st.just(UTC)))
def test_sqlite_timestamps_read_and_write_as_sqlalchemy_would(moment: datetime) -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    ours = db.UtcDateTime()
    theirs = sqlite.DATETIME()
    naive = moment.replace(tzinfo=None)
    stored = ours.bind_processor(dialect)(moment)
    assert stored == theirs.bind_processor(dialect)(naive)
    assert ours.result_processor(dialect, None)(stored) == moment
    assert theirs.result_processor(dialect, None)(stored) == naive


def test_sqlite_timestamps_refuse_naive_and_read_other_text_forms() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    with pytest.raises(ValueError, match="naive"):
        db.UtcDateTime().bind_processor(dialect)(datetime(2026, 12, 1))
    write = db.UtcDateTime().bind_processor(dialect)
    beijing = timezone(timedelta(hours=8))
    assert write(datetime(2026, 12, 1, 13, tzinfo=beijing)) == "2026-12-01 05:00:00.000000"
    read = db.UtcDateTime().result_processor(dialect, None)
    assert read("2026-12-01 05:00:00") == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert read("2026-12-01 13:00:00+08:00") == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert read(None) is None
