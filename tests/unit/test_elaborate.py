"""Elaborating a request into a task spec: normalising answers, resolving the project, and the
Elaborator against a real OpenAI-compatible fake server and the real Claude and Gemini CLIs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claudomator.config import LocalModelSettings, Settings
from claudomator.elaborate import (
    SYSTEM_PROMPT,
    ElaborationFailed,
    Elaborator,
    Tried,
    check_spec,
    elaborator_factory,
    local_first,
    normalise_spec,
    resolve_project,
)
from claudomator.errors import ValidationError
from claudomator.isolation.plain import PlainLauncher
from claudomator.llm import LLMClient
from claudomator.models import Project
from claudomator.taskfile import parse_tasks
from conftest import MakeRepo
from fakes.anthropic import FakeAnthropic, Text, claude_env
from fakes.anthropic import Hang as ClaudeHang
from fakes.gemini import FakeGemini, gemini_env
from fakes.gemini import Text as GeminiText
from fakes.openai_server import FakeOpenAI, Hang, JsonReply, Reply

SPEC: dict[str, Any] = {
    "name": "csv-export",
    "description": "Users asked for a CSV export of reports.",
    "agent": {
        "type": "claude",
        "model": "sonnet",
        "instructions": "Add a CSV export to the reports page, with tests.",
        "max_budget_usd": 2.5,
        "allowed_tools": ["Read", "Edit"],
    },
    "timeout": "20m",
    "priority": "high",
    "tags": ["backend", "reports"],
    "acceptance_criteria": "The export has a unit test.",
}


def _missing(tmp_path: Path, name: str) -> str:
    return str(tmp_path / f"no-such-{name}")


def _settings(settings: Settings, tmp_path: Path, **update: Any) -> Settings:
    """Settings whose CLIs do not exist, unless ``update`` says otherwise."""
    base = {
        "claude_binary_path": _missing(tmp_path, "claude"),
        "gemini_binary_path": _missing(tmp_path, "gemini"),
    }
    return settings.model_copy(update={**base, **update})


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


def _llm(fake: FakeOpenAI, **extra: Any) -> LLMClient:
    return LLMClient(LocalModelSettings(endpoint=fake.url, model="spec-model", **extra))


# -- normalise_spec ------------------------------------------------------------------------


def test_a_complete_answer_is_kept_and_gets_the_project() -> None:
    spec, notes = normalise_spec(SPEC, project_dir="/srv/app")
    assert notes == []
    assert spec == {**SPEC, "agent": {**SPEC["agent"], "project_dir": "/srv/app"}}
    assert list(spec) == [*SPEC]  # a stable shape, in task-file order


def test_unknown_keys_are_dropped_with_notes_and_agent_fields_moved() -> None:
    raw = {
        "name": "x\nsecond line",
        "instructions": "Do it.",
        "model": "opus",
        "id": "fixed-id",
        "depends_on": ["other"],
        "colour": "red",
        "type": "feature",
        "agent": {"project_dir": "/etc", "context_files": ["a.md"], "type": "Claude Code"},
    }
    spec, notes = normalise_spec(raw, project_dir="")
    assert spec["name"] == "x"
    assert spec["agent"] == {
        "type": "claude",
        "model": "opus",
        "instructions": "Do it.",
        "project_dir": "",
        "max_budget_usd": None,
        "allowed_tools": [],
    }
    assert set(notes) == {
        "moved instructions into agent",
        "moved model into agent",
        "dropped unknown key 'id'",
        "dropped unknown key 'depends_on'",
        "dropped unknown key 'colour'",
        "dropped agent.project_dir: the project comes from the request",
        "dropped unknown key 'agent.context_files'",
        "agent.type 'Claude Code' read as 'claude'",
        "dropped 'type': agent.type is set",
    }


@pytest.mark.parametrize(
    ("given", "expected", "noted"),
    [
        ("gemini", "gemini", False),
        (" LOCAL ", "local", False),
        ("", "", False),
        (None, "", False),
        ("auto", "", False),
        ("gemini-cli", "gemini", True),
        ("gpt-4", "", True),
        (7, "", True),
    ],
)
def test_agent_type_is_coerced(given: object, expected: str, noted: bool) -> None:
    spec, notes = normalise_spec({"name": "n", "agent": {"instructions": "i", "type": given}})
    assert spec["agent"]["type"] == expected
    assert bool(notes) == noted


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("timeout", "30 minutes", "30m"),
        ("timeout", "1 hour 30 mins", "1h30m"),
        ("timeout", 900, 900),
        ("timeout", "soon", None),
        ("timeout", True, None),
        ("priority", "Medium", "normal"),
        ("priority", "urgent", "high"),
        ("priority", "whenever", "normal"),
        ("tags", "a, b,a", ["a", "b"]),
        ("tags", ["x", 3, " y "], ["x", "y"]),
        ("acceptance_criteria", ["tests pass", "docs updated"], "- tests pass\n- docs updated"),
        ("description", None, ""),
    ],
)
def test_task_fields_are_normalised(field: str, given: object, expected: object) -> None:
    spec, _ = normalise_spec({"name": "n", field: given, "agent": {"instructions": "i"}})
    assert spec[field] == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(2.5, 2.5), ("$3", 3.0), (0, None), (-1, None), ("lots", None), (True, None), (None, None)],
)
def test_budget_is_a_positive_amount_or_nothing(given: object, expected: float | None) -> None:
    spec, _ = normalise_spec({"name": "n", "agent": {"instructions": "i", "max_budget_usd": given}})
    assert spec["agent"]["max_budget_usd"] == expected


def test_wrapped_answers_are_unwrapped() -> None:
    assert normalise_spec({"task": SPEC})[0]["name"] == "csv-export"
    spec, notes = normalise_spec({"tasks": [SPEC, {"name": "b"}]})
    assert spec["name"] == "csv-export"
    assert notes == ["the answer had 2 tasks; kept the first"]


def test_a_missing_name_comes_from_the_prompt() -> None:
    spec, notes = normalise_spec(
        {"agent": {"instructions": ["step one", "step two"]}}, prompt="Add a CSV export, please!"
    )
    assert spec["name"] == "add-a-csv-export-please"
    assert spec["agent"]["instructions"] == "step one\nstep two"
    assert notes == ["the answer had no name; named it from the prompt"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["not", "a", "mapping"], "no task mapping"),
        ({"name": "n"}, "no agent.instructions"),
        ({"name": "n", "agent": {"instructions": "   "}}, "no agent.instructions"),
        ({"name": "n", "agent": "do it"}, "no agent.instructions"),
    ],
)
def test_unusable_answers_raise(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_spec(raw)


def test_every_normalised_spec_is_a_valid_task_file(tmp_path: Path) -> None:
    for raw in (SPEC, {"agent": {"instructions": "x", "type": "robot"}, "timeout": "eventually"}):
        spec, _ = normalise_spec(raw, project_dir=str(tmp_path), prompt="p")
        check_spec(spec, "test", tmp_path)
        [task] = parse_tasks(spec, source="test", base_dir=tmp_path)
        assert task.agent.project_dir == str(tmp_path)


def test_check_spec_names_the_problems(tmp_path: Path) -> None:
    spec, _ = normalise_spec(SPEC, project_dir=str(tmp_path / "gone"))
    with pytest.raises(
        ValueError, match=r"not a valid task spec: agent\.project_dir: .* not exist"
    ):
        check_spec(spec, "test", tmp_path)


# -- the project and the order -------------------------------------------------------------


def test_resolve_project(settings: Settings, make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo("webapp")
    configured = settings.model_copy(update={"projects": (Project(name="webapp", dir=str(repo)),)})
    assert resolve_project(configured, None) == ("", "")
    assert resolve_project(configured, " ") == ("", "")
    assert resolve_project(configured, "webapp") == ("webapp", str(repo.resolve()))
    assert resolve_project(configured, str(repo)) == ("webapp", str(repo.resolve()))
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_project(configured, str(other)) == ("", str(other.resolve()))
    with pytest.raises(ValidationError, match=r"unknown project 'nope'.*webapp"):
        resolve_project(configured, "nope")
    with pytest.raises(ValidationError, match="does not exist"):
        resolve_project(configured, str(tmp_path / "gone"))
    with pytest.raises(ValidationError, match="none configured"):
        resolve_project(settings, "relative/dir")


def test_prefer_for_elaborate_decides_where_the_local_model_goes(settings: Settings) -> None:
    unset = LocalModelSettings(endpoint="http://127.0.0.1:9/v1", model="m")
    assert local_first(unset)
    assert local_first(unset.model_copy(update={"prefer_for_elaborate": True}))
    explicit_false = LocalModelSettings.model_validate(
        {"endpoint": "http://127.0.0.1:9/v1", "model": "m", "prefer_for_elaborate": False}
    )
    assert not local_first(explicit_false)
    assert Elaborator(settings, LLMClient(unset), launcher=PlainLauncher()).order() == (
        "local",
        "claude",
        "gemini",
    )
    assert Elaborator(settings, LLMClient(explicit_false), launcher=PlainLauncher()).order() == (
        "claude",
        "gemini",
        "local",
    )
    assert Elaborator(settings, None, launcher=PlainLauncher()).order() == (
        "local",
        "claude",
        "gemini",
    )


# -- the local model -----------------------------------------------------------------------


async def test_the_local_model_writes_the_spec(
    fake_openai: FakeOpenAI, settings: Settings, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo("webapp")
    configured = _settings(settings, tmp_path, projects=(Project(name="webapp", dir=str(repo)),))
    fake_openai.set_script([JsonReply({**SPEC, "agent": {**SPEC["agent"], "colour": "red"}})])
    llm = _llm(fake_openai)
    try:
        done = await Elaborator(configured, llm, launcher=PlainLauncher()).elaborate(
            "add a CSV export", "webapp"
        )
    finally:
        await llm.aclose()
    assert done.backend == "local"
    assert done.attempts == []
    assert done.notes == ["dropped unknown key 'agent.colour'"]
    assert done.spec["agent"]["project_dir"] == str(repo.resolve())
    assert done.spec["name"] == "csv-export"
    [task] = parse_tasks(done.spec, source="t", base_dir=tmp_path)
    assert task.timeout == 1200
    [request] = fake_openai.chat_requests
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["model"] == "spec-model"
    system, user = request.messages
    assert system["content"].startswith(SYSTEM_PROMPT)
    assert user["content"] == (
        f"Request:\nadd a CSV export\n\nProject: the git repository webapp at {repo.resolve()}"
    )


async def test_the_factory_uses_the_given_client_and_leaves_it_to_its_owner(
    fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    local = LocalModelSettings(endpoint=fake_openai.url, model="m")
    configured = _settings(settings, tmp_path, local_model=local)
    fake_openai.set_script([JsonReply(SPEC), JsonReply(SPEC)])
    async with LLMClient(local) as owned:
        factory = elaborator_factory(configured, llm=owned, launcher=PlainLauncher())
        for _ in range(2):  # one elaborator per request, all with the process's one client
            async with factory() as elaborator:
                assert elaborator.llm is owned
                done = await elaborator.elaborate("csv please")
            assert done.backend == "local"
            assert owned._sdk is not None  # not closed by the factory: its owner closes it
    assert owned._sdk is None  # closed, once, by its owner


async def test_everything_failing_names_every_backend(
    fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    fake_openai.set_script([Reply("Sure! Here is your task: do the thing.")])
    llm = _llm(fake_openai)
    started = time.monotonic()
    try:
        with pytest.raises(ElaborationFailed) as caught:
            await Elaborator(
                _settings(settings, tmp_path), llm, launcher=PlainLauncher()
            ).elaborate("do the thing")
    finally:
        await llm.aclose()
    assert time.monotonic() - started < 10
    local, claude, gemini = caught.value.attempts
    assert local.backend == "local"
    assert "did not reply with a JSON object" in local.reason
    assert claude == Tried(
        "claude", f"{_missing(tmp_path, 'claude')!r} not found (set [agents.claude] binary_path)"
    )
    assert gemini.backend == "gemini"
    assert "not found (set [agents.gemini] binary_path)" in gemini.reason
    assert "local: the model did not reply" in str(caught.value)


async def test_no_local_model_is_a_reason_too(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ElaborationFailed) as caught:
        await Elaborator(_settings(settings, tmp_path), None, launcher=PlainLauncher()).elaborate(
            "x"
        )
    assert caught.value.attempts[0] == Tried(
        "local", "not configured: set [local_model] endpoint and model"
    )
    assert [a.backend for a in caught.value.attempts] == ["local", "claude", "gemini"]


async def test_a_spec_that_is_not_valid_goes_to_the_next_backend(
    fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    fake_openai.set_script([JsonReply({"name": "n", "agent": {"type": "claude"}})])
    llm = _llm(fake_openai)
    try:
        with pytest.raises(ElaborationFailed) as caught:
            await Elaborator(
                _settings(settings, tmp_path), llm, launcher=PlainLauncher()
            ).elaborate("x")
    finally:
        await llm.aclose()
    assert caught.value.attempts[0] == Tried("local", "the answer has no agent.instructions")


async def test_the_budget_is_shared_and_respected(
    fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    fake_openai.set_script([Hang(30), JsonReply(SPEC)])
    llm = _llm(fake_openai)
    started = time.monotonic()
    try:
        with pytest.raises(ElaborationFailed) as caught:
            await Elaborator(
                _settings(settings, tmp_path), llm, budget=2, launcher=PlainLauncher()
            ).elaborate("x")
    finally:
        await llm.aclose()
    assert time.monotonic() - started < 2 + 3
    local, claude, gemini = caught.value.attempts
    assert "did not answer within" in local.reason
    assert claude == Tried("claude", "skipped: the 2s budget was used up")
    assert gemini == Tried("gemini", "skipped: the 2s budget was used up")


async def test_empty_prompt_and_unknown_project_are_refused_before_asking(
    fake_openai: FakeOpenAI, settings: Settings
) -> None:
    llm = _llm(fake_openai)
    try:
        with pytest.raises(ValidationError, match="prompt: must not be empty"):
            await Elaborator(settings, llm, launcher=PlainLauncher()).elaborate("  \n")
        with pytest.raises(ValidationError, match="unknown project"):
            await Elaborator(settings, llm, launcher=PlainLauncher()).elaborate("x", "nope")
    finally:
        await llm.aclose()
    assert fake_openai.chat_requests == []


# -- the real CLIs -------------------------------------------------------------------------


@pytest.mark.cli
async def test_garbage_from_the_local_model_falls_back_to_the_real_claude_cli(
    fake_openai: FakeOpenAI,
    settings: Settings,
    claude_bin: str,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo("webapp")
    fake_openai.set_script([Reply("no JSON here")])
    answer = {**SPEC, "agent": {**SPEC["agent"], "project_dir": "/etc"}}
    with FakeAnthropic([Text("Here it is:\n```json\n" + json.dumps(answer) + "\n```")]) as fake:
        env = claude_env(fake.url, tmp_path / "cli-home")
        llm = _llm(fake_openai)
        try:
            elaborator = Elaborator(
                _settings(settings, tmp_path, claude_binary_path=claude_bin),
                llm,
                env=env,
                launcher=PlainLauncher(),
            )
            done = await elaborator.elaborate("add a CSV export", str(repo))
        finally:
            await llm.aclose()
        [request] = fake.requests
        assert fake.errors == []
    assert done.backend == "claude"
    assert [a.backend for a in done.attempts] == ["local"]
    assert done.notes == ["dropped agent.project_dir: the project comes from the request"]
    assert done.spec["agent"]["project_dir"] == str(repo.resolve())
    assert done.spec["agent"]["instructions"] == SPEC["agent"]["instructions"]
    assert "sonnet" in request.body["model"]  # the CLI resolves the alias
    assert sorted(t["name"] for t in request.body["tools"] if t["name"] in "Read Glob Grep") == [
        "Glob",
        "Grep",
        "Read",
    ]
    prompt = json.dumps(request.body["messages"])
    assert "Reply with one JSON object" in prompt
    assert "add a CSV export" in prompt


@pytest.mark.cli
async def test_a_hanging_claude_cli_is_stopped_at_the_budget(
    settings: Settings, claude_bin: str, tmp_path: Path
) -> None:
    with FakeAnthropic([ClaudeHang(60)]) as fake:
        env = claude_env(fake.url, tmp_path / "cli-home")
        elaborator = Elaborator(
            _settings(settings, tmp_path, claude_binary_path=claude_bin),
            None,
            env=env,
            budget=4,
            launcher=PlainLauncher(),
        )
        started = time.monotonic()
        with pytest.raises(ElaborationFailed) as caught:
            await elaborator.elaborate("x")
        elapsed = time.monotonic() - started
    assert elapsed < 4 + 3
    _, claude, gemini = caught.value.attempts
    assert claude.reason.startswith("stopped after ")
    assert claude.reason.endswith("the elaborate budget ran out")
    assert gemini == Tried("gemini", "skipped: the 4s budget was used up")


@pytest.mark.cli
async def test_the_gemini_cli_is_the_last_resort(
    settings: Settings, claude_bin: str, gemini_bin: str, tmp_path: Path
) -> None:
    home = tmp_path / "cli-home"
    with (
        FakeAnthropic([Text("I cannot write JSON today.")]) as claude_fake,
        FakeGemini([GeminiText(json.dumps({"task": SPEC}))]) as gemini_fake,
    ):
        # one environment for both CLIs: Claude's, with Gemini's own variables instead
        gemini = ("GEMINI_", "GOOGLE_")
        env = {
            k: v for k, v in claude_env(claude_fake.url, home).items() if not k.startswith(gemini)
        }
        env |= {k: v for k, v in gemini_env(gemini_fake.url, home).items() if k.startswith(gemini)}
        configured = _settings(
            settings, tmp_path, claude_binary_path=claude_bin, gemini_binary_path=gemini_bin
        )
        done = await Elaborator(configured, None, env=env, launcher=PlainLauncher()).elaborate(
            "add a CSV export"
        )
        [request] = gemini_fake.requests
    assert done.backend == "gemini"
    local, claude = done.attempts
    assert local.backend == "local"
    assert claude.backend == "claude"
    assert "did not reply with a JSON object" in claude.reason
    assert done.spec["name"] == "csv-export"
    assert done.spec["agent"]["project_dir"] == ""
    assert request.model == "gemini-2.5-flash"
    prompt = request.texts("user")[-1]
    assert prompt.startswith(SYSTEM_PROMPT)
    assert "Do not use tools." in prompt
    assert prompt.endswith(
        "Request:\nadd a CSV export\n\n"
        "Project: none (the agent starts in an empty scratch repository)"
    )
