"""The loan's approval chain on the desk: 党委审批 (a township officer), 实地考核 and
乡镇财政担保 (the department), and 核销 (a township officer, only on a loan behind on its
repayments). The disbursement and repayments are in `desk/money.py`.

Each act runs the loans service's own function — the chat's — with the status the page
showed as `expected`, so one who comes second reads who moved the loan first, and a refusal
writes nothing. What happens next is the chat's too: the next step's to-dos, and the member
told of a decision (`prompts.after`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.common.fields import FieldError, parse_name, parse_text
from bangfu_bot.desk.base import desk_of, flash, form_of, page, say
from bangfu_bot.desk.money import (
    FINDING_MOST,
    GUARANTEE_MOST,
    REASON_MOST,
    acting,
    desk_today,
    form_day,
    run_act,
)
from bangfu_bot.loans import prompts
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.enums import L
from bangfu_bot.reports.viewer import Viewer


def _text(form: Any, key: str, most: int) -> str | None:
    """A free-text field as the chat keeps it (control characters out, spaces collapsed);
    None when it is empty or longer than `most`."""
    try:
        return parse_text(str(form.get(key, "")), max_length=most)
    except FieldError:
        return None


async def _back(request: web.Request, loan_id: int, key: str, **values: Any) -> NoReturn:
    """A form that cannot be acted on: the loan's page again, saying what to fill in."""
    await flash(request, "refused", say(key, **values))
    raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")


Step = Callable[[AsyncConnection, datetime], Awaitable[Any]]


async def _step(
    request: web.Request, viewer: Viewer, loan_id: int, step: Step, *, reason: str | None = None
) -> web.StreamResponse:
    """Run a chain step (it returns the loan moved) and prompt what follows."""
    now = desk_of(request).now()

    async def run(conn: AsyncConnection) -> str:
        loan = await step(conn, now)
        await prompts.after(conn, actor_id=viewer.id, loan_id=loan_id, now=now, reason=reason)
        return loans.recorded(loan.status)

    return await run_act(request, loan_id, run)


@page
async def decide(request: web.Request) -> web.StreamResponse:
    """党委审批: approve, or not with a reason the member is told."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    decision = str(form.get("decision", ""))
    if decision not in ("approve", "reject"):
        await _back(request, loan_id, "decision_missing")
    reason = _text(form, "reason", REASON_MOST)
    if decision == "reject" and reason is None:
        await _back(request, loan_id, "reject_reason", most=REASON_MOST)
    if reason is None and str(form.get("reason", "")).strip():
        await _back(request, loan_id, "reason_too_long", most=REASON_MOST)

    async def act(conn: AsyncConnection, now: datetime) -> Any:
        return await loans.decide(
            conn,
            loan_id=loan_id,
            officer=viewer.person,
            approve=decision == "approve",
            reason=reason,
            now=now,
            expected=L.APPLIED,
            channel="web",
        )

    return await _step(request, viewer, loan_id, act, reason=reason)


@page
async def inspect(request: web.Request) -> web.StreamResponse:
    """实地考核: the day, who went, what they found, passed or not (not passed, the member
    is told the finding)."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    on = form_day(str(form.get("on", "")))
    finding = _text(form, "finding", FINDING_MOST)
    passed = str(form.get("passed", ""))
    try:
        inspector = parse_name(str(form.get("inspector", "")))
    except FieldError:
        inspector = ""
    if on is None or not inspector or finding is None or passed not in ("yes", "no"):
        await _back(request, loan_id, "inspection_incomplete", most=FINDING_MOST)
    if on > desk_today(request):
        await _back(request, loan_id, "inspection_in_future")

    async def act(conn: AsyncConnection, now: datetime) -> Any:
        return await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=viewer.person,
            on=on,
            inspector=inspector,
            finding=finding,
            passed=passed == "yes",
            now=now,
            expected=L.APPROVED,
            channel="web",
        )

    return await _step(request, viewer, loan_id, act, reason=finding)


@page
async def guarantee(request: web.Request) -> web.StreamResponse:
    """乡镇财政担保: who guarantees, under which document."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    guarantor = _text(form, "guarantor", GUARANTEE_MOST)
    document = _text(form, "document", GUARANTEE_MOST)
    if guarantor is None or document is None:
        await _back(request, loan_id, "guarantee_incomplete", most=GUARANTEE_MOST)

    async def act(conn: AsyncConnection, now: datetime) -> Any:
        return await loans.guarantee(
            conn,
            loan_id=loan_id,
            staff=viewer.person,
            guarantor=guarantor,
            document=document,
            now=now,
            expected=L.INSPECTED,
            channel="web",
        )

    return await _step(request, viewer, loan_id, act)


@page
async def write_off(request: web.Request) -> web.StreamResponse:
    """核销: a reason, and a tick that the officer knows the principal becomes the fund's
    loss; the fund records it as the chat's write-off does."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    reason = _text(form, "reason", FINDING_MOST)
    if reason is None or form.get("understood") != "1":
        await _back(request, loan_id, "write_off_incomplete", most=FINDING_MOST)
    today = desk_today(request)
    now = desk_of(request).now()

    async def run(conn: AsyncConnection) -> str:
        return await loans.write_off(
            conn,
            loan_id=loan_id,
            officer=viewer.person,
            reason=reason,
            on=today,
            now=now,
            expected=L.DISBURSED,
            channel="web",
        )

    return await run_act(request, loan_id, run)


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/decide", decide),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/inspect", inspect),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/guarantee", guarantee),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/write-off", write_off),
]
