"""Small portable SQL helpers for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignore(conn: AsyncConnection, table: Table, key: list[str]) -> Any:
    """An INSERT that does nothing when a row with the same unique `key` exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=key)


def upsert(conn: AsyncConnection, table: Table, key: list[str], update: list[str]) -> Any:
    """An INSERT that updates `update` columns when the unique `key` exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=key, set_={column: statement.excluded[column] for column in update}
    )
