"""The stack holds: the import contracts pass, the packages import each other without a
cycle, only a domain's chat.py and cli.py speak to the conversation engine, and no domain
reaches the WeChat edge."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "bangfu_bot"
DOMAINS = (
    "accounts",
    "broadcasts",
    "cases",
    "fund",
    "ledger",
    "loans",
    "members",
    "reports",
    "visits",
)
# Where a domain may use the conversation engine: its chat, and its command line.
SPEAKERS = {"chat.py", "cli.py"}


def _package_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("bangfu_bot")
    packages: dict[str, set[str]] = {}
    for module in graph.modules:
        parts = module.split(".")
        if len(parts) < 2:
            continue
        source = parts[1]
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.split(".")
            if len(target) > 1 and target[1] != source:
                packages.setdefault(source, set()).add(target[1])
    return packages


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph, as a path, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_import_contracts_hold() -> None:
    run = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        capture_output=True,
        text=True,
        check=False,
        cwd=SRC.parents[1],
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_the_packages_import_each_other_without_a_cycle() -> None:
    assert _cycle(_package_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


@pytest.mark.parametrize("domain", DOMAINS)
def test_only_chat_and_cli_speak_to_the_conversation_engine(domain: str) -> None:
    offenders = [
        path.name
        for path in sorted((SRC / domain).glob("*.py"))
        if path.name not in SPEAKERS
        and any(name.startswith("bangfu_bot.conversation") for name in _imports(path))
    ]
    assert offenders == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_no_domain_reaches_the_wechat_edge(domain: str) -> None:
    offenders = [
        path.name
        for path in sorted((SRC / domain).glob("*.py"))
        if any(name.startswith("bangfu_bot.wechat") for name in _imports(path))
    ]
    assert offenders == []
