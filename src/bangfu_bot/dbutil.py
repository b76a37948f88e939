"""Small portable SQL helpers for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Row,
    String,
    Table,
    Text,
    any_,
    bindparam,
)
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
def _upsert(dialect_name: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in update}
    )


# --- IN lists of many values ----------------------------------------------------------------
# An expanding IN renders its list anew on every call and is a new statement, for
# SQLAlchemy's cache and asyncpg's alike, for every length. So on PostgreSQL a list is bound
# as one array (`= ANY`): one statement whatever the length, and planned like one value (a
# list of 64 parameters cost PostgreSQL twice the CPU a message on the message path). SQLite
# has no arrays: there a list is bound as a fixed list of parameters whose length is a power
# of two, the last value repeated, so a handful of statements serve every length.

# Values per IN list: far under the 32,766 bound parameters of SQLite 3.32+ and asyncpg's
# 32,767; 512 where the driver takes fewer than 1,000 (SQLite before 3.32).
IN_MAX, IN_MAX_OLD_SQLITE = 4_096, 512
IN_NAMES = tuple(f"in_{n}" for n in range(IN_MAX))
AS_ARRAY = 0  # the `size` of a statement that binds the whole list as one array
T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_list(column: ColumnElement[Any], size: int) -> ColumnElement[bool]:
    """`column = ANY(:in_all)` (size AS_ARRAY) or `column IN (:in_0, ..., :in_<size-1>)`,
    for `in_chunks`' parameters. Not an expanding IN, which renders its list anew every
    time (measured: twice the time of the whole check of 80,000 outbox keys)."""
    if size == AS_ARRAY:
        return column == any_(bindparam("in_all", type_=postgresql.ARRAY(_element(column))))
    return column.in_([bindparam(name) for name in IN_NAMES[:size]])


def _element(column: ColumnElement[Any]) -> Any:
    """The array's element type: text for a string column. `varchar = ANY(varchar[])` makes
    PostgreSQL cast the whole array to text[] again for every row it compares (array_map
    was the top of its profile whenever such a filter ran as a scan); text[] needs no cast,
    and the column's index serves it as well."""
    return Text() if isinstance(column.type, String) else column.type


def in_chunks(
    conn: AsyncConnection, values: Sequence[T]
) -> Iterator[tuple[int, Sequence[T], dict[str, Any]]]:
    """`values` in chunks for `in_list`: each chunk's list size (a power of two, so a few
    statements serve every chunk), the chunk, and its parameters, the last value repeated
    to fill the list (a repeat matches nothing more). On PostgreSQL: AS_ARRAY and the chunk."""
    if conn.dialect.name == "postgresql":
        for chunk in chunked(values, IN_MAX):
            yield AS_ARRAY, chunk, {"in_all": list(chunk)}
        return
    most = (
        IN_MAX if conn.dialect.insertmanyvalues_max_parameters > 2 * IN_MAX else IN_MAX_OLD_SQLITE
    )
    for chunk in chunked(values, most):
        size = min(most, max(16, 1 << (len(chunk) - 1).bit_length()))
        padded = [*chunk, *[chunk[-1]] * (size - len(chunk))]
        yield size, chunk, dict(zip(IN_NAMES, padded, strict=False))


async def rows_in(
    conn: AsyncConnection,
    statement: Callable[[int], Executable],
    values: Sequence[Any],
    **params: Any,
) -> list[Row[Any]]:
    """The rows of `statement(size)` (which filters with `in_list(..., size)`) for all
    `values`, chunk by chunk; `params` are its other parameters."""
    rows: list[Row[Any]] = []
    for size, _, bound in in_chunks(conn, values):
        rows += (await conn.execute(statement(size), {**bound, **params})).all()
    return rows


def inserted_id(result: CursorResult[Any]) -> int:
    """The id an INSERT of one row gave it."""
    key = result.inserted_primary_key
    if key is None:
        raise ValueError("the statement inserted no row")
    return int(key[0])
