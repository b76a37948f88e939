"""Logging in to the desk with WeChat, without passwords (issue 16).

Two ways, both proving "this browser is in front of that bound official":

- a QR scene: the login page asks WeChat for a temporary QR code carrying `login:<scene>`;
  the official scans it, the bot marks the scene as theirs (once, before it expires), and the
  page that holds the scene in its cookie claims it (once) and becomes a session;
- a code: the official sends 登录 to the bot and types the six digits it returns, with their
  name, on the login page; five minutes, five wrong tries against it and it is dead.

A session is a row (the cookie carries a random token, the row its hash) tied to the
binding that logged in: logging out ends every session of the person; unbinding, losing the
desk roles or 30 idle minutes end it at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.members.models import bindings, people
from bangfu_bot.members.service import Person, person_by_id
from bangfu_bot.reports.models import desk_codes, desk_keys, desk_logins, desk_sessions
from bangfu_bot.reports.viewer import Viewer, viewer_of

SCENE_LIFE = timedelta(minutes=5)
CODE_LIFE = timedelta(minutes=5)
CODE_TRIES = 5
IDLE = timedelta(minutes=30)
# A session's last-seen time is written at most this often (a page a second costs no write).
SEEN_EVERY = timedelta(minutes=1)
SCENE_PREFIX = "login"


def hash_token(token: str) -> str:
    """What is stored of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def binding_of(conn: AsyncConnection, openid: str) -> int | None:
    """The WeChat user's active binding, if any."""
    found = (
        await conn.execute(
            select(bindings.c.id).where(
                bindings.c.openid == openid, bindings.c.unbound_at.is_(None)
            )
        )
    ).scalar()
    return int(found) if found is not None else None


# --- QR scenes ------------------------------------------------------------------------------


async def open_scene(conn: AsyncConnection, *, now: datetime) -> str:
    """A new login scene for one login page; its QR code carries `login:<scene>`."""
    scene = secrets.token_urlsafe(16)
    await conn.execute(
        insert(desk_logins).values(scene=scene, created_at=now, expires_at=now + SCENE_LIFE)
    )
    return scene


async def scan_scene(
    conn: AsyncConnection, *, scene: str, openid: str, person: Person | None, now: datetime
) -> str:
    """The bot's half: a bound official scanned the scene. 'ok', or why not: 'unbound',
    'not_allowed' (no desk role), 'used' (scanned before, expired or unknown)."""
    if person is None:
        return "unbound"
    if viewer_of(person) is None:
        return "not_allowed"
    binding_id = await binding_of(conn, openid)
    if binding_id is None:
        return "unbound"
    marked = await conn.execute(
        update(desk_logins)
        .where(
            desk_logins.c.scene == scene[:32],
            desk_logins.c.scanned_at.is_(None),
            desk_logins.c.expires_at > now,
        )
        .values(person_id=person.id, binding_id=binding_id, scanned_at=now)
    )
    return "ok" if marked.rowcount == 1 else "used"


@dataclass(frozen=True)
class Waiting:
    """Where a login page's scene stands."""

    state: str  # waiting | scanned | expired | used
    person_id: int | None = None
    binding_id: int | None = None


async def claim_scene(conn: AsyncConnection, *, scene: str, now: datetime) -> Waiting:
    """The page's half: once scanned, the scene is claimed (once) for a session."""
    row = (await conn.execute(select(desk_logins).where(desk_logins.c.scene == scene))).first()
    if row is None or row.claimed_at is not None:
        return Waiting("used")
    if row.scanned_at is None:
        return Waiting("expired" if row.expires_at <= now else "waiting")
    claimed = await conn.execute(
        update(desk_logins)
        .where(desk_logins.c.scene == scene, desk_logins.c.claimed_at.is_(None))
        .values(claimed_at=now)
    )
    if claimed.rowcount != 1:
        return Waiting("used")
    return Waiting("scanned", row.person_id, row.binding_id)


# --- codes (登录) ------------------------------------------------------------------------------


async def issue_code(
    conn: AsyncConnection, *, person: Person, openid: str, now: datetime
) -> str | None:
    """Six digits for the person's next desk login; any earlier live code dies. None when
    the desk is not for them or the WeChat user is not bound."""
    if viewer_of(person) is None:
        return None
    binding_id = await binding_of(conn, openid)
    if binding_id is None:
        return None
    await conn.execute(
        update(desk_codes)
        .where(
            desk_codes.c.person_id == person.id,
            desk_codes.c.used_at.is_(None),
            desk_codes.c.dead_at.is_(None),
        )
        .values(dead_at=now)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    await conn.execute(
        insert(desk_codes).values(
            person_id=person.id,
            binding_id=binding_id,
            code=code,
            created_at=now,
            expires_at=now + CODE_LIFE,
            tries=0,
        )
    )
    return code


async def try_code(
    conn: AsyncConnection, *, name: str, code: str, now: datetime
) -> tuple[int, int] | None:
    """A code typed with a name: (person id, binding id) when it is the live code of a
    person of that name, spent at once. A wrong one counts against every live code of that
    name; the fifth kills it. The answer is the same whether or not the name has a code."""
    live = (
        await conn.execute(
            select(desk_codes)
            .select_from(desk_codes.join(people, people.c.id == desk_codes.c.person_id))
            .where(
                people.c.name == name.strip()[:40],
                desk_codes.c.used_at.is_(None),
                desk_codes.c.dead_at.is_(None),
                desk_codes.c.expires_at > now,
            )
        )
    ).all()
    typed = code.strip()
    for row in live:
        if hmac.compare_digest(row.code, typed):
            spent = await conn.execute(
                update(desk_codes)
                .where(desk_codes.c.id == row.id, desk_codes.c.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount == 1:
                return int(row.person_id), int(row.binding_id)
    for row in live:
        tries = row.tries + 1
        await conn.execute(
            update(desk_codes)
            .where(desk_codes.c.id == row.id)
            .values(tries=tries, dead_at=now if tries >= CODE_TRIES else None)
        )
    return None


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """A new session: the token for the cookie and the form token."""

    token: str
    csrf: str


async def start_session(
    conn: AsyncConnection, *, person_id: int, binding_id: int, via: str, now: datetime
) -> Started:
    """A session for a person who has just proved who they are."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await conn.execute(
        insert(desk_sessions).values(
            token_hash=hash_token(token),
            person_id=person_id,
            binding_id=binding_id,
            csrf=csrf,
            via=via,
            created_at=now,
            last_seen_at=now,
        )
    )
    return Started(token, csrf)


@dataclass(frozen=True)
class Current:
    """A live session: who, their desk view and the form token."""

    session_id: int
    viewer: Viewer
    csrf: str
    seen_at: datetime  # the session's last-seen time as stored after this look


async def current(conn: AsyncConnection, *, token: str, now: datetime) -> Current | str:
    """The live session for a cookie's token, or why there is none: 'none' (unknown or
    ended), 'idle', 'unbound', 'role'. A session found dead is ended with its reason."""
    row = (
        await conn.execute(
            select(desk_sessions, bindings.c.unbound_at)
            .select_from(desk_sessions.join(bindings, bindings.c.id == desk_sessions.c.binding_id))
            .where(desk_sessions.c.token_hash == hash_token(token))
        )
    ).first()
    if row is None or row.ended_at is not None:
        return "none"
    reason = None
    viewer = None
    if row.unbound_at is not None:
        reason = "unbound"
    elif now - row.last_seen_at > IDLE:
        reason = "idle"
    else:
        viewer = viewer_of(await person_by_id(conn, row.person_id))
        if viewer is None:
            reason = "role"
    if reason is not None or viewer is None:
        await _end(conn, and_(desk_sessions.c.id == row.id), now, reason or "role")
        return reason or "role"
    seen_at = row.last_seen_at
    if now - seen_at >= SEEN_EVERY:
        await conn.execute(
            update(desk_sessions).where(desk_sessions.c.id == row.id).values(last_seen_at=now)
        )
        seen_at = now
    return Current(row.id, viewer, row.csrf, seen_at)


async def end_sessions(conn: AsyncConnection, *, person_id: int, now: datetime, reason: str) -> int:
    """End every live session of a person (logging out ends them all); how many."""
    return await _end(conn, desk_sessions.c.person_id == person_id, now, reason)


async def _end(conn: AsyncConnection, which: object, now: datetime, reason: str) -> int:
    ended = await conn.execute(
        update(desk_sessions)
        .where(which, desk_sessions.c.ended_at.is_(None))  # type: ignore[arg-type]
        .values(ended_at=now, end_reason=reason)
    )
    return int(ended.rowcount)


# --- the cookie key ---------------------------------------------------------------------------


async def cookie_key(engine: AsyncEngine, *, now: datetime) -> bytes:
    """The Fernet key of the desk's cookies: made by the first process that needs it, then
    read by every process (so a cookie made by one is read by the others)."""
    for _ in range(3):
        async with engine.connect() as conn:
            stored = (
                await conn.execute(select(desk_keys.c.value).where(desk_keys.c.name == "cookie"))
            ).scalar()
        if stored is not None:
            return str(stored).encode()
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(desk_keys).values(
                        name="cookie", value=Fernet.generate_key().decode(), created_at=now
                    )
                )
        except IntegrityError:
            continue  # another process made it first: read theirs
    raise RuntimeError("the desk's cookie key could not be stored")
