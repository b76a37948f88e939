"""`seed_demo`: the fictional county 示范县 — 3 township committees, 8 branches, 300 people,
a year's ledger, cases at every stage a case can rest at, a fund with its contributions and
loans at every stage.

Everything is made up and valid in form: names of 2–3 Chinese characters, ID numbers with the
right check character (under region code 529901, which no real county has), mobile numbers
1[3-9]xxxxxxxxx. The random generator is seeded, so every run builds the same county.
People go in through the roster import, exactly as a department's file would; cases, their
audit trail, evaluations, notices, to-dos and ledger entries are plain inserts that agree
with each other and with the transition table. A case rests at every status but `filed`,
which the procedure passes through on its way into the ledger in one transaction.

The fund and the loans go through their own services, as staff would record them: the
contributions through `fund.service.contribute`, each loan through `loans.service` step by step
(apply, decide, inspect, guarantee, record and confirm the disbursement by two different
staff members, repay) with the to-dos `loans.prompts.after` leaves, so the transition table,
the schedules and the fund's movements agree and the fund reconciles to the fen. Dates are
counted back from the seed's clock: one loan is overdue, one partly and one fully repaid.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.cases.eligibility import Rule, judge, rule_for
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases, evaluations, public_notices
from bangfu_bot.cases.procedure import Rules, chinese_date, evaluation_preview, hands, notice_end
from bangfu_bot.cases.transitions import load_case
from bangfu_bot.cases.transitions import say as case_say
from bangfu_bot.common.idnumbers import check_character
from bangfu_bot.common.money import yuan
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.fund.service import contribute, figures_now
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans import prompts as loan_prompts
from bangfu_bot.loans import service as loan_service
from bangfu_bot.loans.enums import LoanStatus
from bangfu_bot.loans.models import loans
from bangfu_bot.members.models import organisations, people, person_roles
from bangfu_bot.members.roster import HEADERS, RosterRow, import_roster
from bangfu_bot.members.service import Person, person_by_id
from bangfu_bot.notify.intents import add_todo
from bangfu_bot.reports.fund import reconciliation_fen
from bangfu_bot.seed.history import seed_history
from bangfu_bot.texts import texts

__all__ = [
    "DEMO_COUNTY",
    "DemoSummary",
    "add_arguments",
    "demo_people",
    "run_seed_demo",
    "seed_demo",
]

DEMO_COUNTY = "示范县委组织部"
REGION = "529901"
SEED = 1949
SHANGHAI = ZoneInfo("Asia/Shanghai")
FOUNDING = date(1949, 10, 1)

# (党委, 城乡, committee officers, ((支部, people, secretaries), ...)); 296 in branches.
TOWNSHIPS: tuple[tuple[str, str, int, tuple[tuple[str, int, int], ...]], ...] = (
    (
        "青山镇党委",
        "农村",
        2,
        (("桃源村党支部", 42, 2), ("李家村党支部", 38, 1), ("石门村党支部", 35, 1)),
    ),
    (
        "河口乡党委",
        "农村",
        1,
        (("河口村党支部", 40, 1), ("柳树湾村党支部", 36, 1), ("新田村党支部", 33, 2)),
    ),
    ("城关镇党委", "城镇", 1, (("东街社区党支部", 37, 1), ("西街社区党支部", 35, 1))),
)
DEPARTMENT_STAFF = 3
SUPERVISORS = 1

# The apply flow's categories (conversations/apply.toml), so seeded cases read like real ones.
OLD = "年纪大、没劳力、没退休金"
SKILLS = "缺技术、缺资金"
ILLNESS = "生病"
LAID_OFF = "企业下岗"
OTHER = "其他"
HELP_RELIEF = "走访慰问、救济"
HELP_LOAN = "小额借款发展生产"
HELP_TRAINING = "技术培训"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶"
    "程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺"
    "顾郝龚邵万钱严覃武戴莫孔向汤"
)
MALE_CHARS = "国建明华军平志文德福贵生成忠富强林山海荣发光永祥春金安顺才兴学云义昌东贤良树根"
FEMALE_CHARS = "秀英兰芳玉梅珍桂花凤琴霞红丽燕萍娟琼翠菊美莲香素巧银彩月"
RELATIONS_OLD = ("配偶", "儿子", "孙子女")
HEALTH = (
    "身体好，在外打工",
    "身体好，在家种地",
    "在读小学",
    "在读初中",
    "身体不好，常年吃药",
    "残疾，干不了重活",
    "年纪大，在家",
)

# What each category's household is like; one is picked per case.
SITUATIONS = {
    OLD: (
        "老两口都七十多了，干不动活，没有退休金，靠一点地过日子。",
        "一个人住，儿女在外地，身体不好，家里没有收入来源。",
    ),
    SKILLS: (
        "想养猪，没有本钱，也不懂技术，家里一直种玉米。",
        "种了两亩烤烟，想扩大，缺资金，缺技术。",
    ),
    ILLNESS: (
        "老伴得了慢性病，每年看病花一万多，欠了债。",
        "自己去年做了手术，干不了重活，孩子还在读书。",
    ),
    LAID_OFF: (
        "原来在县水泥厂上班，厂子关了，年纪大找不到活。",
        "企业改制下岗，没有生活补助，老伴也没有工作。",
    ),
    OTHER: ("房子被今年的大水冲坏了一半，正在借钱修。",),
}
OTHER_CAUSE = "房子被水冲坏"


@dataclass(frozen=True)
class DemoPerson:
    """One made-up person of the demo county, as a roster line holds them."""

    name: str
    gender: str
    birth_date: date
    joined_on: date | None
    id_number: str = field(repr=False)
    phone: str = field(repr=False)
    committee: str | None
    branch: str | None
    roles: tuple[str, ...]
    urban_rural: str | None
    pre1949: bool = False

    def row(self, line: int) -> RosterRow:
        """The roster line the import reads."""
        values = dict(
            zip(
                HEADERS,
                (
                    self.name,
                    self.gender,
                    self.birth_date,
                    self.joined_on,
                    self.id_number,
                    self.phone,
                    self.committee,
                    self.branch,
                    "、".join(self.roles),
                    self.urban_rural,
                ),
                strict=True,
            )
        )
        return RosterRow(line, values)


@dataclass(frozen=True)
class DemoSummary:
    """What the demo county holds (counted in the database, so a second run tells the same)."""

    created: bool
    county: str
    year: int
    townships: int
    branches: int
    people: int
    secretaries: int
    committee_officers: int
    department_staff: int
    supervisors: int
    pre1949: int
    ledger_entries: int
    cases: dict[str, int]
    loans: dict[str, int]
    fund_raised_fen: int
    fund_outstanding_fen: int
    fund_principal_in_fen: int
    fund_interest_in_fen: int
    reconciliation_fen: int

    def lines(self) -> list[str]:
        """The summary as the operator reads it."""
        say = texts("bangfu_bot.seed")
        statuses = say["status_separator"].join(
            say["status_item"].format(status=case_say(f"status_{status}"), count=count)
            for status, count in sorted(
                self.cases.items(), key=lambda item: (-item[1], _rank(item[0]))
            )
        )
        return [
            say["created" if self.created else "existed"],
            say["tree"].format(
                townships=self.townships, branches=self.branches, people=self.people
            ),
            say["roles"].format(
                secretaries=self.secretaries,
                committee=self.committee_officers,
                department=self.department_staff,
                supervisors=self.supervisors,
                pre1949=self.pre1949,
            ),
            say["ledger"].format(
                year=self.year,
                ledger=self.ledger_entries,
                cases=sum(self.cases.values()),
                statuses=statuses,
            ),
            say["loans"].format(
                loans=sum(self.loans.values()),
                statuses=say["status_separator"].join(
                    say["status_item"].format(status=say.get(f"loan_{status}", status), count=count)
                    for status, count in sorted(
                        self.loans.items(), key=lambda item: _loan_rank(item[0])
                    )
                ),
                raised=yuan(self.fund_raised_fen),
                outstanding=yuan(self.fund_outstanding_fen),
                repaid=yuan(self.fund_principal_in_fen),
                interest=yuan(self.fund_interest_in_fen),
                balanced=say["balanced"]
                if self.reconciliation_fen == 0
                else say["unbalanced"].format(amount=yuan(abs(self.reconciliation_fen))),
            ),
        ]


# --- the roster ----------------------------------------------------------------------------


class _Maker:
    """Unique names, ID numbers and phone numbers from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: set[str] = set()
        self.ids: set[str] = set()
        self.phones: set[str] = set()

    def name(self, gender: str) -> str:
        chars = MALE_CHARS if gender == "男" else FEMALE_CHARS
        while True:
            given = "".join(self.rng.choice(chars) for _ in range(self.rng.choice((1, 2, 2))))
            name = self.rng.choice(SURNAMES) + given
            # Unique names keep 绑定 (name + last six ID characters) and persona search plain.
            if name not in self.names:
                self.names.add(name)
                return name

    def id_number(self, born: date, gender: str) -> str:
        while True:
            # The 17th character is odd for men and even for women.
            serial = self.rng.randrange(0, 100) * 10 + self.rng.choice(
                (1, 3, 5, 7, 9) if gender == "男" else (0, 2, 4, 6, 8)
            )
            first = f"{REGION}{born:%Y%m%d}{serial:03d}"
            if first not in self.ids:
                self.ids.add(first)
                return first + check_character(first)

    def phone(self) -> str:
        while True:
            number = (
                "1"
                + self.rng.choice("3456789")
                + "".join(self.rng.choice("0123456789") for _ in range(9))
            )
            if number not in self.phones:
                self.phones.add(number)
                return number

    def day(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randrange((last - first).days + 1))

    def person(
        self,
        *,
        born: tuple[int, int],
        roles: tuple[str, ...],
        committee: str | None,
        branch: str | None,
        urban_rural: str | None,
        male_share: float = 0.7,
        pre1949: bool = False,
    ) -> DemoPerson:
        gender = "男" if self.rng.random() < male_share else "女"
        birth = self.day(date(born[0], 1, 1), date(born[1], 12, 31))
        if "党员" not in roles:
            joined = None
        elif pre1949:
            joined = self.day(max(date(1945, 1, 1), _years_after(birth, 18)), date(1949, 9, 30))
        else:
            joined = self.day(
                _years_after(birth, 19), min(_years_after(birth, 45), date(2023, 12, 31))
            )
        return DemoPerson(
            name=self.name(gender),
            gender=gender,
            birth_date=birth,
            joined_on=joined,
            id_number=self.id_number(birth, gender),
            phone=self.phone(),
            committee=committee,
            branch=branch,
            roles=roles,
            urban_rural=urban_rural,
            pre1949=pre1949,
        )


def _years_after(day: date, years: int) -> date:
    # 29 February has no twin in most years; the day before is close enough for a roster.
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def demo_people() -> list[DemoPerson]:
    """Everyone in the demo county, always the same."""
    make = _Maker(random.Random(SEED))
    everyone: list[DemoPerson] = []
    old_members = 0
    for committee, urban_rural, officers, branches in TOWNSHIPS:
        for index, (branch, size, secretaries) in enumerate(branches):
            for position in range(size):
                where: dict[str, Any] = {
                    "committee": committee,
                    "branch": branch,
                    "urban_rural": urban_rural,
                }
                if position < secretaries:
                    person = make.person(born=(1962, 1988), roles=("支部书记", "党员"), **where)
                elif index == 0 and position < secretaries + officers:
                    person = make.person(born=(1968, 1990), roles=("党委委员", "党员"), **where)
                elif position == size - 1 and urban_rural == "农村" and old_members < 5:
                    # Pre-1949 members (建国前老党员): always on the visit list, most in need.
                    old_members += 1
                    person = make.person(
                        born=(1925, 1930), roles=("党员",), pre1949=True, male_share=0.8, **where
                    )
                else:
                    person = make.person(born=(1938, 1996), roles=("党员",), **where)
                everyone.append(person)
    county: dict[str, Any] = {"committee": None, "branch": None, "urban_rural": None}
    for _ in range(DEPARTMENT_STAFF):
        everyone.append(make.person(born=(1975, 1995), roles=("组织部",), male_share=0.5, **county))
    for _ in range(SUPERVISORS):
        everyone.append(make.person(born=(1960, 1970), roles=("监督小组",), **county))
    return _named(everyone)


# The member the README and the demo play speak of (`bangfu-bot chat --as 王德福`): an older
# member of 桃源村 with no case yet, so the chat can start with 申请. Renamed after the draw,
# so everyone else stays as the generator made them.
NAMED_MEMBER = "王德福"
NAMED_BRANCH = "桃源村党支部"


def _named(everyone: list[DemoPerson]) -> list[DemoPerson]:
    index = next(
        n
        for n, p in enumerate(everyone)
        if p.branch == NAMED_BRANCH
        and p.roles == ("党员",)
        and p.gender == "男"
        and not p.pre1949
        and p.birth_date.year < 1960
    )
    everyone[index] = replace(everyone[index], name=NAMED_MEMBER)
    return everyone


# --- seeding -------------------------------------------------------------------------------


async def seed_demo(
    engine: AsyncEngine, *, now: datetime, rules: Sequence[Rule] = (), tz: ZoneInfo = SHANGHAI
) -> DemoSummary:
    """Create the demo county unless it is there already; return what it holds.

    `rules` are the eligibility lines (conversations/eligibility.toml) used to flag seeded
    households above the line; without them none is flagged.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    year = now.astimezone(tz).year
    async with engine.connect() as conn:
        if await _complete(conn):
            return await _summary(conn, created=False, year=year)
    everyone = demo_people()
    # The import is idempotent by ID number, so a run interrupted after it just goes on.
    report = await import_roster(
        engine,
        [p.row(n) for n, p in enumerate(everyone, start=2)],
        county_name=DEMO_COUNTY,
        skip_invalid=False,
        now=now,
        today=now.astimezone(tz).date(),
    )
    if report.refused:
        raise ValueError("; ".join(report.lines()))
    async with engine.begin() as conn:
        if not await _complete(conn):
            await _Cases(conn, everyone, now=now, tz=tz, rules=list(rules)).seed()
            await seed_history(conn, year=year, now=now, tz=tz)
    async with engine.connect() as conn:
        return await _summary(conn, created=True, year=year)


async def _county_id(conn: AsyncConnection) -> int | None:
    found = (
        await conn.execute(
            select(organisations.c.id).where(
                organisations.c.kind == "county",
                organisations.c.parent_id.is_(None),
                organisations.c.name == DEMO_COUNTY,
            )
        )
    ).scalar()
    return None if found is None else int(found)


async def _complete(conn: AsyncConnection) -> bool:
    """The county exists and its cases were seeded (the last step)."""
    if await _county_id(conn) is None:
        return False
    seeded = (
        await conn.execute(
            select(func.count())
            .select_from(cases.join(people, people.c.id == cases.c.person_id))
            .where(people.c.id_number.like(f"{REGION}%"))
        )
    ).scalar_one()
    return bool(seeded)


def _demo_people_filter(branch_ids: Any) -> Any:
    # County staff have no branch; the demo's own region code tells them from a real roster's.
    return or_(
        people.c.branch_id.in_(branch_ids),
        and_(people.c.branch_id.is_(None), people.c.id_number.like(f"{REGION}%")),
    )


async def _summary(conn: AsyncConnection, *, created: bool, year: int) -> DemoSummary:
    county_id = await _county_id(conn)
    committees = select(organisations.c.id).where(organisations.c.parent_id == county_id)
    branches = select(organisations.c.id).where(organisations.c.parent_id.in_(committees))
    who = select(people.c.id).where(_demo_people_filter(branches))

    async def count(query: Any) -> int:
        return int((await conn.execute(query)).scalar_one())

    def with_role(role: str) -> Any:
        return (
            select(func.count())
            .select_from(person_roles)
            .where(person_roles.c.role == role, person_roles.c.person_id.in_(who))
        )

    statuses = (
        await conn.execute(
            select(cases.c.status, func.count())
            .where(cases.c.person_id.in_(who))
            .group_by(cases.c.status)
        )
    ).all()
    fund = await figures_now(conn)
    return DemoSummary(
        created=created,
        county=DEMO_COUNTY,
        year=year,
        townships=await count(select(func.count()).where(organisations.c.parent_id == county_id)),
        branches=await count(select(func.count()).where(organisations.c.parent_id.in_(committees))),
        people=await count(
            select(func.count()).select_from(people).where(_demo_people_filter(branches))
        ),
        secretaries=await count(with_role("secretary")),
        committee_officers=await count(with_role("committee")),
        department_staff=await count(with_role("department")),
        supervisors=await count(with_role("supervisor")),
        pre1949=await count(
            select(func.count())
            .select_from(people)
            .where(people.c.id.in_(who), people.c.joined_on < FOUNDING)
        ),
        ledger_entries=await count(
            select(func.count())
            .select_from(ledger_entries)
            .where(ledger_entries.c.person_id.in_(who), ledger_entries.c.year == year)
        ),
        cases={str(status): int(n) for status, n in statuses},
        loans={
            str(status): int(n)
            for status, n in (
                await conn.execute(
                    select(loans.c.status, func.count())
                    .where(loans.c.person_id.in_(who))
                    .group_by(loans.c.status)
                )
            ).all()
        },
        # The fund is the county's own: all its movements, as 基金 shows them.
        fund_raised_fen=fund.contributions_fen,
        fund_outstanding_fen=fund.outstanding_fen,
        fund_principal_in_fen=fund.principal_in_fen,
        fund_interest_in_fen=fund.interest_in_fen,
        reconciliation_fen=await reconciliation_fen(conn),
    )


# The procedure's steps in order: (status reached, role that moves it there, days after the
# application). A seeded case walks them up to its status, like a real one would have.
TRAIL: tuple[tuple[S, str, int], ...] = (
    (S.SUBMITTED, "member", 0),
    (S.UNDER_EVALUATION, "secretary", 3),
    (S.EVALUATED_PASSED, "secretary", 5),
    (S.ON_NOTICE, "system", 5),
    (S.NOTICE_CLOSED, "system", 12),
    (S.REPORTED, "secretary", 13),
    (S.APPROVED, "committee", 16),
    (S.FILED, "department", 20),
    (S.IN_LEDGER, "system", 20),
)
_ORDER = [status for status, _, _ in TRAIL]
RETURN_REASON = "评议记录里到会人数和签到表对不上，请重新组织评议"
EXIT_REASON = "儿子在县城稳定就业，家庭收入超过了标准"


def _steps(status: S) -> tuple[tuple[S, str, int], ...]:
    """The trail to `status`: along TRAIL, or off it where the procedure branches."""
    if status == S.EVALUATED_FAILED:
        return (*TRAIL[: _ORDER.index(S.UNDER_EVALUATION) + 1], (status, "secretary", 5))
    if status == S.RETURNED:
        return (*TRAIL[: _ORDER.index(S.REPORTED) + 1], (status, "committee", 16))
    if status == S.EXITED:
        # The day count is not used: the exit falls at the year-end review.
        return (*TRAIL, (status, "secretary", 280))
    if status == S.FILED:
        raise ValueError("a case only passes through `filed` (filing puts it in the ledger)")
    return TRAIL[: _ORDER.index(status) + 1]


def _rank(status: str) -> int:
    # The enum lists the statuses in the procedure's order.
    return list(S).index(S(status)) if status in set(S) else len(S)


def _loan_rank(status: str) -> int:
    order = list(LoanStatus)
    return order.index(LoanStatus(status)) if status in set(order) else len(order)


# --- the fund and loans ------------------------------------------------------------------------

# Contributions (资金筹集): (source, days before the seed's day, fen, 文号 with {year}).
CONTRIBUTIONS: tuple[tuple[str, int, int, str], ...] = (
    ("county_finance", 1100, 10_000_000, "示财社〔{year}〕8号"),
    ("welfare_fund", 1080, 3_000_000, "示组通〔{year}〕3号"),
    ("party_dues", 1020, 1_500_000, "示组字〔{year}〕11号"),
    ("county_finance", 735, 5_000_000, "示财社〔{year}〕5号"),
    ("committee", 700, 1_000_000, "青党发〔{year}〕12号"),
    ("committee", 698, 800_000, "河党发〔{year}〕9号"),
    ("committee", 690, 600_000, "城党发〔{year}〕7号"),
    ("donation", 500, 865_000, "党员捐款收据 {year}-001"),
    ("county_finance", 370, 5_000_000, "示财社〔{year}〕4号"),
    ("party_dues", 330, 1_200_000, "示组字〔{year}〕9号"),
    ("donation", 120, 532_050, "党员捐款收据 {year}-002"),
    ("welfare_fund", 40, 2_000_000, "示组通〔{year}〕15号"),
)


@dataclass(frozen=True)
class _LoanPlan:
    """One seeded loan: whose (a ledger household of the branch and category), how far it
    got, and when: `days_ago` counts back to the application, or to the disbursement once
    the money is out."""

    branch: str
    category: str
    stage: str
    amount_fen: int
    project: str
    earnings: str
    schedule: str
    days_ago: int


# Days after the application of each step (approved or rejected, inspected, guaranteed,
# disbursement recorded, confirmed by a second staff member).
LOAN_STEP_DAYS = {"decided": 5, "inspected": 11, "guaranteed": 15, "recorded": 20, "confirmed": 21}
PAID_OUT = ("disbursed", "part_repaid", "overdue", "repaid")
LOAN_REJECT_REASON = "家里病人离不开人，项目没人经营，建议先申请走访慰问和临时救济"
LOAN_PLAN: tuple[_LoanPlan, ...] = (
    # Two yearly instalments, both paid on the day: repaid.
    _LoanPlan(
        "桃源村党支部",
        SKILLS,
        "repaid",
        400_000,
        "生猪养殖",
        "每年出栏 6 头，约 1 万 2 千元",
        "equal_principal",
        760,
    ),
    # The first instalment paid on the day, the second not yet due.
    _LoanPlan(
        "李家村党支部",
        SKILLS,
        "part_repaid",
        500_000,
        "烤烟种植",
        "扩种 3 亩烤烟，一年多收约 9 千元",
        "equal_principal",
        400,
    ),
    # The first instalment fell due about two weeks ago and is unpaid: in arrears.
    _LoanPlan(
        "河口村党支部",
        SKILLS,
        "overdue",
        300_000,
        "肉牛养殖",
        "养 2 头肉牛，一年半出栏约 2 万元",
        "equal_principal",
        380,
    ),
    # Paid out this autumn; nothing due before the end of next year.
    _LoanPlan(
        "新田村党支部",
        SKILLS,
        "disbursed",
        350_000,
        "食用菌种植",
        "两个大棚种香菇，一年约 1 万元",
        "yearly",
        75,
    ),
    _LoanPlan(
        "东街社区党支部",
        LAID_OFF,
        "recorded",
        500_000,
        "早餐店",
        "街口开早餐店，一个月挣 2 千元左右",
        "bullet",
        22,
    ),
    _LoanPlan(
        "河口村党支部",
        OTHER,
        "guaranteed",
        300_000,
        "山羊养殖",
        "养 15 只山羊，年底卖羊约 8 千元",
        "yearly",
        24,
    ),
    _LoanPlan(
        "西街社区党支部",
        LAID_OFF,
        "inspected",
        400_000,
        "家电维修",
        "租个门面修家电，一个月挣 2 千元左右",
        "yearly",
        16,
    ),
    _LoanPlan(
        "东街社区党支部",
        LAID_OFF,
        "approved",
        300_000,
        "家政服务",
        "做家政和钟点工，一个月挣 1 千 5 百元",
        "equal_principal",
        9,
    ),
    _LoanPlan(
        "柳树湾村党支部",
        ILLNESS,
        "rejected",
        450_000,
        "中药材种植",
        "种 2 亩天麻，两年后收",
        "bullet",
        30,
    ),
    _LoanPlan(
        "石门村党支部",
        ILLNESS,
        "applied",
        300_000,
        "养蜂",
        "养 20 箱蜜蜂，一年卖蜜约 6 千元",
        "yearly",
        3,
    ),
)


@dataclass
class _Member:
    id: int
    person: DemoPerson
    branch_id: int
    committee_id: int


class _Cases:
    """Cases, their audit trail, evaluations, notices, to-dos and ledger entries."""

    def __init__(
        self,
        conn: AsyncConnection,
        everyone: list[DemoPerson],
        *,
        now: datetime,
        tz: ZoneInfo,
        rules: list[Rule],
    ) -> None:
        self.conn = conn
        self.everyone = everyone
        self.now = now
        self.tz = tz
        self.rules = rules
        self.year = now.astimezone(tz).year
        self.procedure = Rules(tz=tz)
        # Its own generator: the roster stays the same whatever is added here later.
        self.rng = random.Random(SEED + 1)
        # Members whose household is in this year's ledger, in seeding order (borrowers).
        self.ledgered: list[tuple[_Member, str]] = []

    async def seed(self) -> None:
        """Insert every seeded case."""
        await self._load()
        plain = {
            branch: [m for m in members if m.person.roles == ("党员",) and not m.person.pre1949]
            for branch, members in self.by_branch.items()
        }
        # The first members of each branch stay case-free: they are the personas a newcomer
        # picks first to apply with.
        pools = {branch: members[8:] for branch, members in plain.items()}
        for member in self.old:
            await self._case(member, S.IN_LEDGER, OLD, window="year")
        ledger_plan = [
            ("桃源村党支部", OLD),
            ("桃源村党支部", SKILLS),
            ("李家村党支部", ILLNESS),
            ("李家村党支部", SKILLS),
            ("石门村党支部", OLD),
            ("石门村党支部", ILLNESS),
            ("河口村党支部", SKILLS),
            ("河口村党支部", OTHER),
            ("柳树湾村党支部", ILLNESS),
            ("柳树湾村党支部", OLD),
            ("新田村党支部", SKILLS),
            ("新田村党支部", ILLNESS),
            ("东街社区党支部", LAID_OFF),
            ("东街社区党支部", ILLNESS),
            ("东街社区党支部", LAID_OFF),
            ("西街社区党支部", LAID_OFF),
            ("西街社区党支部", OLD),
            ("西街社区党支部", ILLNESS),
            ("桃源村党支部", ILLNESS),
        ]
        for branch, category in ledger_plan:
            await self._case(pools[branch].pop(0), S.IN_LEDGER, category, window="year")
        # One case waiting at each hand-off, so every role finds something under 待办.
        in_progress = [
            ("桃源村党支部", S.SUBMITTED, ILLNESS),
            ("东街社区党支部", S.SUBMITTED, LAID_OFF),
            ("李家村党支部", S.ON_NOTICE, SKILLS),
            ("河口村党支部", S.ON_NOTICE, OLD),
            ("桃源村党支部", S.REPORTED, SKILLS),
            ("柳树湾村党支部", S.APPROVED, ILLNESS),
        ]
        for branch, status, category in in_progress:
            await self._case(pools[branch].pop(0), status, category, window="recent")
        # The statuses a case can also rest at (`filed` it only passes through). Kept out of
        # 桃源村 and 李家村: the sandbox's picker offers the first few stages it meets in
        # roster order, and those should stay 等支部评议 and 正在公示.
        other_stages = [
            ("石门村党支部", S.UNDER_EVALUATION, OLD),
            ("河口村党支部", S.EVALUATED_FAILED, LAID_OFF),
            ("新田村党支部", S.NOTICE_CLOSED, SKILLS),
            ("西街社区党支部", S.RETURNED, ILLNESS),
        ]
        for branch, status, category in other_stages:
            await self._case(pools[branch].pop(0), status, category, window="recent")
        # Helped last year, and at the year-end review found able to manage (退出帮扶).
        await self._case(pools["柳树湾村党支部"].pop(0), S.EXITED, SKILLS, window="last_year")
        await self._fund()
        await self._loans()

    async def _load(self) -> None:
        number_of = {p.id_number: p for p in self.everyone}
        branch = organisations.alias("branch")
        rows = (
            await self.conn.execute(
                select(
                    people.c.id,
                    people.c.id_number,
                    people.c.branch_id,
                    branch.c.parent_id.label("committee_id"),
                )
                .select_from(people.outerjoin(branch, branch.c.id == people.c.branch_id))
                .where(people.c.id_number.in_(list(number_of)))
                .order_by(people.c.id)
            )
        ).all()
        self.by_branch: dict[str, list[_Member]] = {}
        self.old: list[_Member] = []
        self.officers: dict[int, list[_Member]] = {}
        self.secretaries: dict[int, list[_Member]] = {}
        self.department: list[_Member] = []
        members_by_branch: Counter[int] = Counter()
        for row in rows:
            person = number_of[row.id_number]
            member = _Member(row.id, person, row.branch_id, row.committee_id)
            if person.branch is None:
                if "组织部" in person.roles:
                    self.department.append(member)
                continue
            self.by_branch.setdefault(person.branch, []).append(member)
            members_by_branch[row.branch_id] += int("党员" in person.roles)
            if person.pre1949:
                self.old.append(member)
            if "支部书记" in person.roles:
                self.secretaries.setdefault(row.branch_id, []).append(member)
            if "党委委员" in person.roles:
                self.officers.setdefault(row.committee_id, []).append(member)
        self.entitled = members_by_branch
        self.names = {m.id: m.person.name for ms in self.by_branch.values() for m in ms}
        self.branch_names = {
            m.branch_id: m.person.branch for ms in self.by_branch.values() for m in ms
        }
        self.committee_names = {
            m.committee_id: m.person.committee for ms in self.by_branch.values() for m in ms
        }

    # --- one case ---

    async def _case(self, member: _Member, status: S, category: str, *, window: str) -> None:
        steps = _steps(status)
        targets = [target for target, _, _ in steps]
        times = self._times(steps, window)
        answers = self._answers(member, category)
        income = sum(int(answers[key]) for key in answers if key.startswith("income_"))
        size = 1 + len(answers["household"])
        year = self.year - 1 if window == "last_year" else self.year
        rule = rule_for(
            self.rules,
            year=year,
            area=member.person.committee,
            urban_rural=str(answers["urban_rural"]),
        )
        above = judge(
            rule,
            household_income_fen=income,
            household_size=size,
            receives_dibao=bool(answers["dibao"]),
        ).above
        created, updated = times[0], times[-1]
        return_to = S.UNDER_EVALUATION if status == S.RETURNED else None
        result = await self.conn.execute(
            insert(cases).values(
                person_id=member.id,
                branch_id=member.branch_id,
                kind="hardship",
                status=status,
                category=category,
                help_wanted=answers["help_wanted"],
                household_size=size,
                household_income_fen=income,
                looks_above_line=above,
                answers=answers,
                filed_by=member.id,
                consent_recorded=False,
                return_to=return_to,
                created_at=created,
                updated_at=updated,
            )
        )
        case_id = inserted_id(result)
        secretary = self.secretaries[member.branch_id][0]
        evaluation: dict[str, Any] | None = None
        for index, (target, role, _) in enumerate(steps):
            actor = {
                "member": member,
                "secretary": secretary,
                "system": None,
                "committee": self.officers[member.committee_id][0],
                "department": self.department[case_id % len(self.department)],
            }[role]
            reason = None
            if target == S.SUBMITTED:
                reason = "示范数据"
            elif target in (S.EVALUATED_PASSED, S.EVALUATED_FAILED):
                evaluation = self._evaluation(
                    member, secretary, times[index], passed=target == S.EVALUATED_PASSED
                )
                reason = evaluation_preview(evaluation, self.procedure).lines[0]
            elif target == S.RETURNED:
                reason = RETURN_REASON
            elif target == S.IN_LEDGER:
                reason = f"{year}年台账"
            elif target == S.EXITED:
                reason = EXIT_REASON
            await self.conn.execute(
                insert(case_events).values(
                    case_id=case_id,
                    actor_id=actor.id if actor else None,
                    role=role,
                    channel="import",
                    at=times[index],
                    from_status=steps[index - 1][0] if index else None,
                    to_status=target,
                    reason=reason,
                )
            )
        if evaluation is not None:
            decided = S.EVALUATED_PASSED if S.EVALUATED_PASSED in targets else S.EVALUATED_FAILED
            await self._record_evaluation(
                case_id,
                secretary,
                evaluation,
                times[targets.index(decided)],
                passed=decided == S.EVALUATED_PASSED,
            )
        if S.ON_NOTICE in targets:
            closed = times[targets.index(S.NOTICE_CLOSED)] if S.NOTICE_CLOSED in targets else None
            await self._notice(
                case_id, member, answers, size, times[targets.index(S.ON_NOTICE)], closed
            )
        if S.IN_LEDGER in targets:
            exited = times[-1] if status == S.EXITED else None
            await self._ledger(
                case_id,
                member,
                category,
                answers,
                size,
                income,
                times[targets.index(S.IN_LEDGER)],
                year=year,
                exited=exited,
            )
        await self._todo(case_id, member, status, category, answers, updated)

    def _times(self, steps: Sequence[tuple[S, str, int]], window: str) -> list[datetime]:
        """When each step happened: this year for the ledger, the last weeks otherwise;
        last year for a case that left the ledger at last year's review."""
        days = [offset for _, _, offset in steps]
        span = timedelta(days=days[-1])
        if window == "last_year":
            # Filed in spring, exited at the review in December (it opens on 1 December).
            last_year = self.year - 1
            exited = datetime.combine(date(last_year, 12, 10), time(10), self.tz)
            start = datetime.combine(date(last_year, 3, 1), time(9), self.tz) + timedelta(
                days=self.rng.randrange(90)
            )
            return [(start + timedelta(days=d)).astimezone(UTC) for d in days[:-1]] + [
                exited.astimezone(UTC)
            ]
        if window == "recent":
            # The last step a day or so ago; an on-notice case started its notice 3 days ago,
            # so moving the sandbox clock a week ends it.
            last = self.now - (
                timedelta(days=3)
                if steps[-1][0] == S.ON_NOTICE
                else timedelta(hours=20 + self.rng.randrange(20))
            )
            start = last - span
        else:
            year_start = datetime.combine(date(self.year, 1, 1), time(0), self.tz)
            first = max(year_start.astimezone(UTC), self.now - timedelta(days=200))
            last = self.now - timedelta(days=1)
            if last <= first:
                last = self.now
            room = last - first - span
            if room <= timedelta(0):
                # Early January: squeeze the whole procedure into the days there are.
                return [
                    (first + (last - first) * (d / days[-1])).replace(microsecond=0) for d in days
                ]
            start = first + room * self.rng.random()
        return [(start + timedelta(days=d)).replace(microsecond=0) for d in days]

    def _answers(self, member: _Member, category: str) -> dict[str, Any]:
        """What the member would have typed into the application (apply.toml's fields)."""
        rng = self.rng
        person = member.person
        age = self.now.astimezone(self.tz).year - person.birth_date.year
        household: list[dict[str, Any]] = []
        for _ in range(rng.choice((0, 1, 1, 2, 3)) if category != OLD else rng.choice((0, 1))):
            relation = "配偶" if not household else rng.choice(RELATIONS_OLD[1:])
            their_age = (
                age - rng.randrange(0, 5)
                if relation == "配偶"
                else max(6, age - rng.randrange(24, 60))
            )
            gender = (
                ("女" if person.gender == "男" else "男")
                if relation == "配偶"
                else rng.choice("男女")
            )
            household.append(
                {
                    "name": _household_name(rng, person.name[0], gender),
                    "relation": relation,
                    "age": their_age,
                    "health": rng.choice(HEALTH),
                }
            )
        farming = rng.randrange(0, 3) * 50_000 if person.urban_rural == "农村" else 0
        answers: dict[str, Any] = {
            "category": category,
            "urban_rural": person.urban_rural or "农村",
            "dibao": person.urban_rural == "城镇" or rng.random() < 0.3,
            "household": household,
            "income_farming": farming,
            "income_wages": rng.randrange(0, 4) * 100_000 if category != OLD else 0,
            "income_allowances": rng.randrange(1, 5) * 30_000,
            "income_pension": 12_000 * rng.randrange(10, 20) if age >= 60 else 0,
            "income_other": 0,
            "situation": rng.choice(SITUATIONS[category]),
            "help_wanted": {
                OLD: HELP_RELIEF,
                SKILLS: HELP_LOAN,
                ILLNESS: HELP_RELIEF,
                LAID_OFF: HELP_TRAINING,
                OTHER: HELP_RELIEF,
            }[category],
        }
        if category == OTHER:
            answers["category_other"] = OTHER_CAUSE
        return answers

    def _evaluation(
        self, member: _Member, secretary: _Member, at: datetime, *, passed: bool = True
    ) -> dict[str, Any]:
        """A branch meeting (支部民主评议) that adds up: passing, or not (too few for)."""
        rng = self.rng
        entitled = self.entitled[member.branch_id]
        present = entitled - rng.randrange(2, 7)
        if passed:
            against = rng.randrange(0, 2)
            abstain = rng.randrange(0, 3)
        else:
            # At most half of those entitled vote for (the default basis).
            votes_for = entitled // 2 - rng.randrange(1, 4)
            abstain = rng.randrange(1, 4)
            against = present - votes_for - abstain
        others = [
            m
            for m in self.by_branch[member.person.branch or ""]
            if m.id not in (member.id, secretary.id)
        ]
        counter, scrutineer, supervisor = rng.sample(others, 3)
        return {
            "meeting_date": (at.astimezone(self.tz).date() - timedelta(days=1)).isoformat(),
            "entitled": entitled,
            "present": present,
            "supervisors": supervisor.person.name,
            "counter": counter.person.name,
            "scrutineer": scrutineer.person.name,
            "votes_for": present - against - abstain,
            "votes_against": against,
            "abstain": abstain,
            "minutes": f"支部党员大会讨论了{member.person.name}同志的困难情况，"
            + (
                "大家认为情况属实，同意列为帮扶对象。"
                if passed
                else "多数同志认为家里还有劳力、收入过得去，暂不列为帮扶对象。"
            ),
        }

    async def _record_evaluation(
        self,
        case_id: int,
        secretary: _Member,
        answers: dict[str, Any],
        at: datetime,
        *,
        passed: bool,
    ) -> None:
        await self.conn.execute(
            insert(evaluations).values(
                case_id=case_id,
                meeting_date=date.fromisoformat(answers["meeting_date"]),
                entitled=answers["entitled"],
                present=answers["present"],
                supervisors=answers["supervisors"],
                counter=answers["counter"],
                scrutineer=answers["scrutineer"],
                votes_for=answers["votes_for"],
                votes_against=answers["votes_against"],
                abstain=answers["abstain"],
                minutes=answers["minutes"],
                photo_media_id=None,
                passed=passed,
                rule=f"votes_for > half of {self.procedure.evaluation_basis}",
                recorded_by=secretary.id,
                recorded_at=at,
            )
        )

    async def _notice(
        self,
        case_id: int,
        member: _Member,
        answers: dict[str, Any],
        size: int,
        at: datetime,
        closed: datetime | None,
    ) -> None:
        start = at.astimezone(self.tz).date()
        end = notice_end(start, self.procedure)
        branch = member.person.branch or ""
        text = case_say(
            "notice_text",
            branch=branch,
            name=member.person.name,
            size=size,
            help=answers["help_wanted"],
            start=chinese_date(start),
            end=chinese_date(end),
            contact=self.procedure.complaints_contact,
            today=chinese_date(start),
        )
        await self.conn.execute(
            insert(public_notices).values(
                case_id=case_id,
                starts_on=start,
                ends_on=end,
                place=case_say("notice_place", branch=branch),
                text=text,
                created_at=at,
                closed_at=closed,
            )
        )

    async def _ledger(
        self,
        case_id: int,
        member: _Member,
        category: str,
        answers: dict[str, Any],
        size: int,
        income: int,
        at: datetime,
        *,
        year: int,
        exited: datetime | None = None,
    ) -> None:
        officers = self.officers[member.committee_id]
        # 帮扶情况 starts empty, as filing leaves it: visits add to it when they are reported
        # (visits.service); loans keep their own record (the loans table and the fund).
        review = (
            {}
            if exited is None
            else {
                "status": "exited",
                "exit_reason": EXIT_REASON,
                "exited_at": exited,
                "reviewed_at": exited,
                "review_opened_at": datetime.combine(
                    date(exited.astimezone(self.tz).year, 12, 1), time(0), self.tz
                ),
            }
        )
        await self.conn.execute(
            insert(ledger_entries).values(
                person_id=member.id,
                year=year,
                case_id=case_id,
                category=category,
                causes=str(answers.get("category_other") or category),
                household=answers["household"],
                household_size=size,
                annual_income_fen=income,
                situation=answers["situation"],
                paired_cadre=officers[case_id % len(officers)].person.name,
                assistance=[],
                **{"status": "active", "created_at": at, **review},
            )
        )
        if exited is None and not member.person.pre1949:
            self.ledgered.append((member, category))

    async def _todo(
        self,
        case_id: int,
        member: _Member,
        status: S,
        category: str,
        answers: dict[str, Any],
        at: datetime,
    ) -> None:
        """The open to-do of the step the case waits at (as the procedure would leave it)."""
        name = member.person.name
        if status == S.SUBMITTED:
            kind, text = (
                "evaluate",
                case_say(
                    "new_application",
                    name=name,
                    category=category,
                    reason=f"情况：{answers['situation']}",
                ),
            )
        elif status == S.UNDER_EVALUATION:
            kind, text = "evaluating", case_say("evaluating_todo", name=name)
        elif status == S.REPORTED:
            kind, text = "approve", case_say("report_todo", branch=member.person.branch, name=name)
        elif status == S.APPROVED:
            kind, text = (
                "file",
                case_say("approved_todo", committee=member.person.committee, name=name),
            )
        elif status == S.NOTICE_CLOSED:
            kind, text = "report", case_say("notice_closed_todo", name=name)
        elif status == S.RETURNED:
            kind, text = (
                "returned",
                case_say(
                    "returned_todo",
                    name=name,
                    step=case_say("return_step_under_evaluation"),
                    reason=RETURN_REASON,
                ),
            )
        else:
            return
        # Whoever the authority policy lets take the step, as the procedure routes it (a
        # branch whose only secretary is the member: the township's officers stand in).
        case = await load_case(self.conn, case_id)
        assignees = await hands(self.conn, TODO_ACTS[kind], case)
        kind = "evaluate" if kind == "evaluating" else kind  # one kind opens both
        for assignee in assignees:
            # The keys the procedure uses (a returned case's, and an evaluation under way's,
            # carry when the step began).
            key = (
                f"case:{case_id}:returned:{at.isoformat()}:{assignee}"
                if kind == "returned"
                else f"case:{case_id}:evaluating:{at.isoformat()}:{assignee}"
                if status == S.UNDER_EVALUATION
                else f"case:{case_id}:{kind}:{assignee}"
            )
            await add_todo(
                self.conn,
                assignee_id=assignee,
                kind=kind,
                text=text,
                now=at,
                subject_id=member.id,
                case_id=case_id,
                key=key,
            )

    # --- the fund and loans ---

    def _at(self, day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), self.tz).astimezone(UTC)

    async def _person(self, member: _Member) -> Person:
        person = await person_by_id(self.conn, member.id)
        assert person is not None
        return person

    async def _fund(self) -> None:
        """The contributions, recorded by the department before any loan is paid out."""
        today = self.now.astimezone(self.tz).date()
        staff = await self._person(self.department[0])
        for source, days_ago, amount_fen, document in CONTRIBUTIONS:
            day = today - timedelta(days=days_ago)
            await contribute(
                self.conn,
                actor=staff,
                amount_fen=amount_fen,
                document=document.format(year=day.year),
                occurred_on=day,
                now=self._at(day, 15),
                source=source,
            )

    async def _loans(self) -> None:
        """Each loan walked through the loan service up to its stage, with the to-dos the
        chat flows leave after each step (loans.prompts.after)."""
        conn, today = self.conn, self.now.astimezone(self.tz).date()
        staff = [await self._person(m) for m in self.department]
        terms = loan_service.Terms()
        taken: set[int] = set()
        for number, plan in enumerate(LOAN_PLAN, start=1):
            member = next(
                m
                for m, category in self.ledgered
                if m.person.branch == plan.branch
                and category == plan.category
                and m.id not in taken
            )
            taken.add(member.id)
            applied_on = today - timedelta(
                days=plan.days_ago + (LOAN_STEP_DAYS["recorded"] if plan.stage in PAID_OUT else 0)
            )

            def at(step: str | None, applied_on: date = applied_on) -> datetime:
                return self._at(applied_on + timedelta(days=LOAN_STEP_DAYS.get(step or "", 0)), 10)

            loan_id = await loan_service.apply(
                conn,
                member=await self._person(member),
                amount_fen=plan.amount_fen,
                project=plan.project,
                earnings=plan.earnings,
                schedule_kind=plan.schedule,
                terms=terms,
                now=at(None),
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at(None))
            if plan.stage == "applied":
                continue
            officer = await self._person(self.officers[member.committee_id][0])
            approve = plan.stage != "rejected"
            reason = None if approve else LOAN_REJECT_REASON
            await loan_service.decide(
                conn,
                loan_id=loan_id,
                officer=officer,
                approve=approve,
                reason=reason,
                now=at("decided"),
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at("decided"), reason=reason)
            if plan.stage in ("approved", "rejected"):
                continue
            secretary = self.secretaries[member.branch_id][0].person.name
            finding = f"到户看了，{plan.project}的场地和准备属实，本人有劳力、肯干。"
            await loan_service.inspect(
                conn,
                loan_id=loan_id,
                staff=staff[2],
                on=at("inspected").date(),
                inspector=f"{staff[2].name}、{secretary}",
                finding=finding,
                passed=True,
                now=at("inspected"),
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at("inspected"), reason=finding)
            if plan.stage == "inspected":
                continue
            township = (member.person.committee or "").removesuffix("党委")
            year = at("guaranteed").astimezone(self.tz).year
            await loan_service.guarantee(
                conn,
                loan_id=loan_id,
                staff=staff[0],
                guarantor=f"{township}财政所",
                document=f"{township[:1]}财担〔{year}〕{number}号",
                now=at("guaranteed"),
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at("guaranteed"))
            if plan.stage == "guaranteed":
                continue
            disbursed_on = at("recorded").astimezone(self.tz).date()
            await loan_service.record_disbursement(
                conn,
                loan_id=loan_id,
                staff=staff[0],
                on=disbursed_on,
                document=f"放款单 {disbursed_on.year}-{number:03d}",
                now=at("recorded"),
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at("recorded"))
            if plan.stage == "recorded":
                continue
            # A different staff member confirms: the fund pays out, the schedule is fixed.
            schedule = await loan_service.confirm_disbursement(
                conn, loan_id=loan_id, staff=staff[1], now=at("confirmed")
            )
            await loan_prompts.after(conn, loan_id=loan_id, now=at("confirmed"))
            paid = {"part_repaid": schedule[:1], "repaid": schedule}.get(plan.stage, [])
            for item in paid:
                # Each instalment paid in full on its day (interest first, then principal).
                assert item.due_on < today, (plan, item)
                await loan_service.repay(
                    conn,
                    loan_id=loan_id,
                    staff=staff[2],
                    amount_fen=item.total_fen,
                    paid_on=item.due_on,
                    receipt=f"收据 {item.due_on.year}-{number:02d}{item.number}",
                    now=self._at(item.due_on, 15),
                )
            if plan.stage == "overdue":
                assert schedule[0].due_on < today, plan


# The act each seeded to-do stands for (cases.procedure routes the same).
TODO_ACTS = {
    "evaluate": "case.open_evaluation",
    "evaluating": "case.record_evaluation",
    "approve": "case.decide",
    "file": "case.file",
    "report": "case.report",
    "returned": "case.resume_returned",
}


def _household_name(rng: random.Random, surname: str, gender: str) -> str:
    chars = MALE_CHARS if gender == "男" else FEMALE_CHARS
    family = surname if rng.random() < 0.6 else rng.choice(SURNAMES)
    return family + "".join(rng.choice(chars) for _ in range(2))


# --- command line ----------------------------------------------------------------------------


def add_arguments(commands: Any) -> None:
    """Add `seed-demo` to the CLI's subcommands."""
    commands.add_parser(
        "seed-demo", help="create the fictional demo county 示范县 (does nothing if it exists)"
    )


async def run_seed_demo(settings: Any) -> int:
    """`bangfu-bot seed-demo`: create the demo county and print what it holds."""
    from bangfu_bot import db
    from bangfu_bot.cases.eligibility import load_rules
    from bangfu_bot.clock import SystemClock

    engine = db.make_engine(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
    try:
        if settings.is_sqlite:
            await db.migrate(engine)
        summary = await seed_demo(
            engine,
            now=SystemClock().now(),
            tz=settings.tz,
            rules=load_rules(Path(settings.conversations_dir) / "eligibility.toml"),
        )
    except Exception as error:  # noqa: BLE001 - one line for the operator, not a traceback
        first = str(error).splitlines()[0] if str(error) else ""
        print(
            texts("bangfu_bot.seed")["failed"].format(error=f"{type(error).__name__}: {first}"),
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    for line in summary.lines():
        print(line)
    return 0
