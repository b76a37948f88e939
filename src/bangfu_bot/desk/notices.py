"""通知 on the desk: the notices and their state, composing one (write → preview with the
audience's figures and the notice exactly as members will read it → send), and per notice
its delivery receipts and the 报名 list with its XLSX.

Sending is broadcasts.service.create, the same call as the chat's 发通知: the authority
policy decides who may (the department), the same refusals come back (an empty or too
long text, an audience of nobody), and the dispatcher mass-sends it. A double submit of one
preview sends once: the send holds the sender's sessions (a row lock, so a second submit
waits for the first to commit) and finds the notice the first one made.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bangfu_bot.authority import COUNTY_MATTER, Refused, able
from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.broadcasts.models import broadcasts as broadcast_table
from bangfu_bot.desk.base import (
    current_of,
    desk_of,
    flash,
    flashed,
    form_of,
    page,
    refuse,
    render,
    say,
    services_of,
)
from bangfu_bot.desk.visits import scope_ids
from bangfu_bot.reports.models import desk_sessions
from bangfu_bot.reports.notices import (
    audience_choices,
    audience_preview,
    notice_list,
    notice_one,
    notice_receipts,
    signup_list,
    signups_xlsx,
)
from bangfu_bot.reports.viewer import Viewer

log = logging.getLogger(__name__)

PAGE = 50
TITLE_MAX = 30
KINDS = ("everyone", "township", "branch", "role", "category")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Draft:
    """A notice being written: what the compose form posts, and the preview carries on."""

    title: str = ""
    text: str = ""
    kind: str = "everyone"
    township: str = ""
    branch: str = ""
    role: str = ""
    category: str = ""
    training: bool = False

    @classmethod
    def of(cls, form: Any) -> Draft:
        """The draft a posted form holds (anything unknown left out)."""

        def field(name: str, limit: int) -> str:
            return str(form.get(name, "")).replace("\r\n", "\n").strip()[:limit]

        kind = field("kind", 10)
        return cls(
            title=field("title", TITLE_MAX),
            text=field("text", broadcasts.MAX_TEXT * 2),
            kind=kind if kind in KINDS else "everyone",
            township=field("township", 100),
            branch=field("branch", 100),
            role=field("role", 20),
            category=field("category", 100),
            training=form.get("training") == "1",
        )

    @property
    def place(self) -> str:
        """The township, branch, role or category the audience names."""
        return {
            "township": self.township,
            "branch": self.branch,
            "role": self.role,
            "category": self.category,
        }.get(self.kind, "")

    @property
    def audience(self) -> str:
        """The audience as broadcasts names it (everyone, township:名 …)."""
        return "everyone" if self.kind == "everyone" else f"{self.kind}:{self.place}"

    @property
    def message(self) -> str:
        """The text sent: the title, if any, on its own first line."""
        if not self.title:
            return self.text
        return say("notice_titled", title=self.title, text=self.text)

    def problem(self) -> str | None:
        """Why the draft cannot be previewed yet, in Chinese (the send checks again)."""
        if not self.text:
            return broadcasts.say("empty_text")
        if len(self.message) > broadcasts.MAX_TEXT:
            return broadcasts.say("too_long", length=len(self.message), limit=broadcasts.MAX_TEXT)
        if self.kind != "everyone" and not self.place:
            return say("notice_needs_place")
        return None


def may_send(viewer: Viewer) -> bool:
    """Whether the authority lets this viewer send a notice (what the pages offer)."""
    return not viewer.read_only and able("broadcast.send", viewer.person, COUNTY_MATTER) is not None


@page
async def notices_page(request: web.Request) -> web.Response:
    """通知: the notices, newest first, with their state."""
    viewer = current_of(request).viewer
    start = request.query.get("from", "0")
    offset = int(start) if start.isdigit() and len(start) < 9 else 0
    async with AsyncSession(desk_of(request).engine) as session:
        found = await notice_list(session, limit=PAGE, offset=offset)
    return render(
        request,
        "notices.html",
        {
            "page": found,
            "start": offset,
            "step": PAGE,
            "may_send": may_send(viewer),
            "flash": await flashed(request),
            "local": desk_of(request).local,
            "state_name": _state_name,
        },
    )


@page
async def compose(request: web.Request) -> web.Response:
    """写通知: the form (a POST comes back from the preview to change the draft)."""
    refused = _not_for(request)
    if refused is not None:
        return refused
    draft = Draft.of(form_of(request)) if request.method == "POST" else Draft()
    return await _compose_page(request, draft)


@page
async def preview(request: web.Request) -> web.Response:
    """预览: the audience's figures and the notice exactly as members will read it."""
    refused = _not_for(request)
    if refused is not None:
        return refused
    draft = Draft.of(form_of(request))
    problem = draft.problem()
    if problem is not None:
        return await _compose_page(request, draft, error=problem)
    desk = desk_of(request)
    now = desk.now()
    try:
        async with AsyncSession(desk.engine) as session:
            figures = await audience_preview(
                session, draft.audience, now=now, tz=services_of(request).settings.tz
            )
    except broadcasts.AudienceError as refusal:
        return await _compose_page(request, draft, error=refusal.message)
    return await _compose_page(
        request,
        draft,
        figures=figures,
        body=broadcasts.body_of(draft.message, training=draft.training),
        drafted=now.isoformat(),
    )


@page
async def send(request: web.Request) -> web.StreamResponse:
    """发送: the notice through broadcasts' own create, once per preview."""
    viewer = current_of(request).viewer
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    form = form_of(request)
    draft = Draft.of(form)
    drafted = _instant(form.get("drafted"))
    if drafted is None:
        return refuse(request, 400, "bad_form")
    problem = draft.problem()
    if problem is not None:
        return await _compose_page(request, draft, error=problem, status=_status(viewer))
    desk = desk_of(request)
    now = desk.now()
    body = broadcasts.body_of(draft.message, training=draft.training)
    try:
        async with desk.engine.begin() as conn:
            await _hold_sender(conn, viewer.id, now)
            earlier = await _sent_since(conn, viewer.id, body, draft.audience, drafted)
            if earlier is None:
                broadcast_id, count = await broadcasts.create(
                    conn,
                    author=viewer.person,
                    text=draft.message,
                    audience=draft.audience,
                    training=draft.training,
                    now=now,
                    tz=services_of(request).settings.tz,
                    channel="web",
                )
    except Refused as refusal:
        log.info("desk: a notice by person %s refused: %s", viewer.id, refusal.reason)
        return await _compose_page(request, draft, error=refusal.message, status=_status(viewer))
    if earlier is not None:
        await flash(request, "done", say("notice_sent_once", id=earlier))
        raise web.HTTPSeeOther(f"/desk/notices/{earlier}")
    log.info("desk: notice %s by person %s via web, %s recipients", broadcast_id, viewer.id, count)
    dispatcher = services_of(request).dispatcher
    if dispatcher is not None:
        dispatcher.wake()
    await flash(request, "done", say("notice_queued", id=broadcast_id, count=count))
    raise web.HTTPSeeOther(f"/desk/notices/{broadcast_id}")


@page
async def notice_page(request: web.Request) -> web.Response:
    """A notice: its text, delivery receipts and the 报名 list within sight."""
    viewer = current_of(request).viewer
    broadcast_id = int(request.match_info["broadcast_id"])
    township_id, branch_id = scope_ids(viewer)
    async with AsyncSession(desk_of(request).engine) as session:
        notice = await notice_one(session, broadcast_id)
        if notice is None:
            return refuse(request, 404, "no_notice")
        receipts = await notice_receipts(session, broadcast_id)
        signed = await signup_list(
            session,
            broadcast_id,
            unmasked=viewer.sees_phone(),
            township_id=township_id,
            branch_id=branch_id,
        )
    return render(
        request,
        "notice.html",
        {
            "notice": notice,
            "receipts": receipts,
            "signed": signed,
            "flash": await flashed(request),
            "local": desk_of(request).local,
            "state_name": _state_name,
        },
    )


@page
async def signups_download(request: web.Request) -> web.StreamResponse:
    """The 报名 list as XLSX, within sight (phones masked for those who do not call)."""
    viewer = current_of(request).viewer
    broadcast_id = int(request.match_info["broadcast_id"])
    township_id, branch_id = scope_ids(viewer)
    out = io.BytesIO()
    async with AsyncSession(desk_of(request).engine) as session:
        if await notice_one(session, broadcast_id) is None:
            return refuse(request, 404, "no_notice")
        await signups_xlsx(
            session,
            broadcast_id,
            out=out,
            tz=services_of(request).settings.tz,
            unmasked=viewer.sees_phone(),
            township_id=township_id,
            branch_id=branch_id,
        )
    name = say("signups_file", id=broadcast_id)
    return web.Response(
        body=out.getvalue(),
        content_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="signups-{broadcast_id}.xlsx"; '
            f"filename*=UTF-8''{quote(name)}"
        },
    )


# --- helpers -----------------------------------------------------------------------------------


def _not_for(request: web.Request) -> web.Response | None:
    """The compose pages are for those who may send."""
    viewer = current_of(request).viewer
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    if not may_send(viewer):
        return refuse(request, 403, "not_sender")
    return None


async def _compose_page(
    request: web.Request,
    draft: Draft,
    *,
    error: str | None = None,
    figures: Any = None,
    body: str = "",
    drafted: str = "",
    status: int = 200,
) -> web.Response:
    desk = desk_of(request)
    year = desk.local(desk.now()).year
    async with AsyncSession(desk.engine) as session:
        choices = await audience_choices(session, year=year)
    return render(
        request,
        "compose.html",
        {
            "draft": draft,
            "choices": choices,
            "error": error,
            "figures": figures,
            "body": body,
            "drafted": drafted,
            "title_max": TITLE_MAX,
            "text_max": broadcasts.MAX_TEXT,
        },
        status=status,
    )


async def _hold_sender(conn: AsyncConnection, person_id: int, now: datetime) -> None:
    """Lock the sender's live sessions (marking them seen): a second submit of the same
    preview waits here until the first has committed, and then finds its notice."""
    await conn.execute(
        update(desk_sessions)
        .where(desk_sessions.c.person_id == person_id, desk_sessions.c.ended_at.is_(None))
        .values(last_seen_at=now)
    )


async def _sent_since(
    conn: AsyncConnection, person_id: int, body: str, audience: str, drafted: datetime
) -> int | None:
    """The notice this sender already sent from this preview, if any."""
    found = await conn.scalar(
        select(broadcast_table.c.id)
        .where(
            broadcast_table.c.author_id == person_id,
            broadcast_table.c.audience == audience,
            broadcast_table.c.text == body,
            broadcast_table.c.created_at >= drafted,
        )
        .order_by(broadcast_table.c.id)
        .limit(1)
    )
    return int(found) if found is not None else None


def _status(viewer: Viewer) -> int:
    """A refused draft is a form to correct (200), unless sending is not the viewer's (403)."""
    return 200 if may_send(viewer) else 403


def _instant(value: object) -> datetime | None:
    try:
        found = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _state_name(notice: Any) -> str:
    return say(f"notice_state_{notice.status}")


ROUTES = [
    ("GET", "/notices", notices_page),
    ("GET", "/notices/new", compose),
    ("POST", "/notices/new", compose),
    ("POST", "/notices/preview", preview),
    ("POST", "/notices/send", send),
    ("GET", "/notices/{broadcast_id:[0-9]{1,12}}", notice_page),
    ("GET", "/notices/{broadcast_id:[0-9]{1,12}}/signups.xlsx", signups_download),
]
