"""Flow files: the real ones pass `flows check`; a typo is reported with file and line."""

from __future__ import annotations

import shutil
from datetime import UTC
from pathlib import Path

import pytest

from bangfu_bot.chats import registry
from bangfu_bot.cli import main
from bangfu_bot.conversation.flows import FlowsInvalid, load_flows
from bangfu_bot.settings import load_settings
from tests.conftest import CONVERSATIONS

REGISTRY = registry(load_settings({"BANGFU_CONVERSATIONS_DIR": str(CONVERSATIONS)}))
ACTIONS, PREVIEWS, CHECKS = REGISTRY.actions, REGISTRY.previews, REGISTRY.checks


def test_the_shipped_flows_pass_the_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BANGFU_CONVERSATIONS_DIR", str(CONVERSATIONS))
    assert main(["flows", "check"]) == 0
    assert "flows OK" in capsys.readouterr().out


def copy_with(tmp_path: Path, old: str, new: str, name: str = "apply.toml") -> Path:
    folder = tmp_path / "conversations"
    shutil.copytree(CONVERSATIONS, folder)
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def line_of(folder: Path, needle: str, name: str = "apply.toml") -> int:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            'prompt = "您家在农村还是城镇？"',
            'promt = "您家在农村还是城镇？"',
            "promt",
            "unknown key 'promt'",
        ),
        ('type = "yes_no"', 'type = "yesno"', 'type = "yesno"', "type 'yesno'"),
        (
            'when = { field = "category", is = "其他" }',
            'when = { field = "categroy", is = "其他" }',
            "categroy",
            "not an earlier step",
        ),
        (
            'action = "cases.submit_application"',
            'action = "cases.submit"',
            "action =",
            "not a known domain service",
        ),
        ("max_length = 300", "max_length = 300\nmin = 1", "min = 1", "does not apply"),
    ],
)
def test_a_typo_is_reported_with_file_and_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    folder = copy_with(tmp_path, old, new)
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    problem = next(p for p in invalid.value.problems if message in p.message)
    assert problem.path.endswith("apply.toml")
    assert problem.line == line_of(folder, needle)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, 'label = "住在"', 'label = "住在')
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    assert invalid.value.problems[0].line == line_of(folder, 'label = "住在')


def test_a_step_without_a_prompt_is_reported_at_the_step(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, 'prompt = "您家在农村还是城镇？"', 'prompt = " "')
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    (problem,) = invalid.value.problems
    assert problem.message == "step 'urban_rural': missing prompt"
    assert problem.line == line_of(folder, 'id = "urban_rural"') - 1  # its [[step]] line


def test_unreachable_step_is_reported(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, 'id = "urban_rural"\n', 'id = "urban_rural"\nnext = "household"\n')
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    assert [p.message for p in invalid.value.problems] == ["step 'dibao': unreachable"]
    assert invalid.value.problems[0].line == line_of(folder, 'id = "dibao"') - 1


def test_serve_refuses_to_start_on_a_bad_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_with(tmp_path, 'type = "name"', 'type = "nmae"', name="bind.toml")
    monkeypatch.setenv("BANGFU_CONVERSATIONS_DIR", str(folder))
    monkeypatch.setenv("BANGFU_STORAGE_DIR", str(tmp_path / "storage"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "bind.toml:" in err and "type 'nmae'" in err
    assert main(["flows", "check"]) == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"配偶" = ["老伴"', '"老伴" = ["老伴"', "synonyms: '老伴' is not one of the choices"),
        (
            '"儿媳" = ["儿媳妇"',
            '"儿媳" = ["老伴"',
            "synonyms: '老伴' is given for both '配偶' and '儿媳'",
        ),
        (
            '"儿媳" = ["儿媳妇"',
            '"儿媳" = ["儿子"',
            "synonyms: '儿子' is given for both '儿子' and '儿媳'",
        ),
        ('"女婿" = ["姑爷"', '"女婿" = ["3"', "synonyms: '3' is a number"),
        (
            '"女婿" = ["姑爷", "上门女婿"]',
            '"女婿" = "姑爷"',
            "synonyms: '女婿' needs a list of words",
        ),
    ],
)
def test_a_bad_synonym_is_reported_at_its_table(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = copy_with(tmp_path, old, new)
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    problem = next(p for p in invalid.value.problems if message in p.message)
    assert problem.message.startswith("step 'relation': ")
    assert problem.line == line_of(folder, "[step.fields.synonyms]")


def test_synonyms_on_a_step_that_is_not_a_choice_are_reported(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, 'type = "yes_no"\n', 'type = "yes_no"\nsynonyms = {}\n')
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    assert "step 'dibao': 'synonyms' does not apply to a yes_no step" in [
        p.message for p in invalid.value.problems
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('none_words = ["没有"', 'none_words = [""', "none_words must be a list of words"),
        (
            'type = "yes_no"\n',
            'type = "yes_no"\nfirst = "有吗？"\n',
            "'first' applies to a group step only",
        ),
        ('比如“修改 {example}”。"', '比如“修改 2”。"', "a fixed number after 修改"),
    ],
)
def test_group_words_and_edit_examples_are_checked(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = copy_with(tmp_path, old, new)
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    assert any(message in p.message for p in invalid.value.problems), invalid.value.problems


def test_not_before_needs_its_hint_and_a_date_step(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, "not_before_hint = ", "hint = ", name="evaluate.toml")
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    (problem,) = invalid.value.problems
    assert problem.message == (
        "step 'meeting_date': not_before needs a not_before_hint telling the user what to type"
    )
    assert problem.line == line_of(folder, "not_before =", name="evaluate.toml")


def test_an_unknown_step_check_is_reported_at_its_line(tmp_path: Path) -> None:
    folder = copy_with(
        tmp_path, 'check = "broadcasts.audience"', 'check = "broadcasts.nobody"', "notice.toml"
    )
    with pytest.raises(FlowsInvalid) as invalid:
        load_flows(folder, ACTIONS, PREVIEWS, CHECKS)
    (problem,) = invalid.value.problems
    assert (
        problem.message
        == "step 'audience': check 'broadcasts.nobody' is not a known domain service"
    )
    assert problem.line == line_of(folder, 'check = "broadcasts.nobody"', "notice.toml")


def test_no_question_says_how_to_skip_twice() -> None:
    from datetime import datetime

    from bangfu_bot.conversation.engine import Engine, Session

    flows = load_flows(CONVERSATIONS, ACTIONS, PREVIEWS, CHECKS)
    engine = Engine(flows)
    for flow in flows.values():
        for step in flow.steps:
            if not step.optional:
                continue
            session = Session()
            engine.begin(session, flow.name, datetime(2026, 1, 1, tzinfo=UTC))
            session.state["step"] = step.id
            asked = engine.repeat(session)[0]
            told = sum(asked.count(f"回复“{word}”") for word in ("跳过", "没有", "无", "不用"))
            assert told <= 1, f"{flow.name}.{step.id}: {asked}"
