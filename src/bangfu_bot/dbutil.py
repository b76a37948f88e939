"""Small portable SQL helpers for SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam
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


def one_of(column: Any, name: str, dialect_name: str) -> ColumnElement[bool]:
    """`column` is in the list bound as `name`.

    On PostgreSQL, one array parameter (`= ANY(:name)`): the statement's text is the same
    whatever the list's length, so asyncpg prepares it once. An expanding IN renders a new
    text for every length, and the batches of the message path come in every length up to
    their cap (64): four such queries can need more prepared statements than asyncpg's
    cache holds (100), and each miss costs a prepare round trip and a plan. SQLite has no
    arrays: there, the expanding IN.
    """
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]
