"""Small portable SQL helpers for SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignore(conn: AsyncConnection, table: Table, key: list[str]) -> Any:
    """An INSERT that does nothing when a row with the same unique `key` exists."""
    return _insert_ignore(conn.dialect.name, table, tuple(key))


def upsert(conn: AsyncConnection, table: Table, key: list[str], update: list[str]) -> Any:
    """An INSERT that updates `update` columns when the unique `key` exists."""
    return _upsert(conn.dialect.name, table, tuple(key), tuple(update))


# Statements are immutable, so each shape is built once: building one costs more CPU than
# executing it from SQLAlchemy's compiled cache, and these run on every message.
@lru_cache(maxsize=256)
def _insert_ignore(dialect_name: str, table: Table, key: tuple[str, ...]) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(key))


@lru_cache(maxsize=256)
def _upsert(dialect_name: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]
            ) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in update}
    )
