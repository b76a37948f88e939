"""The desk's logins: QR scenes, six-digit codes, sessions and the cookie key (issue 16).

Nothing here is deleted: a scene used, a code spent or dead, a session ended are rows with
the time and the reason, so a login can be traced afterwards.
"""

from sqlalchemy import JSON, Column, ForeignKey, Integer, LargeBinary, String, Table

from bangfu_bot.db import Id, UtcDateTime, metadata

desk_logins = Table(
    "desk_logins",
    metadata,
    Column("scene", String(32), primary_key=True, comment="the random part of login:<scene>"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, comment="the QR code's end (5 minutes)"),
    Column(
        "person_id",
        Id,
        ForeignKey("people.id"),
        nullable=True,
        comment="who scanned it (set once, by the bot)",
    ),
    Column("binding_id", Id, ForeignKey("bindings.id"), nullable=True),
    Column("scanned_at", UtcDateTime, nullable=True),
    Column(
        "claimed_at",
        UtcDateTime,
        nullable=True,
        comment="when the waiting page turned it into a session (once)",
    ),
    comment="Desk login QR scenes: one page, one scan, one session",
)

desk_codes = Table(
    "desk_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("binding_id", Id, ForeignKey("bindings.id"), nullable=False),
    Column("code", String(6), nullable=False, comment="six digits, sent only to the person"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("tries", Integer, nullable=False, comment="wrong codes typed against it"),
    Column("used_at", UtcDateTime, nullable=True),
    Column("dead_at", UtcDateTime, nullable=True, comment="five wrong tries, or a newer code"),
    comment="Desk login codes (登录) for accounts without parametric QR codes",
)

desk_sessions = Table(
    "desk_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "token_hash",
        String(64),
        nullable=False,
        unique=True,
        comment="SHA-256 of the cookie's session token (the token itself is not kept)",
    ),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column(
        "binding_id",
        Id,
        ForeignKey("bindings.id"),
        nullable=False,
        comment="the WeChat binding that logged in: the session ends with it",
    ),
    Column("csrf", String(64), nullable=False, comment="the token every form posts back"),
    Column("via", String(8), nullable=False, comment="qrcode | code"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end_reason", String(16), nullable=True, comment="logout | idle | unbound | role"),
    comment="Desk sessions, server side: logging out ends every session of the person",
)

desk_keys = Table(
    "desk_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(100), nullable=False, comment="a Fernet key, made once"),
    Column("created_at", UtcDateTime, nullable=False),
    comment="The key the desk's cookies are encrypted with, shared by every process",
)

roster_uploads = Table(
    "roster_uploads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, comment="who uploaded it"),
    Column("filename", String(200), nullable=False, comment="the name the browser sent"),
    Column("sha256", String(64), nullable=False, comment="of the bytes below"),
    Column(
        "data",
        LargeBinary,
        nullable=False,
        comment="the file as checked: the confirm imports exactly these bytes",
    ),
    Column("row_count", Integer, nullable=False),
    Column("valid_count", Integer, nullable=False),
    Column(
        "new_count", Integer, nullable=False, comment="valid rows of people not yet on the roster"
    ),
    Column("rejected", JSON, nullable=False, comment="[[line, reason], ...] as the check found"),
    Column("uploaded_at", UtcDateTime, nullable=False),
    Column("imported_at", UtcDateTime, nullable=True, comment="confirmed and imported (once)"),
    Column("skipped_invalid", Integer, nullable=True, comment="rows left out at the import"),
    Column("result", String(300), nullable=True, comment="the importer's summary line"),
    comment="Rosters uploaded on the desk (名册), checked before anything is written",
)
