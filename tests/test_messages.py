"""Every sentence people read lives in a messages.toml next to its code (issue "Layers", 2).

Two checks over the source of bangfu_bot (migrations aside), both by reading the syntax tree,
never by importing the modules:

* No string constant is a Chinese sentence, outside the data modules below and the strings a
  `# stays in Python: <why>` comment marks.
* Every key a speaker is called with (`say("key", ...)`, however the speaker is named or
  imported) or a text table is indexed with (`texts("bangfu_bot.x")["key"]`) is in that
  package's messages.toml.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from bangfu_bot.texts import texts

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "bangfu_bot"

# Whole modules that are data, not the bot's words: the lines the demo's people type (and
# the demo's own narration, which is the script of the play), and the made-up county the
# seed builds (names, places, roster rows, the answers its cases were filed with).
DATA_MODULES = frozenset({"demo/play.py", "seed/county.py"})

# Sentences in modules other engineers are changing right now (notify/, todos/,
# loans/batch.py, loans/jobs.py, ...): exact texts, so anything new there still fails.
# Delete an entry once its text has moved to a messages.toml.
PENDING = frozenset(
    {
        (
            "loans/jobs.py",
            "（第{}期）",
        ),  # the guarantor call's to-do, and the marker it is found by
        ("todos/service.py", "（没有登记）"),  # call_member's phone when none is on the roster
    }
)

# A string that is not the bot's words (vocabulary a parser matches, a configuration
# default, WeChat's own text it recognises) carries this comment, with the reason, on its
# line or on the comment lines right above it or above its statement.
MARKER = re.compile(r"#\s*stays in Python:\s*(?P<why>.*)$")

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A phrase: Chinese characters in a row, digits among them included (逾期90天以上).
PHRASE = re.compile(r"[0-9\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# Full-width punctuation is what sentences, labels and notes are written with; words alone
# never carry it.
PUNCTUATION = frozenset("，。！？：；、（）「」“”《》…")
LONGEST_WORD = 4  # characters: 支部书记 is a word, 帮扶基金报告 a phrase


def is_sentence(text: str) -> bool:
    """Chinese that people read: punctuated, or a phrase longer than a word."""
    if not CJK.search(text):
        return False
    if PUNCTUATION & set(text):
        return True
    return any(len(CJK.findall(phrase)) > LONGEST_WORD for phrase in PHRASE.findall(text))


@dataclass(frozen=True)
class Found:
    """A string constant as the source has it (an f-string's fields shown as {})."""

    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"src/bangfu_bot/{self.path}:{self.line}: {self.text!r}"


def modules() -> list[Path]:
    """The package's modules, migrations aside."""
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    )


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def _column_comments(tree: ast.Module) -> set[int]:
    """The `comment=` of columns and tables: for whoever reads the schema, in English."""
    return {
        id(node)
        for keyword in ast.walk(tree)
        if isinstance(keyword, ast.keyword) and keyword.arg == "comment"
        for node in ast.walk(keyword.value)
    }


def strings(path: Path) -> Iterator[tuple[ast.expr, str, ast.stmt]]:
    """Each string constant and f-string with the innermost statement holding it."""
    tree = parsed(path)
    skipped = _docstrings(tree) | _column_comments(tree)

    def visit(
        node: ast.AST, statement: ast.stmt | None
    ) -> Iterator[tuple[ast.expr, str, ast.stmt]]:
        if isinstance(node, ast.stmt):
            statement = node
        if id(node) in skipped:
            return
        if isinstance(node, ast.JoinedStr):
            assert statement is not None
            yield (
                node,
                "".join(
                    part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
                ),
                statement,
            )
            return  # its parts are not strings of their own
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert statement is not None
            yield node, node.value, statement
        for child in ast.iter_child_nodes(node):
            yield from visit(child, statement)

    yield from visit(tree, None)


@cache
def comments(path: Path) -> tuple[dict[int, str], frozenset[int]]:
    """Comments by line, and the lines that hold nothing but a comment."""
    source = path.read_text(encoding="utf-8")
    by_line = {
        token.start[0]: token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    lines = source.splitlines()
    alone = frozenset(n for n in by_line if lines[n - 1].lstrip().startswith("#"))
    return by_line, alone


def marked(path: Path, *lines: int) -> bool:
    """A marker on one of these lines, or in the block of comment lines right above one."""
    by_line, alone = comments(path)
    for line in lines:
        if MARKER.search(by_line.get(line, "")):
            return True
        above = line - 1
        while above in alone:
            if MARKER.search(by_line[above]):
                return True
            above -= 1
    return False


def sentences_in_python() -> list[Found]:
    found = []
    for path in modules():
        name = relative(path)
        if name in DATA_MODULES:
            continue
        for node, text, statement in strings(path):
            if not is_sentence(text) or (name, text) in PENDING:
                continue
            if marked(path, node.lineno, statement.lineno):
                continue
            found.append(Found(name, node.lineno, text))
    return found


def test_the_sentence_rule_tells_sentences_from_words() -> None:
    for sentence in (
        "请写明资金来源。",
        "逾期90天以上",
        "对账差额（应为 0.00）",
        "情况：{}",
        "{}不能晚于今天",
        "（推送）",
        "米一袋、油一桶",
    ):
        assert is_sentence(sentence), sentence
    for word in (
        "男",
        "跳过",
        "没收入",
        "支部书记",
        "汇总",
        "第{}期",
        "逾期1-30天",
        "元",
        "3500",
        "；",
        "spring (春节), july1 (七一)",
        "category:台账类别",
        "^(?:修改|改)\\s*第?\\s*(\\d{1,2})\\s*(?:项|条|个)?$",
    ):
        assert not is_sentence(word), word


def test_no_chinese_sentence_in_python() -> None:
    found = sentences_in_python()
    assert not found, (
        "Chinese sentences in Python: move each to the package's messages.toml and read it "
        "with bangfu_bot.texts.speaker(...); a word a parser matches or a configuration "
        "default may stay with a `# stays in Python: <why>` comment.\n" + "\n".join(map(str, found))
    )


def test_every_marker_says_why() -> None:
    bare = [
        f"src/bangfu_bot/{relative(path)}:{line}"
        for path in modules()
        for line, comment in comments(path)[0].items()
        if (match := MARKER.search(comment)) and not match.group("why").strip()
    ]
    assert not bare, "a `# stays in Python:` marker without a reason:\n" + "\n".join(bare)


def test_pending_entries_are_modules_that_exist() -> None:
    for name, _ in PENDING:
        assert (PACKAGE / name).is_file(), name
    for name in DATA_MODULES:
        assert (PACKAGE / name).is_file(), name


# --- Keys ------------------------------------------------------------------------------------


def _package_of(call: ast.expr, function: str) -> str | None:
    """ "bangfu_bot.x" when `call` is function("bangfu_bot.x")."""
    if (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == function
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    ):
        return call.args[0].value
    return None


def _module_path(module: str) -> Path | None:
    for path in (
        SRC / (module.replace(".", "/") + ".py"),
        SRC / module.replace(".", "/") / "__init__.py",
    ):
        if path.is_file():
            return path
    return None


@cache
def _own_bindings(module: str) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """What a module binds itself to a speaker or a text table (name -> (kind, package),
    kind being "speaker" or "texts"), and what it imports (name -> (module, name))."""
    path = _module_path(module)
    own: dict[str, tuple[str, str]] = {}
    imported: dict[str, tuple[str, str]] = {}
    if path is None:
        return own, imported
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for kind in ("speaker", "texts"):
                package = _package_of(node.value, kind)
                if package is not None:
                    for target in targets:
                        if isinstance(target, ast.Name):
                            own[target.id] = (kind, package)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("bangfu_bot.")
        ):
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    return own, imported


def _resolve(
    module: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()
) -> tuple[str, str] | None:
    own, imported = _own_bindings(module)
    if name in own:
        return own[name]
    if name in imported and (module, name) not in seen:
        return _resolve(*imported[name], seen | {(module, name)})
    return None


@cache
def bindings(module: str) -> dict[str, tuple[str, str]]:
    """Names a module binds to a speaker or a text table, its own and the ones it imports
    from other bangfu_bot modules: name -> (kind, package)."""
    own, imported = _own_bindings(module)
    found = {name: _resolve(module, name) for name in {*own, *imported}}
    return {name: bound for name, bound in found.items() if bound is not None}


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def keys_named() -> Iterator[tuple[str, int, str, str]]:
    """(module, line, package, key) for every literal key given to a speaker or a text table."""
    for path in modules():
        module = "bangfu_bot." + relative(path).removesuffix(".py").replace("/", ".")
        module = module.removesuffix(".__init__")
        bound = bindings(module)
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call) and node.args:
                key = _literal(node.args[0])
                if key is None:
                    continue  # a variable or an f-string: its keys are not known here
                if (
                    isinstance(node.func, ast.Name)
                    and bound.get(node.func.id, ("",))[0] == "speaker"
                ):
                    yield relative(path), node.lineno, bound[node.func.id][1], key
                elif isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                    # texts("bangfu_bot.x").get("key", ...) or table.get("key", ...)
                    package = _table(node.func.value, bound)
                    if package is not None:
                        yield relative(path), node.lineno, package, key
            elif isinstance(node, ast.Subscript):
                key = _literal(node.slice)
                package = _table(node.value, bound)
                if key is not None and package is not None:
                    yield relative(path), node.lineno, package, key


def _table(node: ast.expr, bound: dict[str, tuple[str, str]]) -> str | None:
    package = _package_of(node, "texts")
    if package is not None:
        return package
    if isinstance(node, ast.Name) and bound.get(node.id, ("",))[0] == "texts":
        return bound[node.id][1]
    return None


def test_keys_are_found_in_the_source() -> None:
    # The scan must see the speakers: if it stops finding them, the test below checks nothing.
    named = list(keys_named())
    packages = {package for _, _, package, _ in named}
    assert len(named) > 400
    assert {
        "bangfu_bot",
        "bangfu_bot.cases",
        "bangfu_bot.common",
        "bangfu_bot.members",
        "bangfu_bot.reports",
        "bangfu_bot.demo",
        "bangfu_bot.wechat",
    } <= packages
    # Imported and renamed speakers count too.
    assert any(path == "loans/prompts.py" for path, _, _, _ in named)
    assert any(path == "accounts/chat.py" for path, _, _, _ in named)


@pytest.mark.parametrize("package", sorted({package for _, _, package, _ in keys_named()}))
def test_every_key_said_is_in_its_messages_toml(package: str) -> None:
    known = texts(package)
    missing = [
        f"src/bangfu_bot/{path}:{line}: {key!r}"
        for path, line, named, key in keys_named()
        if named == package and key not in known
    ]
    assert not missing, f"keys not in {package}'s messages.toml:\n" + "\n".join(missing)


# One spelling of 台账 (the ledger) in everything people read: texts, flows, data, README.
# Migrations keep what they wrote; the 帐 form is the old variant people complained of.
WORDING = {"台帐": "台账"}


def test_one_spelling_of_the_words_people_read() -> None:
    root = SRC.parent
    files = [
        *(path for path in PACKAGE.rglob("*") if path.suffix in {".toml", ".py", ".html"}),
        *(root / "conversations").glob("*.toml"),
        root / "README.md",
    ]
    found = [
        f"{path.relative_to(root)}:{n}: {old} → {new}"
        for path in files
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for old, new in WORDING.items()
        if old in line
    ]
    assert not found, "\n".join(found)
