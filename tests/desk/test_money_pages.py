"""借款与基金 on the desk: the loan list, a loan's record and its acts (a repayment, the
two-person disbursement), the fund's page and its report, as each role and as nobody."""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import Movement, record
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import loan_events, repayments
from bangfu_bot.members.service import person_by_id
from bangfu_bot.reports.fund import read_fund_report, write_fund_report
from bangfu_bot.reports.money import fund_position
from tests.county import bind
from tests.desk.test_login import browsers, csrf_of, scan_login, signed_in  # noqa: F401
from tests.factories import _org, make_person

DISBURSED_ON = date(2026, 3, 10)


@dataclass
class Money:
    """The fund (270,000 yuan) and loans: 王德福's (桃源村, disbursed), 李大山's (李家村,
    guaranteed, waiting for its disbursement), 河西镇's 周河 (another township, disbursed);
    钱进 and 吴刚 are the department's second and third staff."""

    wang_loan: int
    li_loan: int
    far_loan: int
    qian_id: int
    qian_number: str
    wu_number: str
    supervisor_number: str


async def lend(bot: Any, member_id: int, staff: dict[str, int], *, to: str) -> int:
    """A loan of 5,000 yuan taken through the procedure up to `to` (guaranteed, disbursed)."""
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        member = await person_by_id(conn, member_id)
        sun = await person_by_id(conn, staff["sun"])
        qian = await person_by_id(conn, staff["qian"])
        officer = await person_by_id(conn, staff["officer"])
        loan_id = await loans.apply(
            conn,
            member=member,
            amount_fen=500_000,
            project="生猪养殖",
            earnings="年底出栏 10 头",
            schedule_kind="yearly",
            terms=loans.Terms(),
            now=now,
        )
        await loans.decide(
            conn, loan_id=loan_id, officer=officer, approve=True, reason=None, now=now
        )
        await loans.inspect(
            conn,
            loan_id=loan_id,
            staff=sun,
            on=date(2026, 3, 5),
            inspector="孙丽",
            finding="猪圈已建好",
            passed=True,
            now=now,
        )
        await loans.guarantee(
            conn, loan_id=loan_id, staff=sun, guarantor="镇财政所", document="财担7号", now=now
        )
        if to == "disbursed":
            await loans.record_disbursement(
                conn,
                loan_id=loan_id,
                staff=sun,
                on=DISBURSED_ON,
                document=f"放款单{loan_id:03d}",
                now=now,
            )
            await loans.confirm_disbursement(conn, loan_id=loan_id, staff=qian, now=now)
    return loan_id


@pytest.fixture
async def money(bot: Any, county: Any) -> Money:
    engine, now = bot.services.engine, bot.clock.now()
    qian, qian_number = await make_person(
        engine, now, name="钱进", branch=None, roles=("department",), serial=885
    )
    _, wu_number = await make_person(
        engine, now, name="吴刚", branch=None, roles=("department",), serial=886
    )
    _, supervisor_number = await make_person(
        engine, now, name="钱监督", branch=None, roles=("supervisor",), serial=901
    )
    async with engine.begin() as conn:
        far_town = await _org(conn, "committee", "河西镇党委", county.tree.county)
        far_branch = await _org(conn, "branch", "河西村党支部", far_town)
        await record(
            conn,
            kind=Movement.CONTRIBUTION,
            amount_fen=27_000_000,
            source="county_finance",
            document="县财政拨款〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=now,
        )
    far_member, _ = await make_person(engine, now, name="周河", branch=far_branch, serial=902)
    far_officer, _ = await make_person(
        engine, now, name="何平", branch=far_branch, roles=("member", "committee"), serial=903
    )
    staff = {"sun": county.staff_id, "qian": qian, "officer": county.officer_id}
    wang_loan = await lend(bot, county.wang_id, staff, to="disbursed")
    li_loan = await lend(bot, county.li_id, staff, to="guaranteed")
    far_loan = await lend(bot, far_member, {**staff, "officer": far_officer}, to="disbursed")
    return Money(wang_loan, li_loan, far_loan, qian, qian_number, wu_number, supervisor_number)


async def login(bot: Any, chat: Any, browsers: Any, openid: str, name: str, number: str) -> Any:
    browser, _ = await signed_in(bot, chat, browsers, openid, name, number)
    return browser


async def repayments_of(bot: Any, loan_id: int) -> list[Any]:
    async with bot.services.engine.connect() as conn:
        return list(
            await conn.execute(
                select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id)
            )
        )


async def flash_of(html: str) -> str:
    found = re.search(r'<p class="flash (\w+)" role="status">([^<]*)</p>', html)
    return f"{found.group(1)}:{found.group(2)}" if found else ""


# --- as each role and as nobody ------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/desk/loans", "/desk/loans/1", "/desk/fund", "/desk/fund/report.xlsx?year=2026"]
)
async def test_nobody_is_sent_to_the_login_page(bot: Any, browsers: Any, path: str) -> None:
    status, where, _ = await browsers().get(path)
    assert (status, where) == (200, "/desk/login")


@pytest.mark.parametrize("act", ["repay", "disburse", "confirm"])
async def test_nobody_may_post_a_loan_act(
    bot: Any, county: Any, money: Money, browsers: Any, act: str
) -> None:
    status, _, html = await browsers().post(
        f"/desk/loans/{money.wang_loan}/{act}",
        {"csrf": "x", "amount": "100", "receipt": "R1", "paid_on": "2026-11-10"},
    )
    assert status == 403 and "请先登录" in html
    assert await repayments_of(bot, money.wang_loan) == []


async def test_the_department_sees_every_loan_and_the_fund(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    status, _, html = await sun.get("/desk/loans")
    assert status == 200 and "共 3 笔" in html
    for name in ("王德福", "李大山", "周河"):
        assert name in html
    assert "已放款，按计划还款" in html and "已担保，等放款" in html and "/desk/fund" in html
    _, _, html = await sun.get("/desk/loans", status="guaranteed")
    assert "共 1 笔" in html and "李大山" in html and "王德福" not in html
    _, _, html = await sun.get("/desk/loans", q="' OR 1=1 --")
    assert "没有符合条件的借款" in html
    status, _, html = await sun.get(f"/desk/loans/{money.wang_loan}")
    assert status == 200 and county.wang_number in html  # the department files: whole ID
    assert "登记还款" in html and "还款计划" in html and "2027年12月31日" in html
    assert "工作台" in html and "放款单" in html
    status, _, html = await sun.get("/desk/fund")
    assert status == 200 and "对账" in html and "平（差 0）" in html
    assert html.count("<svg") == 3 and "帮扶基金余额" in html and "今后十二个月预计还款" in html
    assert "县财政拨款〔2026〕3号" in html and "借款发放" in html
    _, _, home = await sun.get("/desk")
    assert "借款按逾期分" in home and "/desk/loans?overdue=current" in home
    # A bucket's link lists the loans it counts: both disbursed loans are on schedule.
    _, _, html = await sun.get("/desk/loans", overdue="current")
    assert "共 2 笔" in html and "王德福" in html and "李大山" not in html
    _, _, html = await sun.get("/desk/loans", overdue="31_90")
    assert "共 0 笔" in html and '<option value="31_90" selected>' in html
    _, _, html = await sun.get("/desk/loans", overdue="<b>")  # not a bucket: no filter
    assert "共 3 笔" in html and "&lt;b&gt;" not in html


async def test_a_township_officer_sees_their_township_only(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    zhao = await login(bot, chat, browsers, "o-zhao", "赵明", county.officer_number)
    _, _, html = await zhao.get("/desk/loans")
    assert "共 2 笔" in html and "王德福" in html and "李大山" in html and "周河" not in html
    assert "/desk/fund" not in html.replace('href="/desk/loans"', "")
    _, _, html = await zhao.get("/desk/loans", township="999")  # not theirs to widen
    assert "周河" not in html
    status, _, html = await zhao.get(f"/desk/loans/{money.wang_loan}")
    assert status == 200 and county.wang_number not in html  # ID masked for the township
    assert "13800138000" in html  # officers call members: the phone in full
    assert 'action="/desk/loans/' not in html  # repayments are the department's
    status, _, html = await zhao.get(f"/desk/loans/{money.far_loan}")
    assert status == 403 and "不在您的管辖范围" in html
    _, _, page_html = await zhao.get("/desk")
    assert "借款按逾期分" in page_html
    status, _, _ = await zhao.post(
        f"/desk/loans/{money.far_loan}/repay",
        {"csrf": csrf_of(page_html), "amount": "100", "receipt": "R1", "paid_on": "2026-11-10"},
    )
    assert status == 403
    status, _, html = await zhao.get("/desk/fund")
    assert status == 403 and "只给县委组织部和监督小组看" in html
    assert (await zhao.get("/desk/fund/report.xlsx"))[0] == 403
    assert (await zhao.get("/desk/loans/999999"))[0] == 404


async def test_a_secretary_sees_their_branch_and_a_member_never_gets_in(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    zhang = await login(bot, chat, browsers, "o-zhang", "张建国", county.secretary_number)
    _, _, html = await zhang.get("/desk/loans")
    assert "共 1 笔" in html and "王德福" in html and "李大山" not in html
    assert (await zhang.get(f"/desk/loans/{money.li_loan}"))[0] == 403
    status, _, html = await zhang.get(f"/desk/loans/{money.wang_loan}")
    assert status == 200 and 'action="/desk/loans/' not in html
    assert "借款按逾期分" not in (await zhang.get("/desk"))[2]
    assert (await zhang.get("/desk/fund"))[0] == 403
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    assert "只给组织部" in await scan_login(bot, browsers(), wang)


async def test_the_supervision_group_sees_everything_and_changes_nothing(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    watcher = await login(bot, chat, browsers, "o-jian", "钱监督", money.supervisor_number)
    _, _, html = await watcher.get("/desk/loans")
    assert "共 3 笔" in html and "13800138000" not in html  # phones masked
    status, _, html = await watcher.get(f"/desk/loans/{money.wang_loan}")
    assert status == 200 and 'action="/desk/loans/' not in html
    status, _, _ = await watcher.post(
        f"/desk/loans/{money.wang_loan}/repay",
        {"csrf": csrf_of(html), "amount": "100", "receipt": "R1", "paid_on": "2026-11-10"},
    )
    assert status == 403
    status, _, _ = await watcher.post(
        f"/desk/loans/{money.li_loan}/disburse",
        {"csrf": csrf_of(html), "on": "2026-11-10", "document": "放款单9"},
    )
    assert status == 403
    assert await repayments_of(bot, money.wang_loan) == []
    assert (await watcher.get("/desk/fund"))[0] == 200


# --- a repayment ---------------------------------------------------------------------------


async def test_a_repayment_recorded_on_the_desk_reaches_the_member(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    wang = chat("o-wang")
    await bind(wang, "王德福", county.wang_number)
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await sun.get(f"/desk/loans/{money.wang_loan}")
    form = {"csrf": csrf_of(html), "receipt": "收据 0098", "paid_on": "2026-11-10"}
    _, path, html = await sun.post(
        f"/desk/loans/{money.wang_loan}/repay", {**form, "amount": "1000.50"}
    )
    assert path == f"/desk/loans/{money.wang_loan}"
    assert (await flash_of(html)).startswith("done:已记下还款 1000.50元：利息")
    (paid,) = await repayments_of(bot, money.wang_loan)
    assert paid.amount_fen == 100_050 and paid.interest_fen > 0
    assert paid.interest_fen + paid.principal_fen == 100_050 and paid.receipt == "收据 0098"
    assert "收据 0098" in html and "1000.50元" in html  # the record shows it, split
    await bot.flush_outbox()
    told = [text for text in wang.pushed() if "收到一笔还款" in text]
    assert len(told) == 1 and "收据 0098" in told[0] and "1000.50元" in told[0]

    # The same receipt again: one takes effect.
    _, _, html = await sun.post(f"/desk/loans/{money.wang_loan}/repay", {**form, "amount": "100"})
    assert "refused:" in await flash_of(html) and "已经登记过了" in html
    # Zero, negative and more than owed: refused with what is owed, nothing written.
    for amount in ("0", "-5", "0.00"):
        _, _, html = await sun.post(
            f"/desk/loans/{money.wang_loan}/repay",
            {**form, "receipt": f"R-{amount}", "amount": amount},
        )
        refusal = await flash_of(html)
        assert refusal.startswith("refused:还款金额要大于 0") and "最多应还" in refusal
    _, _, html = await sun.post(
        f"/desk/loans/{money.wang_loan}/repay", {**form, "receipt": "R-big", "amount": "9000"}
    )
    assert "多了不能收" in await flash_of(html) and "最多应还" in await flash_of(html)
    for amount in ("12.345", "一千", ""):
        _, _, html = await sun.post(
            f"/desk/loans/{money.wang_loan}/repay",
            {**form, "receipt": "R-x", "amount": amount},
        )
        assert "最多两位小数" in await flash_of(html)
    _, _, html = await sun.post(
        f"/desk/loans/{money.wang_loan}/repay",
        {**form, "receipt": "R-later", "amount": "10", "paid_on": "2026-11-11"},
    )
    assert "不能晚于今天" in await flash_of(html)
    assert len(await repayments_of(bot, money.wang_loan)) == 1
    async with bot.services.engine.connect() as conn:
        moves = await conn.scalar(
            select(func.count()).where(
                fund_movements.c.loan_id == money.wang_loan,
                fund_movements.c.kind.in_(["principal_in", "interest_in"]),
            )
        )
    assert moves == 2


async def test_a_forged_form_token_writes_nothing(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    status, _, html = await sun.post(
        f"/desk/loans/{money.wang_loan}/repay",
        {"csrf": "forged", "amount": "100", "receipt": "R1", "paid_on": "2026-11-10"},
    )
    assert status == 403 and "表单已失效" in html
    assert await repayments_of(bot, money.wang_loan) == []


async def test_nobody_records_a_repayment_of_their_own_loan(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    engine, now = bot.services.engine, bot.clock.now()
    zhou, number = await make_person(
        engine,
        now,
        name="周干部",
        branch=county.tree.branch,
        roles=("member", "department"),
        serial=910,
    )
    staff = {"sun": county.staff_id, "qian": money.qian_id, "officer": county.officer_id}
    own = await lend(bot, zhou, staff, to="disbursed")
    browser = await login(bot, chat, browsers, "o-zhou", "周干部", number)
    status, _, html = await browser.get(f"/desk/loans/{own}")
    assert status == 200 and 'action="/desk/loans/' not in html
    _, _, html = await browser.post(
        f"/desk/loans/{own}/repay",
        {"csrf": csrf_of(html), "amount": "100", "receipt": "R1", "paid_on": "2026-11-10"},
    )
    assert "自己的事不能自己办" in await flash_of(html)
    assert await repayments_of(bot, own) == []


# --- the two-person disbursement -----------------------------------------------------------


async def test_the_maker_of_a_disbursement_is_never_its_checker(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    li = chat("o-li")
    await bind(li, "李大山", county.li_number)
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await sun.get(f"/desk/loans/{money.li_loan}")
    assert "登记放款" in html
    _, _, html = await sun.post(
        f"/desk/loans/{money.li_loan}/disburse",
        {"csrf": csrf_of(html), "on": "2026-11-10", "document": "放款单 077"},
    )
    assert "done:已登记放款" in await flash_of(html)
    assert "要由另一位同志复核" in html and "复核，确认放款" not in html
    _, _, html = await sun.post(
        f"/desk/loans/{money.li_loan}/confirm", {"csrf": csrf_of(html), "checked": "1"}
    )
    assert "登记的人不能自己复核" in await flash_of(html)
    qian = await login(bot, chat, browsers, "o-qian", "钱进", money.qian_number)
    _, _, html = await qian.get(f"/desk/loans/{money.li_loan}")
    assert "孙丽登记了放款" in html and "放款单 077" in html
    _, _, html = await qian.post(f"/desk/loans/{money.li_loan}/confirm", {"csrf": csrf_of(html)})
    assert "请先核对凭证" in await flash_of(html)  # the box not ticked
    _, _, html = await qian.post(
        f"/desk/loans/{money.li_loan}/confirm", {"csrf": csrf_of(html), "checked": "1"}
    )
    assert "done:已确认放款" in await flash_of(html)
    async with bot.services.engine.connect() as conn:
        events = list(
            await conn.execute(
                select(loan_events.c.to_status, loan_events.c.channel)
                .where(loan_events.c.loan_id == money.li_loan)
                .order_by(loan_events.c.id)
            )
        )
    assert [tuple(e) for e in events[-2:]] == [("recorded", "web"), ("disbursed", "web")]
    await bot.flush_outbox()
    assert any("已经放款" in text for text in li.pushed())


async def test_two_confirms_at_once_move_the_money_once(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        sun = await person_by_id(conn, county.staff_id)
        await loans.record_disbursement(
            conn,
            loan_id=money.li_loan,
            staff=sun,
            on=date(2026, 11, 10),
            document="放款单 078",
            now=now,
        )
    qian = await login(bot, chat, browsers, "o-qian", "钱进", money.qian_number)
    wu = await login(bot, chat, browsers, "o-wu", "吴刚", money.wu_number)
    forms = []
    for browser in (qian, wu):
        _, _, html = await browser.get(f"/desk/loans/{money.li_loan}")
        assert "复核，确认放款" in html
        forms.append({"csrf": csrf_of(html), "checked": "1"})
    answers = await asyncio.gather(
        *(
            browser.post(f"/desk/loans/{money.li_loan}/confirm", form)
            for browser, form in zip((qian, wu), forms, strict=True)
        )
    )
    flashes = sorted([await flash_of(html) for _, _, html in answers])
    assert flashes[0].startswith("done:已确认放款"), flashes
    assert flashes[1].startswith("refused:这笔借款刚由") and "办过了" in flashes[1], flashes
    async with bot.services.engine.connect() as conn:
        out = await conn.scalar(
            select(func.count()).where(
                fund_movements.c.loan_id == money.li_loan, fund_movements.c.kind == "loan_out"
            )
        )
    assert out == 1
    async with AsyncSession(bot.services.engine) as session:
        assert (await fund_position(session)).reconciliation_fen == 0
    _, _, html = await qian.get("/desk/fund")
    assert "平（差 0）" in html


# --- the fund's report ---------------------------------------------------------------------


async def test_the_fund_report_is_the_cli_workbook(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    watcher = await login(bot, chat, browsers, "o-jian", "钱监督", money.supervisor_number)
    async with watcher.session.get(bot.url("/desk/fund/report.xlsx"), params={"year": "2026"}) as r:
        assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
        body = await r.read()
    got = load_workbook(io.BytesIO(body))
    async with bot.services.engine.connect() as conn:
        data = await read_fund_report(conn, year=2026, today=date(2026, 11, 10))
    expected_out = io.BytesIO()
    write_fund_report(data, expected_out)
    expected = load_workbook(io.BytesIO(expected_out.getvalue()))
    assert got.sheetnames == expected.sheetnames
    for name in got.sheetnames:
        assert [list(row) for row in got[name].values] == [
            list(row) for row in expected[name].values
        ]
    cells = [c for sheet in got for row in sheet.values for c in row if c is not None]
    assert "县财政拨款〔2026〕3号" in cells and "2026年帮扶基金报告" in cells
    assert (await watcher.get("/desk/fund/report.xlsx", year="1999"))[0] == 400


async def test_the_charts_carry_no_inline_style(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    _, _, html = await sun.get("/desk/fund")
    assert "style=" not in html and "<style" not in html  # the page's CSP forbids both
    assert 'fill="#ffffff"' in html
    _, _, html = await sun.get("/desk/fund", kind="loan_out")
    assert "共 2 笔" in html and "县财政拨款" not in html


async def test_one_receipt_posted_twice_at_once_is_booked_once(
    bot: Any, county: Any, chat: Any, money: Money, browsers: Any
) -> None:
    sun = await login(bot, chat, browsers, "o-sun", "孙丽", county.staff_number)
    qian = await login(bot, chat, browsers, "o-qian", "钱进", money.qian_number)
    forms = []
    for browser in (sun, qian):
        _, _, html = await browser.get(f"/desk/loans/{money.wang_loan}")
        forms.append(
            {"csrf": csrf_of(html), "amount": "300", "receipt": "R-7", "paid_on": "2026-11-10"}
        )
    answers = await asyncio.gather(
        *(
            browser.post(f"/desk/loans/{money.wang_loan}/repay", form)
            for browser, form in zip((sun, qian), forms, strict=True)
        )
    )
    flashes = sorted([await flash_of(html) for _, _, html in answers])
    assert flashes[0].startswith("done:已记下还款 300元") and flashes[1].startswith("refused:")
    assert len(await repayments_of(bot, money.wang_loan)) == 1
    async with AsyncSession(bot.services.engine) as session:
        assert (await fund_position(session)).reconciliation_fen == 0
