"""The scheduler's own bookkeeping: when each job last ran and last succeeded."""

from sqlalchemy import Column, String, Table

from bangfu_bot.db import UtcDateTime, metadata

job_runs = Table(
    "job_runs",
    metadata,
    Column("job_id", String(80), primary_key=True),
    Column("last_started_at", UtcDateTime, nullable=True),
    Column("last_success_at", UtcDateTime, nullable=True),
    comment="When each scheduled job last ran and last succeeded",
)
