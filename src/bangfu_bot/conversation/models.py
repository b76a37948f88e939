"""Dialogue state: one row per WeChat user, stored in the transaction of the push."""

from sqlalchemy import JSON, Column, String, Table

from bangfu_bot.db import UtcDateTime, metadata

conversations = Table(
    "conversations",
    metadata,
    Column("openid", String(64), primary_key=True),
    Column("flow", String(40), nullable=True, comment="the flow under way or paused"),
    Column("status", String(16), nullable=False, comment="idle | active | paused"),
    Column("state", JSON, nullable=False, comment="step, answers, history, retries ..."),
    Column("started_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False, comment="last answer: drives expiry"),
    comment="Where each user stands in a dialogue; drafts survive restarts",
)
