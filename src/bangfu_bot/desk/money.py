"""借款与基金 on the desk: the loans within sight with their schedules, repayments and
arrears; recording a repayment and the two-person disbursement; the fund's position,
movements, charts and the supervisors' report (the workbook of `bangfu-bot fund report`).

Acts run the loans service's own functions (those the chat runs), each in its own
transaction, so the authority policy and the transition table decide as they do in chat and
a refusal writes nothing; the audit names the channel `web`. The fund is the county's: its
page is for those who see the county (the department and the supervision group)."""

from __future__ import annotations

import html
import io
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bangfu_bot.authority import Refused, able
from bangfu_bot.common.fields import mask_id
from bangfu_bot.common.money import yuan
from bangfu_bot.desk.base import (
    Desk,
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
from bangfu_bot.desk.figures import MONEY
from bangfu_bot.fund.models import fund_movements as movements_table
from bangfu_bot.fund.service import SOURCE_NAMES
from bangfu_bot.loans import prompts
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.transitions import LoanRefused, load_loan, loan_subject
from bangfu_bot.reports import cases as case_reports
from bangfu_bot.reports import charts, money
from bangfu_bot.reports.fund import KIND_NAMES, fund_summary
from bangfu_bot.reports.viewer import Viewer

log = logging.getLogger(__name__)

PAGE_SIZE = 50
RECEIPT_MAX = 60  # repayments.receipt, loans.disbursement_document
# The approval chain's fields (desk/loan_steps.py), as long as the chat's flows allow.
REASON_MOST = 200  # loan_review.toml's reason
FINDING_MOST = 300  # loan_inspect.toml's finding, loan_write_off.toml's reason
GUARANTEE_MOST = 60  # loan_guarantee.toml's guarantor and document
NOWHERE = -1  # no organisation has it: a township officer or secretary with no place sees none
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_AMOUNT = re.compile(r"^[-−]?\d{1,9}(\.\d{1,2})?$")


# --- who sees which loans ----------------------------------------------------------------------


def scope_of(viewer: Viewer) -> dict[str, int | None]:
    """The read side's township/branch narrowing for the viewer."""
    if viewer.scope == "county":
        return {"township_id": None, "branch_id": None}
    if viewer.scope == "township":
        return {"township_id": viewer.person.committee_id or NOWHERE, "branch_id": None}
    return {"township_id": None, "branch_id": viewer.person.branch_id or NOWHERE}


def _shown(row: money.LoanRow, viewer: Viewer) -> money.LoanRow:
    """The loan's line with the ID number masked unless the viewer's role needs it (the read
    side unmasks both or neither; phones follow `sees_phone`)."""
    if viewer.sees_id_number():
        return row
    return replace(row, id_number=mask_id(row.id_number))


def desk_today(request: web.Request) -> date:
    desk = desk_of(request)
    return desk.local(desk.now()).date()


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 12:
        return None
    return int(value)


# --- 借款 ---------------------------------------------------------------------------------------


@page
async def loan_list(request: web.Request) -> web.Response:
    """借款: the loans within sight, filtered by status, township and 'overdue only'."""
    viewer = current_of(request).viewer
    query = request.query
    status = query.get("status", "")
    status = status if status in set(L) else ""
    township = _int(query.get("township")) if viewer.county_wide else None
    arrears = _arrears(query.get("overdue", ""))
    asked_arrears = query.get("overdue", "") if arrears else ""
    q = query.get("q", "").strip()[:20]
    number = max(_int(query.get("page")) or 1, 1)
    scope = scope_of(viewer)
    if township is not None:
        scope["township_id"] = township
    today = desk_today(request)
    async with AsyncSession(desk_of(request).engine) as session:
        found = await money.loan_list(
            session,
            today=today,
            status=status or None,
            arrears=arrears,
            q=q or None,
            unmasked=viewer.sees_phone(),
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
            **scope,
        )
        conn = await session.connection()
        townships, _ = await case_reports.places(conn, viewer)
    figures, _ = await county_money(desk_of(request))
    buckets = figures.arrears.buckets(**scope_of(viewer))
    return render(
        request,
        "loans.html",
        {
            "rows": [_shown(row, viewer) for row in found.rows],
            "total": found.total,
            "page": number,
            "pages": max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "filters": {"status": status, "township": township, "overdue": asked_arrears, "q": q},
            "statuses": [(code.value, money.status_name(code)) for code in L],
            "townships": townships if viewer.county_wide else [],
            "buckets": buckets,
            "today": today,
            "flash": await flashed(request),
        },
    )


def _arrears(asked: str) -> str | None:
    """The arrears a loan list asks for: `1` (逾期的) for any overdue, or a bucket's key (the
    links of 按逾期分, so a bucket's count and the list it opens agree); else none."""
    if asked == "1":
        return money.OVERDUE
    return asked if asked in {key for key, *_ in money.BUCKETS} else None


async def _visible_loan(request: web.Request, viewer: Viewer) -> int | web.Response:
    """The loan of the URL if the viewer sees it; 404 when there is none, 403 out of sight."""
    loan_id = int(request.match_info["loan_id"])
    async with desk_of(request).engine.connect() as conn:
        loan = await load_loan(conn, loan_id)
    if loan is None:
        return refuse(request, 404, "no_loan")
    if not viewer.sees(branch_id=loan.borrower_branch_id, committee_id=loan.committee_id):
        log.info("desk: loan %s is out of %s's sight", loan_id, viewer.role)
        return refuse(request, 403, "out_of_sight")
    return loan_id


@page
async def loan_page(request: web.Request) -> web.Response:
    """A loan's whole record: terms, schedule, repayments (interest and principal), arrears,
    its history, and the acts open to the viewer."""
    viewer = current_of(request).viewer
    found = await _visible_loan(request, viewer)
    if isinstance(found, web.Response):
        return found
    today = desk_today(request)
    async with AsyncSession(desk_of(request).engine) as session:
        record = await money.loan_record(
            session, found, today=today, unmasked=viewer.sees_phone(), **scope_of(viewer)
        )
        if record is None:  # on the roster's old branch only: out of sight all the same
            return refuse(request, 403, "out_of_sight")
        conn = await session.connection()
        acts, owed, maker = await _acts_open(conn, viewer, found, today)
    desk = desk_of(request)
    return render(
        request,
        "loan.html",
        {
            "record": record,
            "loan": _shown(record.loan, viewer),
            "acts": acts,
            "owed": owed,
            "maker": maker,
            "today": today,
            "receipt_max": RECEIPT_MAX,
            "reason_most": REASON_MOST,
            "finding_most": FINDING_MOST,
            "guarantee_most": GUARANTEE_MOST,
            "flash": await flashed(request),
            "local": desk.local,
            "rate": f"{Decimal(record.annual_rate_bp) / 100:.2f}%",
            "schedule_name": lambda kind: loans.say(f"schedule_{kind}"),
            "channel_name": lambda channel: say(f"channel_{channel}"),
            "role_name": lambda role: say(f"role_{role}"),
            "status_name": money.status_name,
        },
    )


# The approval chain's steps the loan page offers (desk/loan_steps.py): status, act, step.
CHAIN = (
    (L.APPLIED, "loan.decide", "decide"),
    (L.APPROVED, "loan.inspect", "inspect"),
    (L.INSPECTED, "loan.guarantee", "guarantee"),
)


async def _acts_open(
    conn: AsyncConnection, viewer: Viewer, loan_id: int, today: date
) -> tuple[list[str], loans.Position | None, str]:
    """The acts the authority policy lets this viewer make on the loan now; what is owed
    today (for the repayment form); who recorded a disbursement waiting for its check."""
    loan = await load_loan(conn, loan_id)
    owed = await loans.position(conn, loan_id, today) if loan.status == L.DISBURSED else None
    maker = ""
    if loan.status == L.RECORDED and loan.recorded_by is not None:
        maker = (await prompts.loan_context(conn, loan_id))["recorder"]
    if viewer.read_only:
        return [], owed, maker
    subject = loan_subject(loan)
    acts = [
        step
        for status, act, step in CHAIN
        if loan.status == status and able(act, viewer.person, subject)
    ]
    if (
        owed is not None
        and owed.days_overdue > 0
        and able("loan.write_off", viewer.person, subject)
    ):
        acts.append("write_off")  # offered only on a loan behind on its repayments
    if loan.status == L.DISBURSED and able("loan.repay", viewer.person, subject):
        acts.append("repay")
    if loan.status == L.GUARANTEED and able("loan.record_disbursement", viewer.person, subject):
        acts.append("disburse")
    if loan.status == L.RECORDED:
        if able("loan.confirm_disbursement", viewer.person, subject):
            acts.append("confirm")
        elif loan.recorded_by == viewer.id:
            acts.append("wait_for_check")
    return acts, owed, maker


Run = Callable[[AsyncConnection], Awaitable[str]]


async def run_act(request: web.Request, loan_id: int, run: Run) -> web.StreamResponse:
    """Run one act in its own transaction: refused, nothing is written and the viewer reads
    why; done, the outbox is woken so the member's WeChat hears of it at once."""
    desk = desk_of(request)
    try:
        async with desk.engine.begin() as conn:
            text = await run(conn)
    except Refused as refused:
        log.info("desk act on loan %s refused: %s", loan_id, refused.reason)
        await flash(request, "refused", refused.message)
    except IntegrityError:
        # The same receipt booked at the same instant by someone else: theirs stands.
        log.info("desk act on loan %s lost a race on a unique key", loan_id)
        await flash(request, "refused", say("receipt_raced"))
    else:
        await flash(request, "done", text)
        dispatcher = services_of(request).dispatcher
        if dispatcher is not None:
            dispatcher.wake()
    raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")


async def acting(request: web.Request) -> tuple[Viewer, int] | web.Response:
    """The viewer and the loan of a posted act, or the refusal page."""
    viewer = current_of(request).viewer
    found = await _visible_loan(request, viewer)
    if isinstance(found, web.Response):
        return found
    if viewer.read_only:
        return refuse(request, 403, "read_only")
    return viewer, found


def _fen(text: str) -> int | None:
    """An amount typed in 元 with at most two decimals, as fen (may be zero or negative:
    the act says what is owed); None when it is not such a figure."""
    text = text.strip().replace(",", "").replace("，", "").removesuffix("元")
    if not _AMOUNT.match(text):
        return None
    try:
        value = Decimal(text.replace("−", "-"))
    except InvalidOperation:
        return None
    return int(value * 100)


def form_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


@page
async def repay(request: web.Request) -> web.StreamResponse:
    """还款登记 from the desk: the amount in 元, the receipt, the day it was paid."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    amount = _fen(str(form.get("amount", "")))
    receipt = str(form.get("receipt", "")).strip()
    paid_on = form_day(str(form.get("paid_on", "")))
    if amount is None:
        await flash(request, "refused", say("amount_unreadable"))
        raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")
    if not receipt or len(receipt) > RECEIPT_MAX or paid_on is None:
        await flash(request, "refused", say("repayment_incomplete", most=RECEIPT_MAX))
        raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")
    if paid_on > desk_today(request):
        await flash(request, "refused", say("repayment_in_future"))
        raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")
    now = desk_of(request).now()

    async def run(conn: AsyncConnection) -> str:
        if amount <= 0:
            loan = await load_loan(conn, loan_id)
            if loan.status == L.DISBURSED and paid_on >= loan.disbursed_on:
                owed = await loans.position(conn, loan_id, paid_on)
                raise LoanRefused(
                    say(
                        "amount_not_positive",
                        owed=yuan(owed.owed_now_fen),
                        interest=yuan(owed.interest_due_fen),
                        principal=yuan(owed.principal_outstanding_fen),
                    )
                )
        text = await loans.repay(
            conn,
            loan_id=loan_id,
            staff=viewer.person,
            amount_fen=amount,
            paid_on=paid_on,
            receipt=receipt,
            now=now,
            channel="web",
        )
        await prompts.after_repayment(conn, loan_id=loan_id, receipt=receipt, text=text, now=now)
        return text

    return await run_act(request, loan_id, run)


@page
async def record_disbursement(request: web.Request) -> web.StreamResponse:
    """放款登记 (the maker): the day and the disbursement document; another confirms."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    form = form_of(request)
    on = form_day(str(form.get("on", "")))
    document = str(form.get("document", "")).strip()
    if on is None or not document or len(document) > RECEIPT_MAX:
        await flash(request, "refused", say("disbursement_incomplete", most=RECEIPT_MAX))
        raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")
    now = desk_of(request).now()

    async def run(conn: AsyncConnection) -> str:
        await loans.record_disbursement(
            conn,
            loan_id=loan_id,
            staff=viewer.person,
            on=on,
            document=document,
            now=now,
            expected=L.GUARANTEED,
            channel="web",
        )
        await prompts.after(conn, actor_id=viewer.id, loan_id=loan_id, now=now)
        return loans.say("disbursement_recorded")

    return await run_act(request, loan_id, run)


@page
async def confirm_disbursement(request: web.Request) -> web.StreamResponse:
    """放款复核 (the checker, never the maker): the fund pays out once, the schedule is
    fixed and the member is told it."""
    found = await acting(request)
    if isinstance(found, web.Response):
        return found
    viewer, loan_id = found
    if form_of(request).get("checked") != "1":
        await flash(request, "refused", loans.say("check_documents_first"))
        raise web.HTTPSeeOther(f"/desk/loans/{loan_id}")
    now = desk_of(request).now()

    async def run(conn: AsyncConnection) -> str:
        await loans.confirm_disbursement(
            conn,
            loan_id=loan_id,
            staff=viewer.person,
            now=now,
            expected=L.RECORDED,
            channel="web",
        )
        await prompts.after(conn, actor_id=viewer.id, loan_id=loan_id, now=now)
        return loans.say("disbursement_confirmed") + "\n" + await prompts.plan_text(conn, loan_id)

    return await run_act(request, loan_id, run)


# --- 基金 ---------------------------------------------------------------------------------------


@page
async def fund_page(request: web.Request) -> web.Response:
    """基金: the balance and the reconciliation line, the movements by source and kind, the
    three charts, and the supervisors' report to download."""
    viewer = current_of(request).viewer
    if not viewer.county_wide:
        return refuse(request, 403, "fund_county_only")
    query = request.query
    source = query.get("source", "")
    source = source if source in SOURCE_NAMES else ""
    kind = query.get("kind", "")
    kind = kind if kind in KIND_NAMES else ""
    number = max(_int(query.get("page")) or 1, 1)
    today = desk_today(request)
    async with AsyncSession(desk_of(request).engine) as session:
        position = await money.fund_position(session)
        moves = await money.fund_movements(
            session,
            source=source or None,
            kind=kind or None,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
        )
        balance = await charts.fund_balance_chart(session)
        lent = await charts.lent_and_repaid_chart(session)
        expected = await charts.expected_repayments_chart(session, today=today)
        conn = await session.connection()
        first = await conn.scalar(select(func.min(movements_table.c.occurred_on)))
    years = list(range(today.year, (first.year if first else today.year) - 1, -1))
    return render(
        request,
        "fund.html",
        {
            "position": position,
            "moves": moves,
            "page": number,
            "pages": max((moves.total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "filters": {"source": source, "kind": kind},
            "sources": list(SOURCE_NAMES.items()),
            "kinds": list(KIND_NAMES.items()),
            "charts": [inline_svg(svg) for svg in (balance, lent, expected)],
            "years": years,
            "flash": await flashed(request),
        },
    )


@page
async def fund_report(request: web.Request) -> web.StreamResponse:
    """The supervisors' yearly fund report as XLSX: the workbook `bangfu-bot fund report`
    writes (loans aged on today)."""
    viewer = current_of(request).viewer
    if not viewer.county_wide:
        return refuse(request, 403, "fund_county_only")
    today = desk_today(request)
    year = _int(request.query.get("year")) or today.year
    if not 2000 <= year <= today.year:
        return refuse(request, 400, "bad_form")
    out = io.BytesIO()
    async with AsyncSession(desk_of(request).engine) as session:
        await money.fund_report_xlsx(session, year=year, today=today, out=out)
    name = say("fund_report_file", year=year)
    return web.Response(
        body=out.getvalue(),
        content_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="fund-{year}.xlsx"; '
            f"filename*=UTF-8''{quote(name, safe='')}"
        },
    )


# --- SVG under the desk's Content-Security-Policy ------------------------------------------------

_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>(.*?)</style>", re.S)


def inline_svg(svg: str) -> Markup:
    """matplotlib's SVG made safe to inline under `style-src 'self'`: its style attributes
    become presentation attributes (which the policy does not govern) and its one <style>
    element's defaults move to the root, where children inherit them."""
    defaults = ""
    found = _STYLE_ELEMENT.search(svg)
    if found:
        rule = found.group(1)
        body = rule[rule.find("{") + 1 : rule.rfind("}")]
        defaults = _attributes(body)
        svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda match: _attributes(match.group(1)), svg)
    if defaults:
        svg = svg.replace("<svg ", "<svg" + defaults + " ", 1)
    return Markup(svg)  # matplotlib's own markup, its texts escaped by it


def _attributes(style: str) -> str:
    """'fill: #fff; stroke-width: 0.8' → ' fill="#fff" stroke-width="0.8"'."""
    parts = []
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if re.fullmatch(r"[a-z-]+", name) and value:
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
    return "".join(parts)


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/loans", loan_list),
    ("GET", "/loans/{loan_id:[0-9]{1,12}}", loan_page),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/repay", repay),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/disburse", record_disbursement),
    ("POST", "/loans/{loan_id:[0-9]{1,12}}/confirm", confirm_disbursement),
    ("GET", "/fund", fund_page),
    ("GET", "/fund/report.xlsx", fund_report),
]


MONEY_TABLES = (
    "loans",
    "instalments",
    "repayments",
    "fund_movements",
    "people",
    "organisations",
)


@dataclass
class Money:
    """The county's money figures in one reading: arrears by branch and the fund's lines;
    and each scope's 工作台 panels as rendered from them (desk/views.py)."""

    arrears: money.ArrearsByBranch
    fund: list[str]
    panels: dict[Any, dict[str, Any]] = field(default_factory=dict)


async def county_money(desk: Desk) -> tuple[Money, datetime]:
    """The county's money figures as last read and when (see figures.py: kept until this
    process writes to the loans or the fund or the day turns; past `MONEY` the last reading
    is shown while the next is read)."""
    today = desk.local(desk.now()).date()
    return await desk.figures.get(
        ("money", today),
        lambda: _read_money(desk, today),
        tables=MONEY_TABLES,
        window=MONEY,
        stale=True,
    )


async def _read_money(desk: Desk, today: date) -> Money:
    async with AsyncSession(desk.engine) as session:
        arrears = await money.arrears_by_branch(session, today=today)
        conn = await session.connection()
        fund = await fund_summary(conn, today=today)
    return Money(arrears, fund.splitlines())
