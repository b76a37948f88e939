"""Tables of the platform edge: every push received, the shared token, plain signatures.

`wechat_users` (followers and their message windows) lives with `notify`, which reads it
to choose a channel; it is re-exported here for the edge that writes it.
"""

from sqlalchemy import Column, String, Table, Text

from bangfu_bot.db import Id, UtcDateTime, metadata
from bangfu_bot.notify.models import wechat_users

__all__ = ["inbound_messages", "push_signatures", "wechat_tokens", "wechat_users"]

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "dedupe_key",
        String(200),
        nullable=False,
        unique=True,
        comment="MsgId, or FromUserName|CreateTime|Event|EventKey for events",
    ),
    Column("openid", String(64), nullable=False, index=True, comment="the sender"),
    Column("msg_type", String(32), nullable=False, comment="text, image, event, ..."),
    Column("event", String(64), nullable=True, comment="event name, lower case"),
    Column("created_at", UtcDateTime, nullable=False, comment="the platform's CreateTime"),
    Column("received_at", UtcDateTime, nullable=False, comment="when we first handled it"),
    Column("payload", Text, nullable=False, comment="the decrypted push XML"),
    Column("outcome", String(16), nullable=False, comment="replied | no_reply | failed"),
    Column("reply_text", Text, nullable=True, comment="the answer; retries get it again"),
    comment="Every push handled, exactly once, in the transaction of its effects",
)

wechat_tokens = Table(
    "wechat_tokens",
    metadata,
    Column("appid", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="The access token shared by every process of one account",
)

push_signatures = Table(
    "push_signatures",
    metadata,
    Column(
        "signature",
        String(40),
        primary_key=True,
        comment="sha1 of token, timestamp and nonce: one per push WeChat signs",
    ),
    Column("body_sha256", String(64), nullable=False, comment="the body it was first seen with"),
    Column("seen_at", UtcDateTime, nullable=False, index=True),
    # Shared by processes: a signature reused with another body is a forgery (a plain
    # signature does not cover the body); with the same body it is WeChat's retry.
    comment="Plain-mode signatures seen within the clock-skew window",
)
