"""The authorisation matrix, generated from the authority table and played through the real
webhook: for every act that changes a case, an objection, a loan or a repayment, every kind
of actor tries it in chat, and the database says whether it took effect.

Each actor reaches the act the way a front end would let them: a to-do for the step (as if
it had been routed to them, or kept from before a move to another township) or the chat
word, then the flow's answers and 1 to confirm. What each actor may do is worked out here
from the table's grants (roles and scopes), independently of the code that enforces them;
what they did is read from the database: the case or loan moved, and when it did not,
nothing at all was written (no event, movement, repayment, ledger entry or to-do).

The acts people make outside those steps (money into the fund, a notice, the year's plan,
an objection, a member's passing) are tried by the same actors at the domain services."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update

from bangfu_bot.authority import BY_NAME, Refused, Scope
from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.cases import procedure
from bangfu_bot.cases.enums import CaseStatus as S
from bangfu_bot.cases.models import case_events, cases, evaluations, objections
from bangfu_bot.fund.models import fund_movements
from bangfu_bot.fund.service import contribute
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.loans.models import instalments, loan_events, loans, repayments
from bangfu_bot.loans.schedule import build
from bangfu_bot.members.models import bindings, organisations, people
from bangfu_bot.members.service import person_by_id
from bangfu_bot.models import metadata
from bangfu_bot.outcomes import service as outcomes
from bangfu_bot.todos.models import todos
from tests.conversation.chat import Chat
from tests.factories import _org, make_person, make_tree

SERIALS = itertools.count(300)
TODO_SERIAL = itertools.count(1)  # each hand-over writes a to-do of its own
ALL_ROLES = ("member", "secretary", "committee", "department")


@dataclass
class Persona:
    """Someone who tries the acts: their person (None: an unbound WeChat user), roles and
    place as the table reads them."""

    label: str
    openid: str
    name: str = ""
    person_id: int | None = None
    roles: tuple[str, ...] = ()
    branch: int | None = None
    township: int | None = None


@dataclass
class Place:
    """The county of this test: two townships, three branches."""

    branch_a: int = 0
    branch_b: int = 0
    branch_c: int = 0
    township_1: int = 0
    township_2: int = 0
    personas: dict[str, Persona] = field(default_factory=dict)


@dataclass
class Act:
    """How an act is reached in chat and how its effect shows."""

    name: str
    status: str  # the case's or loan's status before it
    todo: str | None  # the to-do kind that opens it (None: a chat word)
    lines: list[str]
    on_loan: bool = False


ACTS = [
    Act(
        "case.open_evaluation",
        S.SUBMITTED,
        "evaluate",
        ["今天", "9", "8", "李监督", "王计票", "赵监票", "7", "1", "0", "同意", "跳过", "1"],
    ),
    Act("case.report", S.NOTICE_CLOSED, "report", ["跳过", "1"]),
    Act("case.decide", S.REPORTED, "approve", ["批准", "1"]),
    Act("case.file", S.APPROVED, "file", ["跳过", "1"]),
    Act("objection.resolve", S.ON_NOTICE, "objection", ["经核实，情况属实，异议不成立", "1"]),
    Act("loan.decide", "applied", "loan_review", ["批准", "1"], on_loan=True),
    Act(
        "loan.inspect",
        "approved",
        "loan_inspect",
        ["今天", "孙丽", "猪圈已建好", "是", "1"],
        on_loan=True,
    ),
    Act(
        "loan.guarantee",
        "inspected",
        "loan_guarantee",
        ["青山镇财政所", "青财担〔2026〕7号", "1"],
        on_loan=True,
    ),
    Act(
        "loan.record_disbursement",
        "guaranteed",
        "loan_disburse",
        ["今天", "放款单 001", "1"],
        on_loan=True,
    ),
    Act("loan.confirm_disbursement", "recorded", "loan_confirm", ["是", "1"], on_loan=True),
    Act(
        "loan.write_off",
        "disbursed",
        "loan_write_off",
        ["核销", "本人病重，无力偿还", "1"],
        on_loan=True,
    ),
    Act("loan.repay", "disbursed", None, [], on_loan=True),
]


async def build_county(bot: Any) -> Place:
    engine, now = bot.services.engine, bot.clock.now()
    tree = await make_tree(engine, now)
    async with engine.begin() as conn:
        township_2 = await _org(conn, "committee", "绿水镇党委", tree.county)
        branch_c = await _org(conn, "branch", "河口村党支部", township_2)
        await contribute(
            conn,
            actor=None,
            amount_fen=100_000_000,
            source="county_finance",
            document="县财政〔2026〕3号",
            occurred_on=date(2026, 1, 5),
            now=now,
        )
    place = Place(tree.branch, tree.other_branch, branch_c, tree.committee, township_2)
    people_here = [
        ("member", "王老汉 (a member of the branch)", ("member",), tree.branch),
        ("secretary", "张书记 (secretary of the branch)", ("member", "secretary"), tree.branch),
        (
            "secretary_other",
            "刘书记 (secretary of another branch)",
            ("member", "secretary"),
            tree.other_branch,
        ),
        ("officer", "赵委员 (officer of the township)", ("member", "committee"), tree.other_branch),
        (
            "officer_other",
            "周委员 (officer of another township)",
            ("member", "committee"),
            branch_c,
        ),
        (
            "officer_moved",
            "郑委员 (officer moved to another township by a re-import)",
            ("member", "committee"),
            tree.branch,
        ),
        ("department", "孙丽 (department)", ("department",), None),
        ("department_maker", "钱进 (department; recorded the disbursement)", ("department",), None),
        ("supervisor", "吴监督 (supervision group)", ("supervisor",), None),
    ]
    for key, label, roles, branch in people_here:
        place.personas[key] = await persona(bot, place, key, label, roles, branch)
    # The re-import moved her: she keeps her to-dos, but no longer her township's authority.
    moved = place.personas["officer_moved"]
    async with engine.begin() as conn:
        await conn.execute(
            update(people).where(people.c.id == moved.person_id).values(branch_id=branch_c)
        )
    moved.branch, moved.township = branch_c, township_2
    place.personas["unbound"] = Persona("a WeChat user who never bound", "o-unbound")
    return place


async def persona(
    bot: Any, place: Place, key: str, label: str, roles: tuple[str, ...], branch: int | None
) -> Persona:
    serial = next(SERIALS)
    name = label.split(" ")[0] + "".join("零一二三四五六七八九"[int(d)] for d in str(serial))
    person_id, _ = await make_person(
        bot.services.engine,
        bot.clock.now(),
        name=name,
        branch=branch,
        roles=roles,
        serial=serial % 1000,
        born=date(1950 + serial // 1000, 1, 1),
    )
    openid = f"o-{key}-{serial}"
    async with bot.services.engine.begin() as conn:
        await conn.execute(
            insert(bindings).values(
                openid=openid, person_id=person_id, channel="chat", bound_at=bot.clock.now()
            )
        )
    township = {
        place.branch_a: place.township_1,
        place.branch_b: place.township_1,
        place.branch_c: place.township_2,
    }.get(branch)  # type: ignore[arg-type]
    return Persona(label, openid, name, person_id, roles, branch, township)


def expected(act: str, actor: Persona, subject: Persona, maker: int | None) -> bool:
    """What the table allows, read from its grants (not from `authorize`)."""
    entry = BY_NAME[act]
    if actor.person_id is None:
        return False
    if actor.person_id == subject.person_id and not entry.subject_may_act:
        return False
    if entry.checker and actor.person_id == maker:
        return False
    for grant in entry.grants:
        if grant.role not in actor.roles:
            continue
        if grant.scope is Scope.COUNTY:
            return True
        if grant.scope is Scope.BRANCH and actor.branch == subject.branch:
            return True
        if grant.scope is Scope.TOWNSHIP and actor.township == subject.township:
            return True
        # STAND_IN: the branch has a secretary other than the subject, so never here;
        # UNPLACED: every subject here is in a township.
    return False


async def subject_at(bot: Any, place: Place, act: Act) -> tuple[Persona, int]:
    """A new member of the branch holding every role (so only the rule on one's own matter
    stops them acting on it), with a case or loan just before the act."""
    subject = await persona(
        bot, place, "subject", "何某 (the subject themself)", ALL_ROLES, place.branch_a
    )
    now = bot.clock.now()
    async with bot.services.engine.begin() as conn:
        if act.on_loan:
            target = await _loan(conn, subject, act, place, now)
        else:
            target = int(
                (
                    await conn.execute(
                        insert(cases).values(
                            person_id=subject.person_id,
                            branch_id=place.branch_a,
                            kind="hardship",
                            status=act.status,
                            category="缺资金",
                            help_wanted="帮扶资金",
                            household_size=2,
                            household_income_fen=500_000,
                            looks_above_line=False,
                            answers={"household": [{"name": "何妻", "relation": "配偶"}]},
                            filed_by=subject.person_id,
                            consent_recorded=False,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                ).inserted_primary_key[0]
            )
            if act.todo == "objection":
                member = place.personas["member"]
                await conn.execute(
                    insert(objections).values(
                        case_id=target, raised_by=member.person_id, text="他家有车", raised_at=now
                    )
                )
    return subject, target


async def _loan(conn: Any, subject: Persona, act: Act, place: Place, now: Any) -> int:
    maker = place.personas["department_maker"].person_id
    disbursed = act.status == "disbursed"
    loan_id = int(
        (
            await conn.execute(
                insert(loans).values(
                    person_id=subject.person_id,
                    branch_id=place.branch_a,
                    status=act.status,
                    amount_fen=300_000,
                    project="生猪养殖",
                    earnings="出栏",
                    schedule_kind="bullet",
                    term_years=1,
                    annual_rate_bp=435,
                    guarantor="青山镇财政所",
                    recorded_by=maker if act.status in {"recorded", "disbursed"} else None,
                    disbursement_document="放款单 001" if act.status == "recorded" else None,
                    disbursed_on=date(2026, 11, 1)
                    if act.status in {"recorded", "disbursed"}
                    else None,
                    created_at=now,
                    updated_at=now,
                )
            )
        ).inserted_primary_key[0]
    )
    if disbursed:
        for item in build(
            kind="bullet", principal_fen=300_000, start=date(2026, 11, 1), term_years=1, rate_bp=435
        ):
            await conn.execute(
                insert(instalments).values(
                    loan_id=loan_id,
                    number=item.number,
                    due_on=item.due_on,
                    principal_fen=item.principal_fen,
                    interest_fen=item.interest_fen,
                )
            )
        await conn.execute(
            insert(fund_movements).values(
                kind="loan_out",
                amount_fen=300_000,
                document="放款单 001",
                occurred_on=date(2026, 11, 1),
                loan_id=loan_id,
                recorded_by=maker,
                recorded_at=now,
            )
        )
    return loan_id


WRITES = (case_events, loan_events, fund_movements, repayments, evaluations, ledger_entries)


async def footprint(bot: Any) -> tuple[int, ...]:
    """How many rows every table an act writes holds (objections resolved counted apart)."""
    async with bot.services.engine.connect() as conn:
        counts = [
            (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in WRITES
        ]
        resolved = (
            await conn.execute(
                select(func.count())
                .select_from(objections)
                .where(objections.c.resolved_at.is_not(None))
            )
        ).scalar_one()
        # To-dos of the next step; not those the dispatcher makes in the background for
        # earlier messages members could not be reached with.
        steps = (
            await conn.execute(
                select(func.count())
                .select_from(todos)
                .where(todos.c.kind.not_in(["tell_member", "call_member"]))
            )
        ).scalar_one()
    return (*counts, resolved, steps)


async def took_effect(bot: Any, act: Act, target: int) -> bool:
    async with bot.services.engine.connect() as conn:
        if act.name == "loan.repay":
            return bool(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(repayments)
                        .where(repayments.c.loan_id == target)
                    )
                ).scalar_one()
            )
        if act.name == "objection.resolve":
            return (
                await conn.execute(
                    select(objections.c.resolved_at).where(objections.c.case_id == target)
                )
            ).scalar() is not None
        table = loans if act.on_loan else cases
        status = (
            await conn.execute(select(table.c.status).where(table.c.id == target))
        ).scalar_one()
    return bool(status != act.status)


async def hand_over(bot: Any, actor: Persona, subject: Persona, act: Act, target: int) -> None:
    """The step's to-do is the only one open for the actor."""
    async with bot.services.engine.begin() as conn:
        if actor.person_id is not None:  # only this step's to-do is open for them
            await conn.execute(
                update(todos)
                .where(todos.c.assignee_id == actor.person_id, todos.c.done_at.is_(None))
                .values(done_at=bot.clock.now())
            )
            if act.todo is not None:
                await conn.execute(
                    insert(todos).values(
                        assignee_id=actor.person_id,
                        kind=act.todo,
                        text="待办",
                        subject_id=subject.person_id,
                        created_at=bot.clock.now(),
                        key=f"matrix:{act.todo}:{target}:{actor.person_id}:{next(TODO_SERIAL)}",
                        **({"loan_id": target} if act.on_loan else {"case_id": target}),
                    )
                )


async def try_act(bot: Any, actor: Persona, subject: Persona, act: Act, receipt: str) -> list[str]:
    chat = Chat(bot, actor.openid)
    if act.todo is None:
        number = await _id_number(bot, subject.person_id)
        lines = ["还款登记", subject.name, number[-6:], "100", "今天", receipt, "1"]
    else:
        lines = ["待办", "1", *act.lines]
    replies = [await chat.send(line) for line in lines]
    await chat.send("取消")
    return replies


async def _id_number(bot: Any, person_id: int | None) -> str:
    async with bot.services.engine.connect() as conn:
        return str(
            (
                await conn.execute(select(people.c.id_number).where(people.c.id == person_id))
            ).scalar_one()
        )


async def test_every_act_by_every_actor_through_the_webhook(bot: Any, capsys: Any) -> None:
    place = await build_county(bot)
    tally: Counter[str] = Counter()
    wrong: list[str] = []
    receipts = itertools.count(1)
    for act in ACTS:
        allowed_someone = False
        for key in [*place.personas, "subject"]:
            subject, target = await subject_at(bot, place, act)
            actor = subject if key == "subject" else place.personas[key]
            maker = place.personas["department_maker"].person_id
            should = expected(act.name, actor, subject, maker)
            await hand_over(bot, actor, subject, act, target)
            before = await footprint(bot)
            replies = await try_act(bot, actor, subject, act, f"收据 {next(receipts)}")
            did = await took_effect(bot, act, target)
            tally["tried"] += 1
            tally["allowed" if did else "refused"] += 1
            allowed_someone |= did
            if did and not should:
                tally["wrongly allowed"] += 1
                wrong.append(f"{act.name} by {actor.label}: allowed; said {replies[-1]!r}")
            elif should and not did:
                tally["wrongly refused"] += 1
                wrong.append(f"{act.name} by {actor.label}: refused; said {replies}")
            elif not did:
                # Refused: nothing at all was written, and the actor was told in Chinese.
                after = await footprint(bot)
                if after != before:
                    wrong.append(
                        f"{act.name} by {actor.label}: refused but wrote "
                        f"{[b - a for a, b in zip(before, after, strict=True)]}"
                    )
                assert any(reply.strip() for reply in replies), (act.name, actor.label)
        assert allowed_someone, f"nobody may make {act.name}"
    with capsys.disabled():
        print(
            f"\nauthority matrix: {tally['tried']} tried / {tally['refused']} refused / "
            f"{tally['allowed']} allowed / {tally['wrongly allowed']} wrongly allowed / "
            f"{tally['wrongly refused']} wrongly refused"
        )
    assert wrong == []
    assert tally["wrongly allowed"] == 0 and tally["tried"] == len(ACTS) * 11


# --- The acts people make outside a case's or loan's steps -------------------------------
# The same actors try them at the domain services, the door every front end goes through
# (chat, the command line, the desk): the county-wide acts (money into the fund, a notice,
# the year's plan), an objection to a notice, and recording a member's passing.


async def _case_on_notice(bot: Any, place: Place) -> tuple[Persona, int]:
    return await subject_at(bot, place, Act("objection.raise", S.ON_NOTICE, None, []))


async def _new_subject(bot: Any, place: Place) -> tuple[Persona, int]:
    subject = await persona(
        bot, place, "subject", "何某 (the subject themself)", ALL_ROLES, place.branch_a
    )
    assert subject.person_id is not None
    return subject, subject.person_id


COUNTY = Persona("the county as a whole", "")  # the subject of a county-wide act


async def _county(bot: Any, place: Place) -> tuple[Persona, int]:
    return COUNTY, 0


async def _try_service(
    bot: Any, place: Place, act: str, actor: Any, subject: Persona, target: int
) -> None:

    now, tz = bot.clock.now(), bot.services.settings.tz
    async with bot.services.engine.begin() as conn:
        branch = (
            await conn.execute(
                select(organisations.c.name).where(organisations.c.id == place.branch_a)
            )
        ).scalar_one()
        if act == "fund.contribute":
            await contribute(
                conn,
                actor=actor,
                amount_fen=10_000,
                source="donation",
                document="捐赠收据 1",
                occurred_on=date(2026, 11, 1),
                now=now,
            )
        elif act == "broadcast.send":
            await broadcasts.create(
                conn,
                author=actor,
                text="下周一上午九点在村委会开会。",
                audience=f"branch:{branch}",
                training=False,
                now=now,
                tz=tz,
            )
        elif act == "plan.set":
            await outcomes.set_plan(
                conn,
                plan=outcomes.Plan(year=2027, trainings=4),
                actor=actor,
                channel="chat",
                now=now,
            )
        elif act == "objection.raise":
            await procedure.raise_objection(
                conn, person=actor, name=subject.name, text="他家有车", now=now
            )
        elif act == "outcome.record_passing":
            await outcomes.record_passing(
                conn, person_id=target, passed_on=date(2026, 11, 1), actor=actor, now=now
            )


SERVICE_ACTS = {
    "fund.contribute": (_county, "fund_movements"),
    "broadcast.send": (_county, "broadcasts"),
    "plan.set": (_county, "year_plans"),
    "objection.raise": (_case_on_notice, "objections"),
    "outcome.record_passing": (_new_subject, "passings"),
}


async def _rows(bot: Any, table_name: str) -> int:

    async with bot.services.engine.connect() as conn:
        table = metadata.tables[table_name]
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_the_other_acts_by_every_actor_at_the_services(bot: Any, capsys: Any) -> None:

    place = await build_county(bot)
    tally: Counter[str] = Counter()
    wrong: list[str] = []
    for act, (make_subject, table) in SERVICE_ACTS.items():
        allowed_someone = False
        # An unbound WeChat user never reaches a service: chat asks them to bind first.
        for key in [*(k for k in place.personas if k != "unbound"), "subject"]:
            subject, target = await make_subject(bot, place)
            actor_persona = subject if key == "subject" else place.personas[key]
            if actor_persona is COUNTY:
                continue  # a county-wide act has no subject of its own to try it
            async with bot.services.engine.connect() as conn:
                actor = await person_by_id(conn, actor_persona.person_id)
            should = expected(act, actor_persona, subject, None)
            before = await _rows(bot, table)
            try:
                await _try_service(bot, place, act, actor, subject, target)
            except Refused:
                pass
            did = await _rows(bot, table) > before
            tally["tried"] += 1
            tally["allowed" if did else "refused"] += 1
            allowed_someone |= did
            if did and not should:
                tally["wrongly allowed"] += 1
                wrong.append(f"{act} by {actor_persona.label}: allowed")
            elif should and not did:
                tally["wrongly refused"] += 1
                wrong.append(f"{act} by {actor_persona.label}: refused")
        assert allowed_someone, f"nobody may make {act}"
    with capsys.disabled():
        print(
            f"\nauthority matrix (services): {tally['tried']} tried / {tally['refused']} refused"
            f" / {tally['allowed']} allowed / {tally['wrongly allowed']} wrongly allowed / "
            f"{tally['wrongly refused']} wrongly refused"
        )
    assert wrong == []
