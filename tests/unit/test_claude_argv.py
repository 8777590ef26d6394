"""The Claude Code CLI's argument list: every option first, the prompt last after ``--``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.claude import build_argv
from claudomator.agents.cli import context_dirs, instructions_with_context
from claudomator.models import AgentConfig, Task

SESSION = "0a1b2c3d-0000-4000-8000-000000000001"
DEFAULT_FLAGS = [
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--session-id",
    SESSION,
    "--permission-mode",
    "bypassPermissions",
]


def _ctx(tmp_path: Path, *, resume: bool = False, **agent: object) -> RunContext:
    config = AgentConfig.model_validate({"instructions": "Do the thing.", **agent})
    return RunContext(
        task=Task(name="t", agent=config),
        execution_id="exec-1",
        workdir=tmp_path / "sandbox",
        log_dir=tmp_path / "logs",
        env={},
        session_id=SESSION,
        timeout=60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        resume=resume,
    )


def _argv(tmp_path: Path, *, resume: bool = False, **agent: object) -> list[str]:
    argv = build_argv("/usr/bin/claude", _ctx(tmp_path, resume=resume, **agent))
    assert argv[0] == "/usr/bin/claude"
    assert argv[-2] == "--", argv
    assert argv.count("--") == 1, argv
    return argv


def _options(argv: list[str]) -> list[str]:
    """Everything between the binary and ``--``."""
    return argv[1 : argv.index("--")]


def _value(argv: list[str], flag: str) -> str:
    options = _options(argv)
    assert options.count(flag) == 1, options
    return options[options.index(flag) + 1]


def test_default_flags_exactly(tmp_path: Path) -> None:
    argv = build_argv("claude", _ctx(tmp_path))
    assert argv == ["claude", *DEFAULT_FLAGS, "--", "Do the thing."]


def test_prompt_starting_with_a_dash_comes_after_double_dash(tmp_path: Path) -> None:
    argv = _argv(tmp_path, instructions="--help me refactor -p")
    assert argv[-1] == "--help me refactor -p"
    assert "--help me refactor -p" not in _options(argv)


def test_resume_replaces_session_id(tmp_path: Path) -> None:
    argv = _argv(tmp_path, resume=True)
    assert _value(argv, "--resume") == SESSION
    assert "--session-id" not in argv
    assert _options(argv)[:4] == ["-p", "--output-format", "stream-json", "--verbose"]


def test_permission_mode(tmp_path: Path) -> None:
    assert (
        _value(_argv(tmp_path, permission_mode="acceptEdits"), "--permission-mode") == "acceptEdits"
    )
    assert _value(_argv(tmp_path, permission_mode=""), "--permission-mode") == "bypassPermissions"


def test_model(tmp_path: Path) -> None:
    assert _value(_argv(tmp_path, model="claude-sonnet-5"), "--model") == "claude-sonnet-5"
    assert "--model" not in _argv(tmp_path)


@pytest.mark.parametrize(("budget", "text"), [(0.5, "0.5"), (2.0, "2"), (0.25, "0.25")])
def test_max_budget(tmp_path: Path, budget: float, text: str) -> None:
    assert _value(_argv(tmp_path, max_budget_usd=budget), "--max-budget-usd") == text


def test_no_budget_no_flag(tmp_path: Path) -> None:
    assert "--max-budget-usd" not in _argv(tmp_path)


def test_append_system_prompt(tmp_path: Path) -> None:
    argv = _argv(tmp_path, system_prompt_append="Be terse.\nAlways test.")
    assert _value(argv, "--append-system-prompt") == "Be terse.\nAlways test."


def test_tools(tmp_path: Path) -> None:
    argv = _argv(tmp_path, allowed_tools=["Bash", "Read"], disallowed_tools=["WebFetch"])
    assert _value(argv, "--allowedTools") == "Bash,Read"
    assert _value(argv, "--disallowedTools") == "WebFetch"
    plain = _argv(tmp_path)
    assert "--allowedTools" not in plain
    assert "--disallowedTools" not in plain


def test_add_dir_for_absolute_context_files_outside_the_workdir(tmp_path: Path) -> None:
    outside = tmp_path / "docs"
    outside.mkdir()
    (tmp_path / "sandbox").mkdir()
    files = [
        str(outside / "spec.md"),
        str(outside / "api.md"),  # same directory: one --add-dir
        str(tmp_path / "sandbox" / "notes.md"),  # inside the sandbox: none
        "relative/inside.md",  # relative: lives in the project, hence the sandbox
        str(tmp_path / "shared"),  # a directory (made below): added itself
    ]
    (tmp_path / "shared").mkdir()
    argv = _argv(tmp_path, context_files=files)
    options = _options(argv)
    dirs = [options[i + 1] for i, flag in enumerate(options) if flag == "--add-dir"]
    assert dirs == [str(outside), str(tmp_path / "shared")]


def test_context_files_are_named_in_the_prompt(tmp_path: Path) -> None:
    argv = _argv(tmp_path, context_files=["docs/spec.md", "/abs/notes.md"])
    prompt = argv[-1]
    assert prompt.startswith("Do the thing.\n\n")
    assert "- docs/spec.md\n- /abs/notes.md" in prompt
    agent = AgentConfig(instructions="plain")
    assert instructions_with_context(agent) == "plain"


def test_additional_args_go_last_before_the_prompt(tmp_path: Path) -> None:
    argv = _argv(
        tmp_path,
        model="opus",
        allowed_tools=["Bash"],
        additional_args=["--max-turns", "5", "--debug"],
    )
    options = _options(argv)
    assert options[-3:] == ["--max-turns", "5", "--debug"]
    assert options.index("--model") < options.index("--max-turns")
    assert options.index("--allowedTools") < options.index("--max-turns")
    assert argv[-1] == "Do the thing."


def test_every_option_together_keeps_the_prompt_last(tmp_path: Path) -> None:
    argv = _argv(
        tmp_path,
        resume=True,
        model="m",
        max_budget_usd=1.5,
        system_prompt_append="s",
        allowed_tools=["A"],
        disallowed_tools=["B"],
        context_files=["/elsewhere/x.md"],
        additional_args=["--x"],
        instructions="-dash first",
    )
    assert _options(argv) == [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--resume",
        SESSION,
        "--permission-mode",
        "bypassPermissions",
        "--model",
        "m",
        "--max-budget-usd",
        "1.5",
        "--append-system-prompt",
        "s",
        "--allowedTools",
        "A",
        "--disallowedTools",
        "B",
        "--add-dir",
        "/elsewhere",
        "--x",
    ]
    assert argv[-1].startswith("-dash first")


def test_sibling_directory_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    agent = AgentConfig(instructions="i", context_files=(str(tmp_path / "sandbox2" / "n.md"),))
    assert context_dirs(agent, workdir) == [str(tmp_path / "sandbox2")]
