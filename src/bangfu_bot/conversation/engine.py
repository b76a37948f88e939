"""Runs one user's dialogue: asks the current step, parses the answer, moves on.

The engine is pure with respect to the outside world: it changes a `Session` (state that
the router stores in the same transaction as the push) and returns the texts to send. The
final action is a named domain service that receives the answers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bangfu_bot.common.dates import chinese_date
from bangfu_bot.common.fields import (
    FieldError,
    clip_text,
    mask_id,
    name_lead,
    parse,
    parse_choice,
    parse_number,
    parse_yes_no,
    word_key,
)
from bangfu_bot.common.money import yuan
from bangfu_bot.conversation.flows import Flow, Step
from bangfu_bot.texts import speaker

SKIP_WORDS = {"跳过", "不知道", "不清楚", "没有", "无", "不用"}
DONE_WORDS = {"好了", "好", "完了", "发完了", "没有了", "没了", "就这些", "跳过", "没有", "不用"}
NONE_WORDS = {"没有", "无", "没", "零", "没收入"}
SUMMARY = "@summary"
RESUME = "@resume"
MORE = "@more"
# 修改 on a group: what to do (add, change, remove, keep), which item, which of its fields.
GROUP_MENU = "@group_menu"
GROUP_PICK = "@group_pick"
GROUP_FIELD = "@group_field"
GROUP_STEPS = {GROUP_MENU, GROUP_PICK, GROUP_FIELD}
GROUP_ACTIONS = ("group_add", "group_change", "group_remove", "group_keep")
# stays in Python: words people type, which the engine matches (修改 3, 改第二项)
EDIT = re.compile(
    r"^(?:修改|改)\s*第?\s*([0-9０-９]{1,2}|[零〇一二两三四五六七八九十]{1,3})\s*"
    r"(?:项|条|个)?$"
)
# The word that skips an optional question. A prompt that already says how to answer
# without an answer (回复“跳过”, 回复“没有”) gets no second hint saying it again.
SKIP_WORD = "跳过"
# How much of the end of a clipped answer is read back.
CLIP_TAIL = 12


say = speaker("bangfu_bot.conversation")


@dataclass
class Input:
    """What the user sent, reduced to what the engine needs."""

    kind: str  # text | voice | image | other
    text: str = ""
    media_id: str = ""


@dataclass
class Session:
    """A user's dialogue state (stored as JSON by the router)."""

    flow: str | None = None
    status: str = "idle"  # idle | active | paused
    state: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class ActionResult:
    """What a final action says, and whether a flow follows (e.g. 代办 → apply)."""

    text: str
    restart: bool = False
    stay: bool = False  # stay at the summary so the user can 修改 (nothing was done)
    then_flow: str | None = None
    then_context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """What a step's check says of an answer: `refusal` (asked again, nothing kept), or a
    `note` read before what follows, and values to `remember` in the flow's context (the
    summary's preview reads them)."""

    refusal: str = ""
    note: str = ""
    remember: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    """Everything the engine needs from the outside for one answer."""

    now: datetime
    today: date
    run_action: Callable[[Flow, dict[str, Any], dict[str, Any]], Awaitable[ActionResult]]
    run_check: Callable[[str, str, dict[str, Any], dict[str, Any]], Awaitable[Checked]] | None = (
        None
    )


Previewer = Callable[[dict[str, Any], dict[str, Any]], tuple[list[str], list[str]]]


def _counted(flow: Flow) -> dict[str, Any]:
    """{questions} and {per_item} for a flow's intro, counted from its steps."""
    low, high, per_item = flow.questions()
    if low == high:
        questions = say("questions_fixed", n=low)
    else:
        questions = say("questions_range", low=low, high=high)
    return {"questions": questions, "per_item": per_item}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


class Engine:
    """Interprets the flows for one session at a time."""

    def __init__(
        self, flows: dict[str, Flow], previews: dict[str, Previewer] | None = None
    ) -> None:
        self.flows = flows
        self.previews = previews or {}

    # --- starting, pausing, resuming ------------------------------------------------------

    def begin(
        self, session: Session, flow_name: str, now: datetime, context: dict[str, Any] | None = None
    ) -> list[str]:
        """Start a flow from its first question."""
        flow = self.flows[flow_name]
        session.flow = flow_name
        session.status = "active"
        session.started_at = now
        session.state = {
            "step": None,
            "answers": {},
            "history": [],
            "retries": 0,
            "context": dict(context or {}),
        }
        first = self._next_step(flow, session.state["answers"], None)
        intro = flow.intro.format_map(_Blank({**_counted(flow), **session.state["context"]}))
        return [intro, *self._enter(flow, session, first)]

    def cancel(self, session: Session) -> list[str]:
        """取消: stop, keeping the draft."""
        if session.status != "active":
            return [say("nothing_to_cancel")]
        session.status = "paused"
        return [say("cancelled")]

    def resume(self, session: Session) -> list[str]:
        """继续: pick up a paused or expired draft where it stopped."""
        if session.flow not in self.flows or session.status == "idle":
            return [say("nothing_to_resume")]
        flow = self.flows[session.flow]
        session.status = "active"
        state = session.state
        if state.get("step") == RESUME:
            state["step"] = state.pop("resume_to", None)
        return [say("resumed", title=flow.title), self._ask(flow, session)]

    def offer_resume(self, session: Session) -> list[str]:
        """An idle draft: ask whether to continue or start over."""
        flow = self.flows[session.flow or ""]
        if session.state.get("step") != RESUME:
            session.state["resume_to"] = session.state.get("step")
            session.state["step"] = RESUME
        session.status = "active"
        return [say("resume_offer", title=flow.title)]

    def help(self, session: Session) -> list[str]:
        """帮助 inside a flow: what can be said here, then the question again."""
        flow = self.flows[session.flow or ""]
        return [say("flow_help", title=flow.title), self._ask(flow, session)]

    def repeat(self, session: Session) -> list[str]:
        """Ask the current question again."""
        return [self._ask(self.flows[session.flow or ""], session)]

    # --- answering ---------------------------------------------------------------------------

    async def answer(self, session: Session, given: Input, turn: Turn) -> list[str]:
        """Apply one input to the active flow and say what comes next."""
        flow = self.flows[session.flow or ""]
        state = session.state
        step_id = state.get("step")
        if given.kind == "voice":
            return self._voice(flow, session, given)
        if "heard" in state:
            return await self._confirm_voice(session, given, turn)
        text = given.text.strip()
        if text == "返回":
            return self._back(flow, session)
        edit = EDIT.match(text)
        if edit:
            return self._edit(flow, session, parse_number(edit.group(1)))
        if step_id == RESUME:
            return self._resume_choice(flow, session, text, turn)
        if step_id == SUMMARY:
            return await self._confirm(flow, session, text, turn)
        if step_id == MORE:
            return self._more(flow, session, text)
        if step_id in GROUP_STEPS:
            if given.kind != "text" or not text:
                return self._failed(flow, session, say("reply_number"))
            return self._group_edit_answer(flow, session, text)
        step = self._current(flow, state)
        if step.type == "photo":
            return self._photo(flow, session, step, given)
        if given.kind == "image":
            return [say("photo_on_text_step"), self._ask(flow, session)]
        if given.kind != "text":
            return self._failed(flow, session, say("photo_on_text_step"))
        if not text:
            return self._failed(flow, session, say("empty_text"))
        if step.check and turn.run_check is not None and state.get("group") is None:
            return await self._take_checked(flow, session, step, text, turn)
        return self._take(flow, session, step, text, turn)

    def _take(self, flow: Flow, session: Session, step: Step, text: str, turn: Turn) -> list[str]:
        state = session.state
        group = state.get("group")
        if group is not None:
            opening = self._group_opening(flow, session, step, text)
            if opening is not None:
                return opening
        clipped: tuple[str, str] | None = None
        if step.type == "text" and not step.options.get("pattern"):
            # A long answer is kept up to the limit, not thrown away; the member is told.
            kept, cut = clip_text(text, int(step.options.get("max_length", 200)))
            if cut:
                text, clipped = kept, (kept, cut)
        prefilled: dict[str, Any] = {}
        if step.optional and text in SKIP_WORDS and step.type != "yes_no":
            value: Any = None
        else:
            try:
                value = self._parse(step, text, turn.today)
                self._not_before(step, value, state.get("context", {}))
            except FieldError as error:
                return self._failed(flow, session, error.message)
            if group is not None and step.type == "name":
                prefilled = self._said_with_name(flow, session, text)
        state["retries"] = 0
        said = [self._clipped(flow, session, step, *clipped)] if clipped else []
        if group is not None:
            group["item"][step.id] = value
            group["item"].update(prefilled)
            group["given"] = list(prefilled)
            group_step = flow.step(state["step"])
            said += [
                say("prefilled", label=sub.label, answer=show(sub, prefilled[sub.id]))
                for sub in group_step.fields
                if sub.id in prefilled
            ]
            return [*said, *self._after_group_field(flow, session)]
        state["answers"][step.id] = value
        return [*said, *self._advance(flow, session, step.id)]

    async def _take_checked(
        self, flow: Flow, session: Session, step: Step, text: str, turn: Turn
    ) -> list[str]:
        """Take the answer, then run the step's check: a refusal puts everything back as it
        was and asks again; otherwise its note comes first."""
        assert turn.run_check is not None
        before = copy.deepcopy(session.state)
        replies = self._take(flow, session, step, text, turn)
        state = session.state
        if state.get("retries") or step.id not in state["answers"]:
            return replies  # not taken: the parser's reason is already said
        checked = await turn.run_check(
            step.check, step.id, dict(state["answers"]), dict(state.get("context", {}))
        )
        if checked.refusal:
            session.state = before
            return self._failed(flow, session, checked.refusal)
        if checked.remember:
            state.setdefault("context", {}).update(checked.remember)
            if state.get("step") == SUMMARY:
                replies = self._summary(flow, session)  # read again with what was learnt
        return [checked.note, *replies] if checked.note else replies

    def _clipped(self, flow: Flow, session: Session, step: Step, kept: str, cut: str) -> str:
        """Tell what of a long answer was kept, where it stops, and how to change it."""
        state = session.state
        owner = state["step"] if state.get("group") is not None else step.id
        answers = {**state["answers"], owner: state["answers"].get(owner, "")}
        numbers = [s.id for s in self._applicable(flow, answers)]
        tail = kept[-CLIP_TAIL:]
        return say(
            "clipped",
            kept=len(kept),
            tail=tail,
            cut=len(cut),
            head=cut[:CLIP_TAIL],
            n=numbers.index(owner) + 1,
        )

    def _said_with_name(self, flow: Flow, session: Session, text: str) -> dict[str, Any]:
        """「老伴叫李长贵」 names the person and answers a later choice in the same group
        (关系: 配偶), through that choice's words and synonyms in the flow file."""
        lead, _ = name_lead(text)
        if not lead or any(ch.isdigit() for ch in lead):
            return {}
        state = session.state
        group_step = flow.step(state["step"])
        for later in group_step.fields[state["group"]["field"] + 1 :]:
            if later.type != "choice":
                continue
            try:
                index = parse_choice(lead, later.choices, later.options.get("synonyms"))
            except FieldError:
                continue
            return {later.id: later.choices[index]}
        return {}

    @staticmethod
    def _not_before(step: Step, value: Any, context: dict[str, Any]) -> None:
        """A date step's `not_before` names a date in the flow's context (the day the case
        was applied for) that the answer may not be earlier than."""
        floor = context.get(str(step.options.get("not_before", "")))
        if step.type != "date" or not floor or value is None or str(value) >= str(floor):
            return
        hint = str(step.options["not_before_hint"])
        raise FieldError(hint.format_map(_Blank(date=chinese_date(date.fromisoformat(floor)))))

    def _parse(self, step: Step, text: str, today: date) -> Any:
        pattern = step.options.get("pattern")
        if step.type == "text" and pattern:
            compact = re.sub(r"\s+", "", text)
            if not re.fullmatch(pattern, compact):
                raise FieldError(step.options["pattern_hint"])
            return compact
        if step.type == "money" and text in NONE_WORDS:
            return 0
        options = {
            key: value
            for key, value in step.options.items()
            if key not in {"pattern", "pattern_hint", "hint", "not_before", "not_before_hint"}
        }
        value = parse(step.type, text, options=options, today=today)
        if step.type == "choice":
            assert isinstance(value, int)  # parse_choice gives the chosen index
            return step.choices[value]
        if isinstance(value, date):
            return value.isoformat()
        return value

    def _failed(self, flow: Flow, session: Session, message: str) -> list[str]:
        state = session.state
        state["retries"] = state.get("retries", 0) + 1
        replies = [message, self._ask(flow, session)]
        if state["retries"] >= 3:
            replies.append(say("retry_help"))
        return replies

    # --- moving between steps --------------------------------------------------------------

    def _current(self, flow: Flow, state: dict[str, Any]) -> Step:
        step = flow.step(state["step"])
        group = state.get("group")
        if group is not None:
            return step.fields[group["field"]]
        return step

    def _next_step(self, flow: Flow, answers: dict[str, Any], after: str | None) -> str | None:
        if after is None:
            candidate: str | None = flow.steps[0].id
        else:
            step = flow.step(after)
            candidate = step.next or _following(flow, after)
        while candidate is not None:
            step = flow.step(candidate)
            if step.when is None or step.when.holds(answers):
                return candidate
            candidate = _following(flow, candidate)
        return None

    def _advance(self, flow: Flow, session: Session, from_id: str) -> list[str]:
        state = session.state
        if not state["history"] or state["history"][-1] != from_id:
            state["history"].append(from_id)
        if state.get("editing"):
            # After a change, ask only what the change made necessary, then the summary.
            target = self._first_unanswered(flow, state["answers"], from_id)
            if target is None:
                state.pop("editing")
        else:
            target = self._next_step(flow, state["answers"], from_id)
        return self._enter(flow, session, target)

    def _first_unanswered(self, flow: Flow, answers: dict[str, Any], after: str) -> str | None:
        candidate = self._next_step(flow, answers, after)
        while candidate is not None and candidate in answers:
            candidate = self._next_step(flow, answers, candidate)
        return candidate

    def _enter(self, flow: Flow, session: Session, step_id: str | None) -> list[str]:
        state = session.state
        if step_id is None:
            state["step"] = SUMMARY
            return self._summary(flow, session)
        state["step"] = step_id
        step = flow.step(step_id)
        if step.type == "group":
            state["group"] = {"field": 0, "item": {}}
            state["answers"][step_id] = []
            return [step.prompt, self._ask(flow, session)]
        return [self._ask(flow, session)]

    def _after_group_field(self, flow: Flow, session: Session) -> list[str]:
        state = session.state
        group_step = flow.step(state["step"])
        group = state["group"]
        items = state["answers"][group_step.id]
        if group.get("mode") == "change":
            items[group["index"]] = group["item"]
            return self._group_done(flow, session)
        group["field"] += 1
        # A field already answered with an earlier one (「老伴叫李长贵」 gave 关系) is not asked.
        while group["field"] < len(group_step.fields) and group_step.fields[
            group["field"]
        ].id in group.get("given", []):
            group["field"] += 1
        if group["field"] < len(group_step.fields):
            return [self._ask(flow, session)]
        items.append(group["item"])
        state["group"] = None
        if group.get("mode") == "add":
            return self._group_done(flow, session)
        if len(items) >= group_step.max_items:
            state["group_step"] = group_step.id
            return [
                say("too_many_items", count=len(items)),
                *self._advance(flow, session, group_step.id),
            ]
        state["group_step"] = group_step.id
        state["step"] = MORE
        return [group_step.more + "\n" + say("yes_no_hint")]

    def _group_opening(
        self, flow: Flow, session: Session, step: Step, text: str
    ) -> list[str] | None:
        """The first field of a new item in a group with `none_words`: 「没有」, 「就我一个人」
        or a no ends the group; a yes asks the field's own question. None: take it as an
        answer to the field."""
        state = session.state
        group = state["group"]
        group_step = flow.step(state["step"])
        if group["field"] != 0 or group.get("mode") == "change" or not group_step.none_words:
            return None
        said = word_key(text)
        nobody = said in {word_key(word) for word in group_step.none_words}
        if not nobody:
            try:
                nobody = not parse_yes_no(text)
            except FieldError:
                return None
            if not nobody:
                state["retries"] = 0
                return [step.prompt]
        state["retries"] = 0
        state["group"] = None
        items = state["answers"][group_step.id]
        noted = (
            []
            if items
            else [say("group_none_noted", label=group_step.label, empty=show(group_step, []))]
        )
        return [*noted, *self._group_done(flow, session)]

    def _group_done(self, flow: Flow, session: Session) -> list[str]:
        """A group is finished (or its change is): on to what follows, or the summary."""
        state = session.state
        group_id = state.pop("group_step", None) or state["step"]
        for key in ("group_action", "group_index"):
            state.pop(key, None)
        state["group"] = None
        state["step"] = group_id
        return self._advance(flow, session, group_id)

    def _group_menu(self, flow: Flow, session: Session) -> list[str]:
        """修改 on a group with items: what is there, then add, change, remove or keep."""
        session.state["step"] = GROUP_MENU
        return [self._ask(flow, session)]

    def _group_edit_answer(self, flow: Flow, session: Session, text: str) -> list[str]:
        state = session.state
        group_step = flow.step(state["group_step"])
        items = state["answers"][group_step.id]
        step_id = state["step"]
        try:
            if step_id == GROUP_MENU:
                action = GROUP_ACTIONS[parse_choice(text, [say(key) for key in GROUP_ACTIONS])]
            elif step_id == GROUP_PICK:
                index = self._pick(
                    text, [str(item.get(group_step.fields[0].id, "")) for item in items]
                )
            else:
                field = self._pick(text, [sub.label for sub in group_step.fields])
        except FieldError as error:
            return self._failed(flow, session, error.message)
        state["retries"] = 0
        if step_id == GROUP_MENU:
            if action == "group_keep":
                return self._group_done(flow, session)
            if action == "group_add":
                if len(items) >= group_step.max_items:
                    return [say("too_many_items", count=len(items)), self._ask(flow, session)]
                state["step"] = group_step.id
                state["group"] = {"field": 0, "item": {}, "mode": "add"}
                return [self._ask(flow, session)]
            state["group_action"] = action
            if action == "group_change" and len(items) == 1:
                return self._group_item(flow, session, 0)
            state["step"] = GROUP_PICK
            return [self._ask(flow, session)]
        if step_id == GROUP_PICK:
            if state.get("group_action") == "group_remove":
                removed = items.pop(index)
                return [
                    say("group_removed", item=_item(group_step, removed)),
                    *self._group_done(flow, session),
                ]
            return self._group_item(flow, session, index)
        return self._group_field(flow, session, state["group_index"], field)

    def _group_item(self, flow: Flow, session: Session, index: int) -> list[str]:
        """Change one item: which of its fields (asked only when there is a choice)."""
        state = session.state
        state["group_index"] = index
        if len(flow.step(state["group_step"]).fields) == 1:
            return self._group_field(flow, session, index, 0)
        state["step"] = GROUP_FIELD
        return [self._ask(flow, session)]

    def _group_field(self, flow: Flow, session: Session, index: int, field: int) -> list[str]:
        state = session.state
        group_step = flow.step(state["group_step"])
        item = dict(state["answers"][group_step.id][index])
        state["step"] = group_step.id
        state["group"] = {"field": field, "item": item, "mode": "change", "index": index}
        return [self._ask(flow, session)]

    @staticmethod
    def _pick(text: str, names: list[str]) -> int:
        """A number from 1 to len(names), or one of the names: the 0-based index."""
        if text.strip() in names:
            return names.index(text.strip())
        return parse_number(text, minimum=1, maximum=len(names)) - 1

    def _group_lines(self, group_step: Step, items: list[dict[str, Any]]) -> str:
        return "\n".join(
            say("numbered", n=n, text=_item(group_step, item))
            for n, item in enumerate(items, start=1)
        )

    def _more(self, flow: Flow, session: Session, text: str) -> list[str]:
        state = session.state
        group_id = state["group_step"]
        try:
            more = parse_yes_no(text)
        except FieldError as error:
            return self._failed(flow, session, error.message)
        state["retries"] = 0
        state["step"] = group_id
        if more:
            state["group"] = {"field": 0, "item": {}}
            return [self._ask(flow, session)]
        state.pop("group_step", None)
        return self._advance(flow, session, group_id)

    def _back(self, flow: Flow, session: Session) -> list[str]:
        state = session.state
        group = state.get("group")
        if state.get("step") in GROUP_STEPS or (
            group is not None
            and group.get("mode")
            and (group["field"] == 0 or group["mode"] == "change")
        ):
            # Backing out of a change to a group leaves it as it was, at the summary.
            for key in ("group_step", "group_action", "group_index", "editing"):
                state.pop(key, None)
            state["group"] = None
            state["step"] = SUMMARY
            return self._summary(flow, session)
        if group is not None and group["field"] > 0:
            group["field"] -= 1
            return [self._ask(flow, session)]
        if state.get("step") == MORE:
            state["step"] = state.pop("group_step")
            items = state["answers"][state["step"]]
            last = items.pop() if items else {}
            fields = flow.step(state["step"]).fields
            state["group"] = {"field": len(fields) - 1, "item": last}
            return [self._ask(flow, session)]
        if not state["history"]:
            return [say("back_at_start"), self._ask(flow, session)]
        previous = state["history"].pop()
        state["group"] = None
        state.pop("editing", None)
        state["step"] = previous
        step = flow.step(previous)
        if step.type == "group":
            return self._enter(flow, session, previous)
        return [self._ask(flow, session, show_current=True)]

    def _edit(self, flow: Flow, session: Session, number: int) -> list[str]:
        state = session.state
        in_group_change = state.get("step") in GROUP_STEPS or (state.get("group") or {}).get("mode")
        if state.get("step") != SUMMARY and not in_group_change:
            return [say("edit_not_now"), self._ask(flow, session)]
        applicable = self._applicable(flow, state["answers"])
        if not 1 <= number <= len(applicable):
            if len(applicable) == 1:
                return [say("edit_out_of_range_one", n=number)]
            return [
                say(
                    "edit_out_of_range",
                    n=number,
                    count=len(applicable),
                    example=_example(len(applicable)),
                )
            ]
        for key in ("group_step", "group_action", "group_index"):
            state.pop(key, None)
        state["group"] = None
        step = applicable[number - 1]
        state["editing"] = True
        if step.type == "group":
            if state["answers"].get(step.id):
                state["group_step"] = step.id
                return self._group_menu(flow, session)
            return self._enter(flow, session, step.id)
        state["step"] = step.id
        return [self._ask(flow, session, show_current=True)]

    def _resume_choice(self, flow: Flow, session: Session, text: str, turn: Turn) -> list[str]:
        if text in {"1", "接着填", "继续"}:
            return self.resume(session)
        if text in {"2", "重新开始", "重新填"}:
            context = session.state.get("context", {})
            return [say("restarted"), *self.begin(session, flow.name, turn.now, context)[1:]]
        return [say("resume_choice")]

    # --- photos and voice ---------------------------------------------------------------------

    def _photo(self, flow: Flow, session: Session, step: Step, given: Input) -> list[str]:
        state = session.state
        photos = state["answers"].setdefault(step.id, [])
        if given.kind == "image" and given.media_id:
            photos.append(given.media_id)
            return [say("photo_received")]
        text = given.text.strip()
        if text in DONE_WORDS:
            if not photos and not step.optional:
                return [say("photo_needed")]
            return self._advance(flow, session, step.id)
        return [say("text_on_photo_step")]

    def _voice(self, flow: Flow, session: Session, given: Input) -> list[str]:
        heard = given.text.strip()
        if not heard:
            return self._failed(flow, session, say("voice_unclear"))
        session.state["heard"] = heard
        return [say("voice_heard", text=heard)]

    async def _confirm_voice(self, session: Session, given: Input, turn: Turn) -> list[str]:
        heard = session.state.pop("heard")
        flow = self.flows[session.flow or ""]
        try:
            right = parse_yes_no(given.text)
        except FieldError:
            session.state["heard"] = heard
            return [say("voice_heard", text=heard)]
        if not right:
            return [say("voice_again"), self._ask(flow, session)]
        return await self.answer(session, Input("text", heard), turn)

    # --- summary and the final action --------------------------------------------------------

    def _applicable(self, flow: Flow, answers: dict[str, Any]) -> list[Step]:
        return [
            step
            for step in flow.steps
            if (step.when is None or step.when.holds(answers)) and step.id in answers
        ]

    def _summary(self, flow: Flow, session: Session) -> list[str]:
        answers = session.state["answers"]
        lines = [flow.summary]
        for number, step in enumerate(self._applicable(flow, answers), start=1):
            lines.append(
                say(
                    "summary_item",
                    n=number,
                    label=step.label,
                    answer=show(step, answers.get(step.id)),
                )
            )
        read_back, problems = self._preview(flow, session)
        session.state["blocked"] = problems
        if problems:
            return ["\n".join(lines), "\n".join(problems)]
        return ["\n".join([*lines, *read_back]), self._confirm_text(flow, session)]

    def _confirm_text(self, flow: Flow, session: Session) -> str:
        """The flow's confirm line, its example 修改 number one that the summary has."""
        values = {**session.state.get("context", {}), "example": self._example(flow, session)}
        return flow.confirm.format_map(_Blank(values))

    def _example(self, flow: Flow, session: Session) -> int:
        return _example(len(self._applicable(flow, session.state["answers"])))

    def _preview(self, flow: Flow, session: Session) -> tuple[list[str], list[str]]:
        # A flow may compute something from the answers to read back (an evaluation's
        # result) or find them inconsistent, which blocks confirming until 修改.
        if not flow.preview:
            return [], []
        answers = {
            step.id: session.state["answers"].get(step.id)
            for step in self._applicable(flow, session.state["answers"])
        }
        return self.previews[flow.preview](answers, session.state.get("context", {}))

    async def _confirm(self, flow: Flow, session: Session, text: str, turn: Turn) -> list[str]:
        try:
            confirmed = parse_yes_no(text)
        except FieldError:
            return [
                say("edit_which", example=self._example(flow, session)),
                self._confirm_text(flow, session),
            ]
        if not confirmed:
            return [say("not_confirmed", example=self._example(flow, session))]
        if session.state.get("blocked"):
            return list(session.state["blocked"])
        answers = {
            step.id: session.state["answers"].get(step.id)
            for step in self._applicable(flow, session.state["answers"])
        }
        result = await turn.run_action(flow, answers, session.state.get("context", {}))
        if result.stay:
            return [result.text, say("edit_which", example=self._example(flow, session))]
        if result.restart:
            return [
                result.text,
                *self.begin(session, flow.name, turn.now, session.state.get("context"))[1:],
            ]
        session.status = "idle"
        session.flow = None
        session.state = {}
        if result.then_flow:
            return [
                result.text,
                *self.begin(session, result.then_flow, turn.now, result.then_context),
            ]
        return [result.text]

    # --- rendering ------------------------------------------------------------------------------

    def _ask(self, flow: Flow, session: Session, show_current: bool = False) -> str:
        state = session.state
        step_id = state.get("step")
        if step_id == SUMMARY:
            return "\n".join(self._summary(flow, session))
        if step_id == RESUME:
            return say("resume_offer", title=flow.title)
        if step_id == MORE:
            return flow.step(state["group_step"]).more + "\n" + say("yes_no_hint")
        if step_id in GROUP_STEPS:
            return self._ask_group_change(flow, state)
        step = self._current(flow, state)
        group = state.get("group")
        lines = []
        if show_current and step.id in state["answers"] and group is None:
            lines.append(say("current_answer", answer=show(step, state["answers"][step.id])))
        if group is not None and group.get("mode") == "change":
            lines.append(say("current_answer", answer=show(step, group["item"].get(step.id))))
        prompt = step.prompt
        if group is not None and group["field"] == 0 and not group.get("mode"):
            group_step = flow.step(str(step_id))
            if group_step.first and not state["answers"].get(step_id):
                prompt = group_step.first
        lines.append(prompt.format_map(_Blank(state.get("context", {}))))
        if step.type == "choice":
            lines.extend(f"{n}. {choice}" for n, choice in enumerate(step.choices, start=1))
        if step.type == "yes_no" and "回复" not in step.prompt:
            lines.append(say("yes_no_hint"))
        if step.type == "photo":
            lines.append(say("photo_hint"))
        if step.options.get("hint"):
            lines.append(str(step.options["hint"]))
        if (
            step.optional
            and step.type not in {"photo", "yes_no"}
            and not any(f"“{word}”" in line for line in lines for word in SKIP_WORDS)
        ):
            lines.append(say("optional_hint"))
        return "\n".join(lines)

    def _ask_group_change(self, flow: Flow, state: dict[str, Any]) -> str:
        group_step = flow.step(state["group_step"])
        items = state["answers"][group_step.id]
        if state["step"] == GROUP_MENU:
            actions = "\n".join(
                say("numbered", n=n, text=say(key)) for n, key in enumerate(GROUP_ACTIONS, start=1)
            )
            return say(
                "group_menu",
                label=group_step.label,
                items=self._group_lines(group_step, items),
                actions=actions,
            )
        if state["step"] == GROUP_PICK:
            key = (
                "group_pick_remove"
                if state.get("group_action") == "group_remove"
                else "group_pick_change"
            )
            return say(key, items=self._group_lines(group_step, items))
        item = items[state["group_index"]]
        fields = "\n".join(
            say("summary_item", n=n, label=sub.label, answer=show(sub, item.get(sub.id)))
            for n, sub in enumerate(group_step.fields, start=1)
        )
        return say("group_pick_field", item=_item(group_step, item), fields=fields)


def _example(count: int) -> int:
    """An example number for 修改 that a summary of `count` items has."""
    return 2 if count >= 2 else 1


def _following(flow: Flow, step_id: str) -> str | None:
    position = flow.index(step_id)
    return flow.steps[position + 1].id if position + 1 < len(flow.steps) else None


def show(step: Step, value: Any) -> str:
    """An answer as the member reads it back in the summary."""
    if value is None:
        return say("skipped")
    if step.type == "yes_no":
        return say("yes") if value else say("no")
    if step.type == "money":
        return yuan(int(value))
    if step.type == "date":
        return chinese_date(date.fromisoformat(value))
    if step.type == "photo":
        return say("photo_count", count=len(value)) if value else say("skipped")
    if step.type == "group":
        if not value:
            return step.empty or say("group_empty")
        return say("items_joiner").join(_item(step, item) for item in value)
    if step.type == "id_number":
        return mask_id(str(value))
    return str(value)


def _item(step: Step, item: dict[str, Any]) -> str:
    shown = {sub.id: show(sub, item.get(sub.id)) for sub in step.fields}
    if step.item:
        try:
            return step.item.format(**shown)
        except (KeyError, IndexError):
            pass
    return say("fields_joiner").join(shown.values())
