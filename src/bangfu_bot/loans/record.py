"""A loan as the one deciding on it reads it: a summary that fits a phone screen (in the
review prompt) and the full record (详情).

Plain reads, no writes and no policy: whoever shows them checks first that the reader may
act on the loan. Kept here, not in the chat, so the desk can show the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.models import ledger_entries
from bangfu_bot.common.dates import chinese_date, month_day
from bangfu_bot.common.money import yuan
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.prompts import plan_text
from bangfu_bot.loans.service import say
from bangfu_bot.members.models import organisations, people

# The statuses of a loan whose money went out: only these can have been behind.
LENT = (L.DISBURSED, L.REPAID, L.WRITTEN_OFF)


@dataclass(frozen=True)
class History:
    """A borrower's earlier loans, as a decider weighs them."""

    count: int
    repaid: int
    written_off: int
    late_instalments: int  # instalments whose principal was not all paid by their day
    behind_now: int  # of those, instalments past due and still unpaid today
    open_other: int  # another loan still under way


async def history(conn: AsyncConnection, person_id: int, *, besides: int, today: date) -> History:
    """The borrower's other loans: how many, how they ended, and the instalments that were
    (or are) behind. An instalment was behind when the principal repaid on or before its
    day fell short of the principal due by then."""
    rows = (
        await conn.execute(
            select(loans.c.id, loans.c.status)
            .where(loans.c.person_id == person_id, loans.c.id != besides)
            .order_by(loans.c.id)
        )
    ).all()
    late = behind = open_other = 0
    for row in rows:
        if row.status not in LENT:
            open_other += row.status in (L.APPLIED, L.APPROVED, L.INSPECTED, L.GUARANTEED)
            continue
        open_other += row.status == L.DISBURSED
        plan = (
            await conn.execute(
                select(instalments.c.due_on, instalments.c.principal_fen)
                .where(instalments.c.loan_id == row.id)
                .order_by(instalments.c.number)
            )
        ).all()
        paid = (
            await conn.execute(
                select(repayments.c.paid_on, repayments.c.principal_fen).where(
                    repayments.c.loan_id == row.id
                )
            )
        ).all()
        due_so_far = 0
        for item in plan:
            due_so_far += int(item.principal_fen)
            if item.due_on > today:
                break
            paid_by_day = sum(int(p.principal_fen) for p in paid if p.paid_on <= item.due_on)
            if paid_by_day < due_so_far:
                late += 1
                paid_now = sum(int(p.principal_fen) for p in paid)
                behind += paid_now < due_so_far and row.status == L.DISBURSED
    return History(
        count=len(rows),
        repaid=sum(row.status == L.REPAID for row in rows),
        written_off=sum(row.status == L.WRITTEN_OFF for row in rows),
        late_instalments=late,
        behind_now=behind,
        open_other=open_other,
    )


def _history_line(past: History) -> str:
    if past.count == 0:
        return say("summary_no_history")
    parts = [say("summary_history", count=past.count, repaid=past.repaid)]
    if past.late_instalments:
        parts.append(say("summary_late", count=past.late_instalments))
    else:
        parts.append(say("summary_never_late"))
    if past.behind_now:
        parts.append(say("summary_behind_now", count=past.behind_now))
    if past.written_off:
        parts.append(say("summary_written_off", count=past.written_off))
    if past.open_other:
        parts.append(say("summary_open_other", count=past.open_other))
    return say("summary_joiner").join(parts)


def _rate(bp: int) -> str:
    whole, rest = divmod(bp, 100)
    return say("rate", rate=f"{whole}.{rest:02d}".rstrip("0").rstrip("."))


async def _borrower(conn: AsyncConnection, loan: Any) -> tuple[str, str]:
    row = (
        await conn.execute(
            select(people.c.name, organisations.c.name.label("branch"))
            .select_from(people.outerjoin(organisations, organisations.c.id == people.c.branch_id))
            .where(people.c.id == loan.person_id)
        )
    ).one()
    return str(row.name), str(row.branch or "")


async def _in_ledger(conn: AsyncConnection, person_id: int, year: int) -> bool:
    found = (
        await conn.execute(
            select(ledger_entries.c.id).where(
                ledger_entries.c.person_id == person_id,
                ledger_entries.c.year == year,
                ledger_entries.c.status == "active",
            )
        )
    ).first()
    return found is not None


async def loan_summary(conn: AsyncConnection, loan_id: int, *, today: date) -> str:
    """What a decider needs on one screen: amount, term and repayment, the project and
    what it should earn, the guarantor, and the borrower's record with earlier loans."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).first()
    if loan is None:
        return say("not_found")
    lines = [
        say(
            "summary_terms",
            amount=yuan(loan.amount_fen),
            years=loan.term_years,
            schedule=say("schedule_" + loan.schedule_kind),
            rate=_rate(loan.annual_rate_bp),
        ),
        say("summary_project", project=loan.project, earnings=_short(loan.earnings)),
        say("summary_guarantor", guarantor=loan.guarantor)
        if loan.guarantor
        else say("summary_no_guarantor"),
        _history_line(await history(conn, loan.person_id, besides=loan_id, today=today)),
    ]
    if await _in_ledger(conn, loan.person_id, today.year):
        lines.append(say("summary_in_ledger", year=today.year))
    return "\n".join(say("bullet", text=line) for line in lines)


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + say("ellipsis")


async def loan_record(conn: AsyncConnection, loan_id: int, *, today: date, tz: ZoneInfo) -> str:
    """详情: everything the loan holds, in the order it happened (no ID number, no phone)."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).first()
    if loan is None:
        return say("not_found")
    name, branch = await _borrower(conn, loan)
    lines = [
        say(
            "record_header",
            name=name,
            branch=branch,
            id=loan.id,
            day=chinese_date(loan.created_at.astimezone(tz)),
            status=say("status_" + loan.status),
        ),
        say(
            "summary_terms",
            amount=yuan(loan.amount_fen),
            years=loan.term_years,
            schedule=say("schedule_" + loan.schedule_kind),
            rate=_rate(loan.annual_rate_bp),
        ),
        say("record_project", project=loan.project, earnings=loan.earnings),
    ]
    if loan.inspected_on:
        lines.append(
            say(
                "record_inspection",
                day=month_day(loan.inspected_on),
                inspector=loan.inspector or "",
                finding=loan.inspection_finding or "",
            )
        )
    lines.append(
        say("record_guarantee", guarantor=loan.guarantor, document=loan.guarantee_document or "")
        if loan.guarantor
        else say("summary_no_guarantor")
    )
    if loan.disbursed_on:
        lines.append(
            say(
                "record_disbursed",
                day=chinese_date(loan.disbursed_on),
                document=loan.disbursement_document or "",
            )
        )
        plan = await plan_text(conn, loan_id)
        if plan:
            lines.extend([say("record_plan_header"), plan])
    paid = (
        await conn.execute(
            select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id)
        )
    ).all()
    for row in paid:
        lines.append(
            say(
                "record_repayment",
                day=month_day(row.paid_on),
                amount=yuan(row.amount_fen),
                interest=yuan(row.interest_fen),
                principal=yuan(row.principal_fen),
                receipt=row.receipt,
            )
        )
    if loan.write_off_reason:
        lines.append(say("record_write_off", reason=loan.write_off_reason))
    lines.append(_history_line(await history(conn, loan.person_id, besides=loan_id, today=today)))
    lines.append(say("record_history_header"))
    events = (
        await conn.execute(
            select(loan_events, people.c.name)
            .select_from(loan_events.outerjoin(people, people.c.id == loan_events.c.actor_id))
            .where(loan_events.c.loan_id == loan_id)
            .order_by(loan_events.c.id)
        )
    ).all()
    for row in events:
        lines.append(
            say(
                "record_history_line",
                day=month_day(row.at.astimezone(tz)),
                status=say("status_" + row.to_status),
                who=row.name or say("system"),
                reason=say("record_reason", reason=row.reason) if row.reason else "",
            )
        )
    return "\n".join(lines)
