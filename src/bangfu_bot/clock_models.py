"""Where the sandbox clock stands, kept in the database so that it survives a restart."""

from sqlalchemy import BigInteger, Column, Integer, Table

from bangfu_bot.db import UtcDateTime, metadata

sandbox_clock = Table(
    "sandbox_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="always 1: one clock"),
    Column(
        "offset_us",
        BigInteger,
        nullable=False,
        comment="how far the sandbox clock is ahead of real time, in microseconds",
    ),
    Column("moved_at", UtcDateTime, nullable=False, comment="real time of the last move"),
    comment="The sandbox clock's offset from real time (sandbox mode only)",
)
