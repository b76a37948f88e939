"""The one authority policy: who may do which act, on whose matter.

Every act that changes a case, a loan, a repayment, an objection, a visit, a campaign, a
broadcast or the fund names itself here and calls `authorize` before it writes anything.
Chat, the command line and any later front end reach the acts only through the domain
services, so none of them can grant more than this table does.

The table gives, per act, the roles that may make it and the scope each role acts in. The
rules below the table hold for every act:

- the system acts only as `system`, and nobody else acts as `system`;
- an actor must hold the role they act in;
- nobody acts on their own case, loan, or an objection about their own case, except where
  the act is the subject's own (applying, raising an objection);
- the maker of a disbursement is never its checker;
- a matter outside any township (a county-level borrower) is the department's wherever the
  table names the township committee (scope `unplaced`): no officer of some township may
  take it;
- `system` is also the command line on the county's server for the county-wide acts
  (a campaign, a notice, money into the fund, the roster): it runs as the operator, not as a person;
- the role `bound` is anyone bound on the roster (a visit is reported by whoever it was
  assigned to, whatever their role).

`authorize` only reads what it is given; loading the subject is the caller's part, so the
policy can be tested as a table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.authority")


class Scope(StrEnum):
    """Where a role's authority for an act reaches."""

    OWN = "own"  # the subject themself
    BRANCH = "branch"  # the subject's branch
    STAND_IN = "stand_in"  # the subject's township, only when no secretary of the branch can act
    TOWNSHIP = "township"  # the subject's township committee
    UNPLACED = "unplaced"  # anywhere, but only a matter outside every township
    ASSIGNED = "assigned"  # only the person the matter was assigned to
    COUNTY = "county"  # anywhere
    SYSTEM = "system"  # scheduled moves nobody makes by hand


@dataclass(frozen=True)
class Grant:
    """One role allowed to make an act, and how far it reaches."""

    role: str
    scope: Scope


@dataclass(frozen=True)
class Act:
    """An act of the mechanism, as the table lists it."""

    name: str
    grants: tuple[Grant, ...]
    subject_may_act: bool = False  # the subject's own act (apply, object)
    checker: bool = False  # must not be made by the one who made the step it checks

    @property
    def label(self) -> str:
        """What people call the act (messages.toml), in refusals and the README."""
        return say("act_" + self.name.replace(".", "_"))


def _act(
    name: str, *grants: tuple[str, Scope], subject_may_act: bool = False, checker: bool = False
) -> Act:
    return Act(name, tuple(Grant(role, scope) for role, scope in grants), subject_may_act, checker)


SEC_BRANCH = ("secretary", Scope.BRANCH)
STAND_IN = ("committee", Scope.STAND_IN)
COMMITTEE = ("committee", Scope.TOWNSHIP)
UNPLACED = ("department", Scope.UNPLACED)
DEPARTMENT = ("department", Scope.COUNTY)
SYSTEM = ("system", Scope.SYSTEM)

ACTS: tuple[Act, ...] = (
    # Cases (帮扶申请)
    _act("case.apply", ("member", Scope.OWN), SEC_BRANCH, subject_may_act=True),
    _act("case.open_evaluation", SEC_BRANCH, STAND_IN),
    _act("case.record_evaluation", SEC_BRANCH, STAND_IN),
    _act("case.open_notice", SYSTEM, SEC_BRANCH, STAND_IN),
    _act("case.close_notice", SYSTEM, SEC_BRANCH, STAND_IN),
    _act("case.report", SEC_BRANCH, STAND_IN),
    _act("case.decide", COMMITTEE, UNPLACED),
    _act("case.resume_returned", SEC_BRANCH, STAND_IN),
    _act("case.file", DEPARTMENT),
    _act("case.enter_ledger", SYSTEM, DEPARTMENT),
    _act("case.exit", SEC_BRANCH, STAND_IN, DEPARTMENT),
    _act("case.review", SEC_BRANCH, STAND_IN),
    # Objections (异议)
    _act("objection.raise", ("member", Scope.BRANCH), subject_may_act=False),
    _act("objection.resolve", SEC_BRANCH, STAND_IN),
    # Loans (借款) and repayments
    _act("loan.apply", ("member", Scope.OWN), subject_may_act=True),
    _act("loan.decide", COMMITTEE, UNPLACED),
    _act("loan.inspect", DEPARTMENT),
    _act("loan.guarantee", DEPARTMENT),
    _act("loan.record_disbursement", DEPARTMENT),
    _act("loan.confirm_disbursement", DEPARTMENT, checker=True),
    _act("loan.repay", DEPARTMENT),
    _act("loan.close", SYSTEM),
    _act("loan.write_off", COMMITTEE, UNPLACED),
    # Visits (走访慰问), notices (通知) and the fund (基金)
    _act("visit.open_campaign", DEPARTMENT, SYSTEM),
    _act("visit.open_event", SEC_BRANCH),
    _act("visit.report", ("bound", Scope.ASSIGNED)),
    _act("broadcast.send", DEPARTMENT, SYSTEM),
    _act("fund.contribute", DEPARTMENT, SYSTEM),
    # The roster (名册): the department's word on who is on it, in which branch and role
    _act("roster.import", DEPARTMENT, SYSTEM),
    # Outcomes (帮扶成效): the year's plan, what came of the help, trainings
    _act("plan.set", DEPARTMENT, SYSTEM),
    _act("outcome.record", SEC_BRANCH, STAND_IN, DEPARTMENT),
    _act("outcome.record_passing", SEC_BRANCH, STAND_IN, DEPARTMENT),
    _act("outcome.follow_up_loan", SEC_BRANCH, STAND_IN, DEPARTMENT),
    _act("training.sign_in", ("member", Scope.OWN), subject_may_act=True),
)
BY_NAME = {act.name: act for act in ACTS}

# What only shows figures and changes nothing: who may see it. The supervision group is here
# and in no act (it sees, it does not act).
VIEWS: dict[str, tuple[str, ...]] = {
    "fund": ("supervisor", "department"),  # 基金
    "delivery": ("department", "supervisor"),  # 发送情况
    "signups": ("department", "supervisor"),  # 报名情况
    "visit_progress": ("secretary", "committee", "department"),  # 走访进度
}


class Actor(Protocol):
    """Who acts (members.service.Person)."""

    @property
    def id(self) -> int: ...

    @property
    def branch_id(self) -> int | None: ...

    @property
    def committee_id(self) -> int | None: ...

    def has(self, role: str) -> bool: ...


@dataclass(frozen=True)
class Subject:
    """Whose matter an act is about: the member (or borrower), where they belong, and for a
    checking act who made the step it checks. `secretaries`: the secretaries of the branch,
    so a stand-in is only allowed when none of them may act."""

    person_id: int | None = None
    branch_id: int | None = None
    committee_id: int | None = None
    maker_id: int | None = None
    assignee_id: int | None = None
    secretaries: frozenset[int] = field(default_factory=frozenset)


COUNTY_MATTER = Subject()  # an act on the county as a whole (a campaign, a notice, the fund)


class Refused(Exception):
    """An act that may not happen. `message` is a short Chinese sentence for the person who
    tried; `reason` is English for the log. Every refusal in the domain is one of these, so
    a front end rolls the act back and answers in one place."""

    def __init__(self, message: str, reason: str = "", *, fixable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message
        # An answer in the flow was wrong: the user may 修改 it and confirm again.
        self.fixable = fixable


def authorize(act_name: str, actor: Actor | None, role: str, subject: Subject) -> None:
    """Refuse (raise Refused) unless `actor`, acting as `role`, may make the act on the
    subject's matter. Writes nothing."""
    act = BY_NAME[act_name]
    if role == "system" or actor is None:
        if role == "system" and actor is None and _granted(act, "system"):
            return
        raise Refused(
            say("refused_role", act=act.label),
            f"{act_name}: only the system acts as the system, and only as it",
        )
    if role != "bound" and not actor.has(role):
        raise Refused(
            say("refused_role", act=act.label), f"{act_name}: actor does not hold the role {role}"
        )
    grants = [grant for grant in act.grants if grant.role == role]
    if not grants:
        raise Refused(say("refused_role", act=act.label), f"{act_name}: not for {role}")
    if subject.person_id == actor.id and not act.subject_may_act:
        raise Refused(say("refused_own"), f"{act_name}: the actor is its subject")
    if act.checker and subject.maker_id is not None and subject.maker_id == actor.id:
        raise Refused(say("refused_checker"), f"{act_name}: the maker may not check it")
    if not any(_reaches(grant.scope, actor, subject) for grant in grants):
        raise Refused(say("refused_scope", act=act.label), f"{act_name}: {role} out of scope")


def check(
    refusal: type[Refused], act_name: str, actor: Actor | None, role: str, subject: Subject
) -> None:
    """`authorize`, its refusal raised as the domain's own kind (a loan's, a case's), so
    the domain's callers need to know only their own."""
    try:
        authorize(act_name, actor, role, subject)
    except Refused as refused:
        if isinstance(refused, refusal):
            raise
        raise refusal(refused.message, refused.reason) from None


def _granted(act: Act, role: str) -> bool:
    return any(grant.role == role for grant in act.grants)


def _reaches(scope: Scope, actor: Actor, subject: Subject) -> bool:
    if scope is Scope.COUNTY:
        return True
    if scope is Scope.UNPLACED:
        return subject.committee_id is None
    if scope is Scope.ASSIGNED:
        return subject.assignee_id is not None and subject.assignee_id == actor.id
    if scope is Scope.OWN:
        return subject.person_id == actor.id
    if scope is Scope.BRANCH:
        return subject.branch_id is not None and actor.branch_id == subject.branch_id
    if scope is Scope.TOWNSHIP:
        return subject.committee_id is not None and actor.committee_id == subject.committee_id
    if scope is Scope.STAND_IN:
        able = subject.secretaries - {subject.person_id}
        return (
            not able
            and subject.committee_id is not None
            and actor.committee_id == subject.committee_id
        )
    return False


def able(act_name: str, actor: Actor, subject: Subject) -> str | None:
    """The role in which `actor` may make the act on this matter, if any (for deciding who
    gets a to-do, and for tests)."""
    for role in roles_of(act_name):
        try:
            authorize(act_name, actor, role, subject)
        except Refused:
            continue
        return role
    return None


def acting_role(act_name: str, actor: Actor | None, subject: Subject) -> str:
    """The role an actor makes the act in: one that the policy allows here, else the
    table's first (which `authorize` then refuses with the plain reason). A person may
    hold several roles (a township officer standing in for a branch's secretary)."""
    if actor is None:
        return "system"
    return able(act_name, actor, subject) or next(iter(roles_of(act_name)))


def may_make(actor: Actor, act_name: str, scope: str | None = None) -> bool:
    """Whether the actor holds a role the act grants somewhere (in `scope`, if named): what
    帮助 offers them. Whether they may make it on a given matter is `authorize`'s to say."""
    return any(
        grant.role != "system"
        and (grant.role == "bound" or actor.has(grant.role))
        and (scope is None or grant.scope == scope)
        for grant in BY_NAME[act_name].grants
    )


def may_see(actor: Actor, view: str) -> bool:
    """Whether the actor may see a view (VIEWS)."""
    return any(actor.has(role) for role in VIEWS[view])


def takes_steps(actor: Actor) -> bool:
    """Whether the actor holds a role that acts on other people's matters (and so gets
    to-dos): a role other than the member's, who acts only on their own matters."""
    return any(
        grant.role not in {"system", "bound", "member"} and actor.has(grant.role)
        for act in ACTS
        for grant in act.grants
    )


def roles_of(act_name: str) -> Iterable[str]:
    """The roles the table names for an act, in table order, without repeats."""
    seen: list[str] = []
    for grant in BY_NAME[act_name].grants:
        if grant.role not in seen:
            seen.append(grant.role)
    return seen


def table_markdown() -> str:
    """The table as the README shows it (`bangfu-bot authority` prints it)."""
    lines = ["| act | who | where |", "| --- | --- | --- |"]
    for act in ACTS:
        who = ", ".join(f"{grant.role} ({grant.scope})" for grant in act.grants)
        notes = []
        if act.subject_may_act:
            notes.append("the subject's own act")
        if act.checker:
            notes.append("never by its maker")
        lines.append(f"| `{act.name}` {act.label} | {who} | {'; '.join(notes)} |")
    return "\n".join(lines)
