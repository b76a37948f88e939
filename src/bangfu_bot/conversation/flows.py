"""Loading and checking the dialogues in conversations/*.toml.

A flow is data: its steps name their field, prompt, type, choices, validation, when they
apply and what comes next; the flow names its final action (a domain service). `check`
reports every problem with file and line, so a typo never reaches a member: the server
refuses to start instead.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bangfu_bot.authority import BY_NAME
from bangfu_bot.common.fields import KINDS
from bangfu_bot.common.fields import OPTION_KEYS as FIELD_OPTIONS
from bangfu_bot.texts import texts

STEP_TYPES = KINDS | {"photo", "group"}
REQUIRES = {"any", "bound", "member", "secretary", "committee", "department", "supervisor"}
FLOW_KEYS = {
    "name",
    "title",
    "requires",
    "act",
    "intro",
    "action",
    "preview",
    "summary",
    "confirm",
    "done",
}
STEP_KEYS = {
    "id",
    "label",
    "prompt",
    "type",
    "choices",
    "min",
    "max",
    "min_yuan",
    "max_yuan",
    "allow_future",
    "allow_past",
    "max_length",
    "pattern",
    "pattern_hint",
    "optional",
    "when",
    "next",
    "fields",
    "more",
    "item",
    "max_items",
    "hint",
    "synonyms",
    "first",
    "none_words",
    "empty",
    "not_before",
    "not_before_hint",
    "check",
}
GROUP_KEYS = {"fields", "more", "item", "max_items", "first", "none_words", "empty"}
WHEN_KEYS = {"field", "is", "in", "not"}
STEP_OPTIONS = {
    "choices",
    "min",
    "max",
    "min_yuan",
    "max_yuan",
    "allow_future",
    "allow_past",
    "max_length",
    "pattern",
    "pattern_hint",
    "synonyms",
}
# A fixed number after 修改 in a flow's texts may not fit its summary: write {example}.
FIXED_EDIT_EXAMPLE = re.compile(r"修改\s*[0-9]")


@dataclass(frozen=True)
class Condition:
    """When a step applies: an earlier answer is, is in, or is not some value."""

    field: str
    op: str
    value: Any

    def holds(self, answers: dict[str, Any]) -> bool:
        """Whether the condition is true for these answers."""
        answer = answers.get(self.field)
        if self.op == "is":
            return bool(answer == self.value)
        if self.op == "in":
            return answer in self.value
        return bool(answer != self.value)


@dataclass(frozen=True)
class Step:
    """One question (or a repeating group of questions)."""

    id: str
    label: str
    prompt: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    when: Condition | None = None
    next: str | None = None
    fields: tuple[Step, ...] = ()
    more: str = ""
    item: str = ""
    max_items: int = 20
    first: str = ""
    none_words: tuple[str, ...] = ()
    empty: str = ""
    line: int = 0
    # A domain's check run right after the step is answered (registry `checks`): it may
    # refuse the answer or say what the answer means (a notice's audience and its reach).
    check: str = ""

    @property
    def choices(self) -> list[str]:
        """The numbered choices of a choice step."""
        return list(self.options.get("choices", []))


@dataclass(frozen=True)
class Flow:
    """A dialogue: steps in order, a final action, and its texts."""

    name: str
    title: str
    requires: str
    intro: str
    action: str
    steps: tuple[Step, ...]
    path: str
    summary: str = texts("bangfu_bot.conversation")["flow_summary"]
    confirm: str = texts("bangfu_bot.conversation")["flow_confirm"]
    done: str = ""
    preview: str = ""
    # The act of the authority policy the flow leads to: only those holding a role it grants
    # may begin it (and 帮助 offers it to them alone). `requires` holds as well.
    act: str = ""

    def step(self, step_id: str) -> Step:
        """The step with this id."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def questions(self) -> tuple[int, int, int]:
        """How many answers the flow asks, from its steps: the fewest and the most outside
        its groups (a step with `when` only sometimes), and how many each item of a group
        adds (its fields and 「还有吗」). The intro says it as {questions} and {per_item}, so
        it cannot drift from the steps."""
        low = high = per_item = 0
        for step in self.steps:
            if step.type == "group":
                per_item = len(step.fields) + 1
                continue
            high += 1
            low += 0 if step.when is not None else 1
        return low, high, per_item

    def index(self, step_id: str) -> int:
        """The position of a step in the flow."""
        return [step.id for step in self.steps].index(step_id)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a flow file."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FlowsInvalid(Exception):
    """Flow files have problems; str() lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


class _Lines:
    """Finds the line of a step or a key in the raw TOML (tomllib gives no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.step_lines = [
            n + 1 for n, line in enumerate(self.lines) if re.match(r"\s*\[\[step\]\]", line)
        ]
        self.field_lines = [
            n + 1 for n, line in enumerate(self.lines) if re.match(r"\s*\[\[step\.fields\]\]", line)
        ]

    def subtable(self, name: str, start: int) -> int:
        """The line of `[step.synonyms]` (or `[step.fields.synonyms]`) after `start`."""
        for n in range(max(start, 1), len(self.lines)):
            if re.match(rf"\s*\[step(?:\.fields)?\.{re.escape(name)}\]", self.lines[n]):
                return n + 1
            if n >= start and re.match(r"\s*\[\[step", self.lines[n]):
                break
        return start

    def table_line(self, name: str) -> int:
        for n, line in enumerate(self.lines, start=1):
            if re.match(rf"\s*\[{re.escape(name)}\]", line):
                return n
        return 1

    def key(self, key: str, start: int, default: int) -> int:
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        for n in range(max(start - 1, 0), len(self.lines)):
            if n >= start and re.match(r"\s*\[", self.lines[n]):
                break
            if pattern.match(self.lines[n]):
                return n + 1
        return default


def load_flows(
    directory: str | Path,
    actions: Iterable[str],
    previews: Iterable[str] = (),
    checks: Iterable[str] = (),
) -> dict[str, Flow]:
    """Load every flow file; raise FlowsInvalid listing every problem."""
    problems: list[Problem] = []
    flows: dict[str, Flow] = {}
    paths = sorted(Path(directory).glob("*.toml"))
    for path in paths:
        if path.stem in {"menu", "commands", "eligibility", "holidays", "templates"}:
            continue  # not flows: data files read by their own modules
        flow = _load_one(path, set(actions), set(previews), set(checks), problems)
        if flow is not None:
            flows[flow.name] = flow
    if not paths:
        problems.append(Problem(str(directory), 0, "no flow files found"))
    if problems:
        raise FlowsInvalid(problems)
    return flows


def _load_one(
    path: Path, actions: set[str], previews: set[str], checks: set[str], problems: list[Problem]
) -> Flow | None:
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        problems.append(Problem(shown, 0, "not UTF-8"))
        return None
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+)", str(error))
        problems.append(Problem(shown, int(found.group(1)) if found else 0, f"TOML: {error}"))
        return None
    lines = _Lines(text)
    top = lines.table_line("flow")
    before = len(problems)
    head = data.get("flow")
    if not isinstance(head, dict):
        problems.append(Problem(shown, 1, "missing [flow] table"))
        return None
    for key in sorted(set(data) - {"flow", "step"}):
        problems.append(Problem(shown, lines.key(key, top, top), f"unknown table or key {key!r}"))
    for key in sorted(set(head) - FLOW_KEYS):
        problems.append(Problem(shown, lines.key(key, top, top), f"[flow]: unknown key {key!r}"))
    name = str(head.get("name", ""))
    if name != path.stem:
        problems.append(
            Problem(
                shown,
                lines.key("name", top, top),
                f"[flow] name {name!r} must match the file name {path.stem!r}",
            )
        )
    requires = str(head.get("requires", "any"))
    if requires not in REQUIRES:
        problems.append(
            Problem(
                shown,
                lines.key("requires", top, top),
                f"[flow] requires {requires!r}: one of {sorted(REQUIRES)}",
            )
        )
    action = str(head.get("action", ""))
    if action not in actions:
        problems.append(
            Problem(
                shown,
                lines.key("action", top, top),
                f"[flow] action {action!r} is not a known domain service",
            )
        )
    act = str(head.get("act", ""))
    if act and act not in BY_NAME:
        problems.append(
            Problem(
                shown,
                lines.key("act", top, top),
                f"[flow] act {act!r} is not an act of the authority policy",
            )
        )
    preview = str(head.get("preview", ""))
    if preview and preview not in previews:
        problems.append(
            Problem(
                shown,
                lines.key("preview", top, top),
                f"[flow] preview {preview!r} is not a known domain service",
            )
        )
    for key in ("title", "intro"):
        if not str(head.get(key, "")).strip():
            problems.append(Problem(shown, 1, f"[flow] missing {key}"))
    for key in ("summary", "confirm"):
        if FIXED_EDIT_EXAMPLE.search(str(head.get(key, ""))):
            problems.append(
                Problem(
                    shown,
                    lines.key(key, top, top),
                    f"[flow] {key}: a fixed number after 修改 may not fit the "
                    "summary; write {example}",
                )
            )
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(Problem(shown, 1, "a flow needs at least one [[step]]"))
        return None
    field_cursor = iter(lines.field_lines)
    steps = []
    for index, raw in enumerate(raw_steps):
        line = lines.step_lines[index] if index < len(lines.step_lines) else 0
        steps.append(_step(raw, line, lines, field_cursor, shown, problems, nested=False))
    _check_graph(steps, shown, problems, lines)
    for step in steps:
        if step.check and step.check not in checks:
            problems.append(
                Problem(
                    shown,
                    lines.key("check", step.line, step.line),
                    f"step {step.id!r}: check {step.check!r} is not a known domain service",
                )
            )
    if len(problems) > before:
        return None
    optional = {
        key: str(head[key])
        for key in ("summary", "confirm", "done", "preview", "act")
        if key in head
    }
    return Flow(
        name=name,
        title=str(head["title"]),
        requires=requires,
        intro=str(head["intro"]),
        action=action,
        steps=tuple(steps),
        path=shown,
        **optional,
    )


def _step(
    raw: dict[str, Any],
    line: int,
    lines: _Lines,
    field_cursor: Any,
    shown: str,
    problems: list[Problem],
    *,
    nested: bool,
) -> Step:
    step_id = str(raw.get("id", ""))
    where = f"step {step_id!r}" if step_id else "step"

    def problem(message: str, key: str | None = None) -> None:
        problems.append(
            Problem(shown, lines.key(key, line, line) if key else line, f"{where}: {message}")
        )

    for key in sorted(set(raw) - STEP_KEYS):
        problem(f"unknown key {key!r}", key)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", step_id):
        problem("id must be lower-case letters, digits and _", "id")
    kind = str(raw.get("type", ""))
    if kind not in STEP_TYPES:
        problem(f"type {kind!r}: one of {sorted(STEP_TYPES)}", "type")
    if not str(raw.get("prompt", "")).strip():
        problem("missing prompt")
    if kind == "choice" and not (isinstance(raw.get("choices"), list) and raw["choices"]):
        problem("a choice step needs choices", "choices")
    if "pattern" in raw:
        try:
            re.compile(str(raw["pattern"]))
        except re.error as error:
            problem(f"pattern does not compile: {error}", "pattern")
        if not raw.get("pattern_hint"):
            problem("a pattern needs a pattern_hint telling the user what to type", "pattern")
    if kind in KINDS:
        allowed = (
            FIELD_OPTIONS[kind]
            | {"hint"}
            | ({"pattern", "pattern_hint"} if kind == "text" else set())
        )
        for key in sorted(set(raw) & STEP_OPTIONS - allowed):
            problem(f"{key!r} does not apply to a {kind} step", key)
    when = _condition(raw.get("when"), problem)
    fields: list[Step] = []
    if kind == "group":
        if nested:
            problem("groups cannot be nested")
        if not str(raw.get("more", "")).strip():
            # stays in Python: `flows check` speaks English; the Chinese is a flow's example
            problem("a group needs `more` (the “还有吗？” question)")
        for sub in raw.get("fields", []) or []:
            sub_line = next(field_cursor, line)
            fields.append(_step(sub, sub_line, lines, field_cursor, shown, problems, nested=True))
        if not fields:
            problem("a group needs [[step.fields]]")
        none_words = raw.get("none_words", [])
        if not isinstance(none_words, list) or not all(
            isinstance(word, str) and word.strip() for word in none_words
        ):
            problem("none_words must be a list of words", "none_words")
        elif none_words and not (fields and fields[0].type == "name"):
            problem("none_words needs a group whose first field is a name", "none_words")
    else:
        for key in sorted(set(raw) & (GROUP_KEYS - {"fields", "more"})):
            problem(f"{key!r} applies to a group step only", key)
    if "not_before" in raw:
        if kind != "date":
            problem("not_before applies to a date step only", "not_before")
        elif not str(raw.get("not_before_hint", "")).strip():
            problem(
                "not_before needs a not_before_hint telling the user what to type", "not_before"
            )
    if "synonyms" in raw:
        synonyms_line = lines.subtable("synonyms", line)
        _check_synonyms(
            raw,
            lambda message: problems.append(Problem(shown, synonyms_line, f"{where}: {message}")),
        )
    options: dict[str, Any] = {
        key: raw[key]
        for key in (
            "choices",
            "min",
            "max",
            "min_yuan",
            "max_yuan",
            "allow_future",
            "allow_past",
            "max_length",
            "pattern",
            "pattern_hint",
            "hint",
            "synonyms",
            "not_before",
            "not_before_hint",
        )
        if key in raw
    }
    none_words = raw.get("none_words", [])
    return Step(
        id=step_id,
        label=str(raw.get("label", step_id)),
        prompt=str(raw.get("prompt", "")),
        type=kind,
        options=options,
        optional=bool(raw.get("optional", False)),
        when=when,
        next=raw.get("next"),
        fields=tuple(fields),
        more=str(raw.get("more", "")),
        item=str(raw.get("item", "")),
        max_items=int(raw.get("max_items", 20)),
        first=str(raw.get("first", "")),
        none_words=tuple(str(w) for w in none_words) if isinstance(none_words, list) else (),
        empty=str(raw.get("empty", "")),
        line=line,
        check=str(raw.get("check", "")),
    )


def _check_synonyms(raw: dict[str, Any], problem: Any) -> None:
    """A choice's synonyms: a table from a choice to the other words people use for it.

    Each word names one choice only, is not another choice's text, and is not a number
    (numbers pick a choice by its position)."""
    synonyms = raw["synonyms"]
    if not isinstance(synonyms, dict):
        problem("synonyms must be a table: a choice = [the words people use for it]")
        return
    choices = [str(choice) for choice in raw.get("choices", []) or []]
    owner: dict[str, str] = {choice: choice for choice in choices}
    for choice, words in synonyms.items():
        if choice not in choices:
            problem(f"synonyms: {choice!r} is not one of the choices")
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            problem(f"synonyms: {choice!r} needs a list of words")
            continue
        for word in words:
            if word.strip().isdigit():
                problem(f"synonyms: {word!r} is a number, which picks a choice by position")
            elif word in owner and owner[word] != choice:
                problem(f"synonyms: {word!r} is given for both {owner[word]!r} and {choice!r}")
            elif word in owner:
                problem(f"synonyms: {word!r} is repeated for {choice!r}")
            else:
                owner[word] = choice


def _condition(raw: Any, problem: Any) -> Condition | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "field" not in raw:
        problem('when must be a table like { field = "x", is = "y" }', "when")
        return None
    unknown = set(raw) - WHEN_KEYS
    ops = [op for op in ("is", "in", "not") if op in raw]
    if unknown or len(ops) != 1:
        problem("when takes field and exactly one of is / in / not", "when")
        return None
    return Condition(field=str(raw["field"]), op=ops[0], value=raw[ops[0]])


def _check_graph(steps: list[Step], shown: str, problems: list[Problem], lines: _Lines) -> None:
    ids = [step.id for step in steps]
    seen: set[str] = set()
    for step in steps:
        if step.id in seen:
            problems.append(Problem(shown, step.line, f"step {step.id!r}: duplicate id"))
        seen.add(step.id)
        if step.next is not None and step.next not in ids:
            problems.append(
                Problem(shown, step.line, f"step {step.id!r}: next {step.next!r} is not a step")
            )
        if step.when is not None and step.when.field not in ids[: ids.index(step.id)]:
            problems.append(
                Problem(
                    shown,
                    lines.key("when", step.line, step.line),
                    f"step {step.id!r}: when refers to "
                    f"{step.when.field!r}, which is not an earlier step",
                )
            )
    for step_id in sorted(set(ids) - _reachable(steps)):
        line = next(step.line for step in steps if step.id == step_id)
        problems.append(Problem(shown, line, f"step {step_id!r}: unreachable"))


def _reachable(steps: list[Step]) -> set[str]:
    """Steps reachable from the first by `next` or by falling through."""
    ids = [step.id for step in steps]
    by_id = {step.id: step for step in steps}
    reached: set[str] = set()
    todo = [ids[0]] if ids else []
    while todo:
        current = todo.pop()
        if current in reached or current not in by_id:
            continue
        reached.add(current)
        step = by_id[current]
        if step.next:
            todo.append(step.next)
            # A conditional step may be skipped, which falls through to the one after it.
            if step.when is None:
                continue
        position = ids.index(current)
        if position + 1 < len(ids):
            todo.append(ids[position + 1])
    return reached
