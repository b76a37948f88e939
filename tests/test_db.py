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


def test_db_upgrade_command_migrates_any_url(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert {
        "inbound_messages",
        "outbox",
        "outbox_attempts",
        "wechat_tokens",
        "wechat_users",
        "alembic_version",
    } <= tables


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
    row = dict(
        name="王德福", id_number="520102195603142319", active=True, created_at=now, updated_at=now
    )
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
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": False}), metadata
            )
        )
    await engine.dispose()
    assert diff == []


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
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


async def test_migration_0013_gives_each_todo_a_unique_key(database_url: str) -> None:
    """Existing to-dos get `legacy:<id>`; a guarantor call the key the reminder scan wrote it
    with (from the 「（第N期）」 of its text), unless that key is taken. A visit's send pointing
    at a to-do does not stand in the way (SQLite: the table is not rebuilt)."""
    from alembic import command
    from sqlalchemy import exc, insert, select

    from bangfu_bot.loans.models import loans
    from bangfu_bot.todos.models import todos
    from bangfu_bot.visits.models import visit_campaigns, visit_sends
    from tests.factories import make_person

    if database_url.startswith("postgresql"):
        # The PostgreSQL run shares one schema migrated to head for every test; going back
        # to 0012 under them is not possible. The migration's PostgreSQL path is plain DDL.
        pytest.skip("needs a store at revision 0012: SQLite only")
    now = datetime(2026, 12, 9, tzinfo=UTC)
    engine = db.make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(db._alembic_config(sync), "0012"))
    staff, _ = await make_person(engine, now, name="孙丽", branch=None, roles=("department",))
    rows = [
        ("call_member", None, "请联系王德福"),
        ("guarantor_call", "loan", "借款已逾期 31 天，请联系担保方。（第2期）"),
        ("guarantor_call", "loan", "又写了一遍。（第2期）"),  # the same key: taken
        ("guarantor_call", "loan", "没有期数"),
        ("loan_write_off", "loan", "如需核销（第2期）"),
    ]
    async with engine.begin() as conn:
        loan = (
            await conn.execute(
                insert(loans)
                .values(
                    person_id=staff,
                    status="disbursed",
                    amount_fen=500_000,
                    project="养殖",
                    earnings="出栏",
                    schedule_kind="bullet",
                    term_years=1,
                    annual_rate_bp=435,
                    created_at=now,
                    updated_at=now,
                )
                .returning(loans.c.id)
            )
        ).scalar_one()
        ids = [
            (
                await conn.execute(
                    insert(todos)
                    .values(
                        assignee_id=staff,
                        kind=kind,
                        text=text,
                        loan_id=loan if on else None,
                        created_at=now,
                    )
                    .returning(todos.c.id)
                )
            ).scalar_one()
            for kind, on, text in rows
        ]
        campaign = (
            await conn.execute(
                insert(visit_campaigns)
                .values(
                    key="spring",
                    occasion="festival",
                    name="春节走访",
                    occasion_on=now.date(),
                    deadline=now.date(),
                    ledger_year=2026,
                    cash_fen=0,
                    reminder_days=[],
                    late_reports=False,
                    opened_at=now,
                )
                .returning(visit_campaigns.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(visit_sends).values(
                campaign_id=campaign, person_id=staff, what="list", todo_id=ids[0], sent_at=now
            )
        )
    await db.migrate(engine)
    async with engine.connect() as conn:
        keys = (await conn.execute(select(todos.c.key).order_by(todos.c.id))).scalars().all()
    assert keys == [
        f"legacy:{ids[0]}",
        f"loan:{loan}:2:guarantor:{staff}",
        f"legacy:{ids[2]}",
        f"legacy:{ids[3]}",
        f"legacy:{ids[4]}",
    ]
    with pytest.raises(exc.IntegrityError):  # unique
        async with engine.begin() as conn:
            await conn.execute(
                insert(todos).values(
                    assignee_id=staff,
                    kind="call_member",
                    text="再来",
                    created_at=now,
                    key=f"legacy:{ids[0]}",
                )
            )
    await engine.dispose()


def _asyncpg(error: Exception) -> Exception:
    """An asyncpg error as SQLAlchemy's asyncpg dialect hands it up."""
    from sqlalchemy import exc
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    dbapi = dialect.import_dbapi()
    adapted = next(
        dbapi._asyncpg_error_translate[kind]
        for kind in type(error).__mro__
        if kind in dbapi._asyncpg_error_translate
    )(error.args[0], error)
    return exc.DBAPIError.instance("INSERT", None, adapted, dbapi.Error)


def _sqlite(message: str) -> Exception:
    """An SQLite error as SQLAlchemy's aiosqlite dialect hands it up."""
    import sqlite3

    from sqlalchemy import exc

    return exc.DBAPIError.instance("INSERT", None, sqlite3.OperationalError(message), sqlite3.Error)


def _outages() -> list[tuple[str, Exception]]:
    import asyncpg.exceptions as pg

    return [
        ("refused", ConnectionRefusedError(111, "Connection refused")),
        (
            "pg starting up",
            _asyncpg(pg.CannotConnectNowError("the database system is starting up")),
        ),
        ("pg shutting down", _asyncpg(pg.AdminShutdownError("terminating connection"))),
        ("pg crashed", _asyncpg(pg.CrashShutdownError("terminating connection"))),
        (
            "pg not accepting connections",
            _asyncpg(
                pg.ObjectNotInPrerequisiteStateError(
                    'database "bangfu" is not currently accepting connections'
                )
            ),
        ),
        ("pg disk full", _asyncpg(pg.DiskFullError("could not extend file"))),
        ("pg too many connections", _asyncpg(pg.TooManyConnectionsError("too many clients"))),
        (
            "pg read-only",
            _asyncpg(
                pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction")
            ),
        ),
        ("pg connection gone", _asyncpg(pg.ConnectionDoesNotExistError("connection was closed"))),
        ("sqlite disk full", _sqlite("database or disk is full")),
        ("sqlite read-only", _sqlite("attempt to write a readonly database")),
        ("sqlite locked", _sqlite("database is locked")),
        ("sqlite cannot open", _sqlite("unable to open database file")),
        ("sqlite disk i/o", _sqlite("disk I/O error")),
    ]


def _bugs() -> list[tuple[str, Exception]]:
    import asyncpg.exceptions as pg

    return [
        ("pg unique", _asyncpg(pg.UniqueViolationError("duplicate key value"))),
        ("pg no table", _asyncpg(pg.UndefinedTableError('relation "x" does not exist'))),
        ("sqlite no table", _sqlite("no such table: x")),
        ("sqlite syntax", _sqlite('near "SELEC": syntax error')),
        ("python", ValueError("a bug")),
        ("missing file", FileNotFoundError(2, "No such file or directory")),
    ]


def test_every_way_either_driver_says_the_database_is_away_is_an_outage() -> None:
    # Issue 17: refused, starting up, shutting down, not accepting connections, disk full,
    # read-only (and locked) take the journal-and-answer-later path, named in one line.
    for name, error in _outages():
        cause = db.unavailable(error)
        assert cause and "\n" not in cause, name
    for name, error in _bugs():
        assert db.unavailable(error) is None, name


async def test_a_write_the_store_refuses_as_read_only_is_an_outage(database_url: str) -> None:
    """The real driver's error, on either store: a write where only reads are allowed."""
    engine = db.make_engine(database_url)
    try:
        async with engine.connect() as conn:
            read_only = (
                "PRAGMA query_only = 1"
                if conn.dialect.name == "sqlite"
                else "SET SESSION default_transaction_read_only = on"
            )
            # Not a temporary table: PostgreSQL lets a read-only transaction write those.
            await conn.execute(text("DROP TABLE IF EXISTS probe"))
            await conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
            await conn.commit()
            await conn.execute(text("INSERT INTO probe VALUES (1)"))
            await conn.commit()
            with pytest.raises(Exception) as duplicate:
                await conn.execute(text("INSERT INTO probe VALUES (1)"))
            assert db.unavailable(duplicate.value) is None  # a bug, not an outage
            await conn.rollback()
            await conn.execute(text(read_only))
            await conn.commit()
            with pytest.raises(Exception) as refused:
                await conn.execute(text("INSERT INTO probe VALUES (2)"))
            assert db.unavailable(refused.value)
            await conn.rollback()
            await conn.execute(
                text(
                    "PRAGMA query_only = 0"
                    if conn.dialect.name == "sqlite"
                    else "SET SESSION default_transaction_read_only = off"
                )
            )
            await conn.commit()
            await conn.execute(text("DROP TABLE probe"))
            await conn.commit()
    finally:
        await engine.dispose()
