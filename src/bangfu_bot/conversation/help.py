"""帮助 and 菜单: the words a person may use now, grouped, as `commands.toml` lists them.

Who is offered a word is not a list per role: it follows from what the word leads to. A
word that begins a flow is offered to whoever may begin it (the flow's `requires` and its
`act` in the authority policy); any other word names its gate in `[[help]]` (`for`): an act
of the policy (`act:NAME`, or `act:NAME@SCOPE`), a view of it (`sees:VIEW`), `officials`
(anyone who acts on other people's matters) or `bound`. A domain may narrow a word to the
moment (走访 while a visit is assigned, 人工 while there is a secretary to call) through the
registry's `offers`. A person with several roles sees the union, each word once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bangfu_bot.authority import BY_NAME, VIEWS, may_make, may_see, takes_steps
from bangfu_bot.conversation.flows import Flow
from bangfu_bot.members.service import Person

GATES = ("act:", "sees:", "officials", "bound")


@dataclass(frozen=True)
class Entry:
    """One word 帮助 may show: what to type, what it does, and who may use it."""

    word: str
    does: str
    command: str  # the command id commands.toml maps the word to
    gate: str  # `for` (empty for a flow's word: the flow says)


@dataclass(frozen=True)
class Group:
    """A heading and its words, in the order shown."""

    title: str
    entries: tuple[Entry, ...]


class HelpInvalid(ValueError):
    """`[[help]]` names a word no command answers, or a gate the policy does not know."""


def load_help(path: Path, words: Mapping[str, str], flows: Mapping[str, Flow]) -> tuple[Group, ...]:
    """The `[[help]]` groups of commands.toml, checked against the words and the policy."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    groups = []
    seen: set[str] = set()
    for raw in data.get("help", []):
        entries = []
        for item in raw.get("words", []):
            word, gate = str(item["word"]), str(item.get("for", ""))
            command = words.get(word)
            if command is None:
                raise HelpInvalid(f"{path}: [[help]] word {word!r} is not in [words]")
            if word in seen:
                raise HelpInvalid(f"{path}: [[help]] lists {word!r} twice")
            seen.add(word)
            flow = command.removeprefix("flow:") if command.startswith("flow:") else None
            if flow is not None and flow not in flows:
                raise HelpInvalid(f"{path}: [[help]] word {word!r} begins no known flow")
            if flow is None and not _known_gate(gate):
                raise HelpInvalid(f"{path}: [[help]] word {word!r} needs `for`, one of {GATES}")
            entries.append(Entry(word, str(item["does"]), command, gate))
        groups.append(Group(str(raw["title"]), tuple(entries)))
    return tuple(groups)


def _known_gate(gate: str) -> bool:
    if gate in {"officials", "bound"}:
        return True
    if gate.startswith("sees:"):
        return gate.removeprefix("sees:") in VIEWS
    if gate.startswith("act:"):
        return gate.removeprefix("act:").partition("@")[0] in BY_NAME
    return False


def may_begin(flow: Flow, person: Person | None) -> bool:
    """Whether the person may begin the flow: its `requires`, and its `act` if it names one."""
    if flow.requires == "any":
        return True
    if person is None:
        return False
    if flow.requires != "bound" and not person.has(flow.requires):
        return False
    return not flow.act or may_make(person, flow.act)


def allowed(entry: Entry, person: Person, flows: Mapping[str, Flow]) -> bool:
    """Whether the person's roles let them use the word (the moment aside)."""
    if entry.command.startswith("flow:"):
        return may_begin(flows[entry.command.removeprefix("flow:")], person)
    gate = entry.gate
    if gate == "bound":
        return True
    if gate == "officials":
        return takes_steps(person)
    if gate.startswith("sees:"):
        return may_see(person, gate.removeprefix("sees:"))
    act, _, scope = gate.removeprefix("act:").partition("@")
    return may_make(person, act, scope or None)


Offer = Callable[[Any], Awaitable[bool]]


async def offered(
    groups: tuple[Group, ...],
    person: Person,
    flows: Mapping[str, Flow],
    offers: Mapping[str, Offer],
    ctx: Any,
    also: frozenset[str] = frozenset(),
) -> list[tuple[str, list[Entry]]]:
    """The groups with the words this person may use now; empty groups left out. `also`:
    commands offered now whatever the roles (待办 to a member with a visit to report)."""
    shown = []
    for group in groups:
        entries = []
        for entry in group.entries:
            if entry.command not in also and not allowed(entry, person, flows):
                continue
            offer = offers.get(entry.command)
            if offer is not None and not await offer(ctx):
                continue
            entries.append(entry)
        if entries:
            shown.append((group.title, entries))
    return shown
