"""Engine factory, SQLite pragmas, migrations and the shared MetaData.

Instants are stored as timezone-aware UTC; `UtcDateTime` makes SQLite (which has no time
zones) hand them back aware, so code never compares naive with aware datetimes.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# Primary keys: 64-bit on PostgreSQL; INTEGER on SQLite, where only that autoincrements.
Id = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite a timestamp is text, and SQLAlchemy's DATETIME formats and parses it in
    # Python, value by value, behind the decorator's own step: two calls and a %-format per
    # value, several values per message. One call each way, to the same text, with the C
    # isoformat/fromisoformat (tests/test_db.py checks both against SQLAlchemy's own).
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None:
                    raise ValueError("naive datetime given to a UTC column")
                value = value.astimezone(UTC)
            # "YYYY-MM-DD HH:MM:SS.ffffff" (26 characters) without the "+00:00"
            return value.isoformat(" ", "microseconds")[:26]

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return from_text


def json_loads(text: str | bytes) -> Any:
    """A JSON column's value: orjson (several times faster: the ledger's 100,000 households
    took seconds to decode), or the standard library for what orjson refuses and `json`
    accepts (NaN, integers past 64 bits), so every stored value still reads back."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, *, busy_timeout_ms: int = 2000, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, foreign keys and a busy timeout.

    SQL parameters are hidden from error messages: they can hold ID numbers, phone
    numbers and message bodies, and errors end up in logs.
    """
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_deserializer", json_loads)
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            url, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


async def savepoint(conn: AsyncConnection) -> AsyncTransaction:
    """A savepoint in the connection's transaction, for one act that must write all or
    nothing.

    On SQLite the driver begins the real transaction only at the first write, so a
    savepoint taken before any write would begin it itself, and its release would commit
    on the spot, apart from the rest of the unit. A write that changes nothing makes the
    driver begin it first. (Emitting BEGIN for every transaction instead, SQLAlchemy's
    usual advice, turns each read-then-write into a snapshot upgrade that fails at once
    when another connection committed meanwhile.)"""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("DELETE FROM job_runs WHERE 0")
    return await conn.begin_nested()


async def refresh_statistics(engine: AsyncEngine) -> None:
    """Have the planner count the tables again, after a bulk load.

    Without it PostgreSQL plans the freshly loaded roster as an empty table until autovacuum
    gets to it: a member's lookup by openid became a scan of every binding, planned anew
    for every batch of pushes (1.5 ms a batch with 2,000 members; it grows with the roster).
    SQLite is left alone: it gathers no statistics by itself, so every plan it runs was
    chosen, and measured, without them.
    """
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE")


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    here = Path(__file__).parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(here))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Run the Alembic migrations up to head on this engine."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


# PostgreSQL SQLSTATEs that mean "the database is away or cannot take writes now", not a
# bug: connection exceptions (08), insufficient resources such as a full disk (53), the
# server shutting down or starting up (57P01–57P05), a read-only transaction (25006),
# system errors (58) and "database is not accepting connections" (55000 with
# ALLOW_CONNECTIONS off).
_PG_AWAY = ("08", "53", "57P", "58", "25006", "55000")
# SQLite's words for the same.
_SQLITE_AWAY = (
    "database is locked",
    "unable to open database file",
    "readonly database",
    "disk i/o error",
    "database or disk is full",
    "database is busy",
)


def unavailable(error: BaseException) -> str | None:
    """Why the database cannot be used now (a short cause for one log line), or None when
    the error is not an outage. Both drivers' ways of saying it: connection refused or
    dropped, starting up, shutting down, not accepting connections, disk full, read-only,
    locked."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return "connection lost"
        code = str(getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", "") or "")
        if code and code.startswith(_PG_AWAY):
            return f"SQLSTATE {code}"
        words = str(error.orig).lower()
        found = next((phrase for phrase in _SQLITE_AWAY if phrase in words), None)
        if found:
            return found
        if isinstance(error, sa_exc.InterfaceError):
            return type(error.orig).__name__
    if isinstance(error, sa_exc.TimeoutError):
        return "connection pool timeout"
    if isinstance(error, ConnectionError | TimeoutError):
        return type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        return error.strerror or type(error).__name__
    return None


class Availability:
    """The database's state as the message path sees it, logged once per change with a
    count, rather than once (or with a traceback) per push while it is away."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cause: str | None = None
        self._since = 0.0
        self._count = 0

    @property
    def away(self) -> str | None:
        """The cause while the database is away, else None."""
        return self._cause

    def failed(self, cause: str) -> None:
        """One more push could not use the database."""
        self._count += 1
        if self._cause is None:
            self._cause, self._since = cause, time.monotonic()
            log.warning(
                "%s: database unavailable (%s); pushes are journaled and answered when it returns",
                self._name,
                cause,
            )

    def worked(self) -> None:
        """The database took a unit of work again."""
        if self._cause is not None:
            log.warning(
                "%s: database back after %.0f s; %d push(es) waited for it",
                self._name,
                time.monotonic() - self._since,
                self._count,
            )
            self._cause, self._count = None, 0


async def writable(engine: AsyncEngine) -> None:
    """Raise unless the database takes a write now (a write statement that changes nothing,
    rolled back): reachable is not enough when its file or server has gone read-only."""
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(text("DELETE FROM job_runs WHERE 1 = 0"))
        await transaction.rollback()


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
