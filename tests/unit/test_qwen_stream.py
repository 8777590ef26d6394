"""QwenStream fed the real captured stream-json samples, and the Qwen runner's pure parts.

The samples under ``tests/samples/qwen-0.24.4`` were captured from the real Qwen Code 0.24.4
against a fake Chat Completions server; the outcome mapping is checked by feeding them together
with the exit code the CLI had.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.qwen import (
    QwenRunner,
    build_argv,
    provider_env,
    qwen_settings,
    qwen_spec,
)
from claudomator.agents.qwen_stream import QwenStream, status_from_message
from claudomator.agents.registry import AgentRegistry, default_registry
from claudomator.config import AgentSettings, Settings
from claudomator.errors import AgentError
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.process import Exit
from claudomator.summary import from_text
from conftest import SAMPLES

QWEN = SAMPLES / "qwen-0.24.4"
ALL_STREAMS = sorted(p.name for p in QWEN.glob("*.jsonl"))
RESUMED = "12345678-1234-4234-8234-123456789abc"


def _feed(name: str) -> QwenStream:
    stream = QwenStream()
    for line in (QWEN / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    return stream


@dataclass(frozen=True)
class Expected:
    """What each sample must parse to, and the exit code the CLI had."""

    session: str
    tokens: tuple[int, int]  # this invocation's, from the assistant lines
    session_tokens: tuple[int, int]  # result.usage: cumulative over a resumed session
    tools: tuple[str, ...]
    exit_code: int
    api_status: int | None
    summary: str | None


EXPECTED: dict[str, Expected] = {
    "qwen_0.24.4_basic_tool.jsonl": Expected(
        "babe08d0-e36f-4f0f-afa8-fcdf6c591309", (200, 40), (200, 40),
        ("run_shell_command",), 0, None, "Created hello.txt",
    ),
    "qwen_0.24.4_text_only.jsonl": Expected(
        "9f9cd12d-b469-4bc5-8687-c4d18b24f98a", (10, 5), (20, 10), (), 0, None, None,
    ),
    "qwen_0.24.4_resume_run1.jsonl": Expected(
        RESUMED, (200, 40), (200, 40), ("run_shell_command",), 0, None, "first",
    ),
    "qwen_0.24.4_resume_run2.jsonl": Expected(
        RESUMED, (100, 20), (300, 60), (), 0, None, "second",
    ),
    "qwen_0.24.4_err500.jsonl": Expected(
        "8f4bdb4b-3831-4b36-b383-544115512026", (0, 0), (0, 0), (), 1, 500, None,
    ),
    "qwen_0.24.4_err429.jsonl": Expected(
        "ef64f695-398e-426e-acbe-1269d91efb1a", (0, 0), (0, 0), (), 1, 429, None,
    ),
}  # fmt: skip


def context(tmp_path: Path, **agent: object) -> RunContext:
    config = AgentConfig.model_validate({"type": "qwen", "instructions": "do it", **agent})
    log_dir = tmp_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(
        task=Task(name="qwen", agent=config),
        execution_id=str(uuid.uuid4()),
        workdir=tmp_path,
        log_dir=log_dir,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")},
        session_id=RESUMED,
        timeout=60,
        kill_grace=1,
        stop=asyncio.Event(),
    )


def test_every_sample_has_an_expectation() -> None:
    assert len(ALL_STREAMS) >= 6
    assert sorted(EXPECTED) == ALL_STREAMS


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_sample_parses(name: str) -> None:
    want = EXPECTED[name]
    stream = _feed(name)
    assert stream.bad_lines == 0
    assert stream.session_id == want.session
    assert stream.model == "fake-model"
    assert stream.tokens == want.tokens
    assert stream.session_tokens == want.session_tokens
    assert tuple(stream.tools_used) == want.tools
    assert stream.api_error_status == want.api_status
    assert stream.cost_usd == 0.0
    assert stream.is_error is (want.exit_code != 0)
    if want.summary is not None:
        assert from_text(stream.text) == want.summary


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_outcome_of_every_sample(name: str, tmp_path: Path) -> None:
    want = EXPECTED[name]
    outcome = QwenRunner.outcome(_feed(name), Exit(want.exit_code), context(tmp_path))
    assert outcome.status == (TaskState.COMPLETED if want.exit_code == 0 else TaskState.FAILED)
    assert outcome.session_id == want.session
    assert (outcome.tokens_in, outcome.tokens_out) == want.tokens
    assert outcome.cost_reported is False  # the pool estimates it from the price table
    assert outcome.api_error_status == want.api_status
    assert outcome.model == "fake-model"
    if want.exit_code == 0:
        assert outcome.error_msg == ""


def test_api_failure_says_the_servers_message_and_not_as_the_agents_words(
    tmp_path: Path,
) -> None:
    outcome = QwenRunner.outcome(_feed("qwen_0.24.4_err500.jsonl"), Exit(1), context(tmp_path))
    assert outcome.error_msg == "[API Error: 500 Internal server error (fake)]"
    assert outcome.text == ""  # the CLI repeats the error as an assistant text: not a reply
    limited = QwenRunner.outcome(_feed("qwen_0.24.4_err429.jsonl"), Exit(1), context(tmp_path))
    assert limited.error_msg.startswith("[API Error: 429 slow down (fake)]")


def test_a_failure_without_a_result_takes_stderr_without_the_chatter(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.stderr_path.write_text(
        "Ripgrep not available: spawn …/rg EACCES. Falling back to built-in grep.\n"
        "No saved session found with ID 99. Run `qwen --resume` without an ID to choose.\n",
        encoding="utf-8",
    )
    outcome = QwenRunner.outcome(QwenStream(), Exit(1), ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg.startswith("No saved session found with ID 99.")
    assert "Ripgrep" not in outcome.error_msg
    bare = QwenRunner.outcome(QwenStream(), Exit(3), context(tmp_path / "x"))
    assert bare.error_msg == "the agent exited without a result (exit code 3)"


def test_timeout_stop_and_budget_map_to_their_states(tmp_path: Path) -> None:
    stream = _feed("qwen_0.24.4_resume_run1.jsonl")
    ctx = context(tmp_path, max_budget_usd=0.01)
    timed = QwenRunner.outcome(stream, Exit(None, timed_out=True), ctx)
    assert timed.status == TaskState.TIMED_OUT
    assert "timed out after 60s" in timed.error_msg
    stopped = QwenRunner.outcome(stream, Exit(None, stopped=True), ctx)
    assert stopped.status == TaskState.CANCELLED
    over = QwenRunner.outcome(stream, Exit(None, stopped=True), ctx, over_budget=0.02)
    assert over.status == TaskState.BUDGET_EXCEEDED
    assert over.error_msg == "estimated cost $0.0200 passed the budget of $0.01; stopped the agent"


def test_status_from_message() -> None:
    assert status_from_message("[API Error: 503 overloaded]") == 503
    assert status_from_message("[API Error: Connection error.]") is None
    assert status_from_message("[API Error: 200 odd]") is None
    assert status_from_message("no error") is None


def test_usage_of_one_message_told_twice_counts_once() -> None:
    line = json.dumps(
        {
            "type": "assistant",
            "message": {
                "id": "m1",
                "content": [],
                "usage": {"input_tokens": 7, "output_tokens": 3},
            },
        }
    )
    stream = QwenStream()
    stream.feed(line)
    stream.feed(line)
    stream.feed("not json")
    assert stream.tokens == (7, 3)
    assert stream.bad_lines == 1


# -- argv, environment, settings ----------------------------------------------------------------


def test_argv_fresh_and_resumed(tmp_path: Path) -> None:
    ctx = context(
        tmp_path,
        instructions="-v starts with a dash",
        system_prompt_append="be brief",
        disallowed_tools=["web_fetch", "agent"],
        additional_args=["--max-session-turns", "9"],
    )
    argv = build_argv("qwen", ctx, "m1", ("--debug",))
    assert argv[:8] == [
        "qwen",
        "--prompt=-v starts with a dash",
        "--output-format",
        "stream-json",
        "--yolo",
        "--auth-type",
        "openai",
        "--model",
    ]
    assert argv[8:] == [
        "m1",
        "--session-id",
        RESUMED,
        "--append-system-prompt",
        "be brief",
        "--exclude-tools",
        "web_fetch,agent",
        "--debug",
        "--max-session-turns",
        "9",
    ]
    resumed = build_argv("qwen", dataclasses.replace(ctx, resume=True), "m1")
    assert resumed[resumed.index("--resume") + 1] == RESUMED
    assert "--session-id" not in resumed


def test_context_files_outside_the_sandbox_are_included(tmp_path: Path) -> None:
    notes = tmp_path.parent / f"{tmp_path.name}-docs" / "notes.md"
    ctx = context(tmp_path / "sandbox", context_files=[str(notes)])
    argv = build_argv("qwen", ctx, "m")
    assert argv[argv.index("--include-directories") + 1] == str(notes.parent.resolve())
    assert argv[1].endswith(f"- {notes}")


def test_provider_env_from_the_agents_table() -> None:
    table = AgentSettings(base_url="http://127.0.0.1:9/v1", api_key_env="MY_KEY")
    env = provider_env({"MY_KEY": "k1", "OPENAI_API_KEY": "other"}, table, "m2")
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert env["OPENAI_API_KEY"] == "k1"
    assert env["OPENAI_MODEL"] == "m2"
    assert env["MY_KEY"] == "k1"  # the orchestrator's own variable is left alone
    # without a table the environment's provider stands
    plain = {"OPENAI_BASE_URL": "u", "OPENAI_API_KEY": "k", "OPENAI_MODEL": "old"}
    assert provider_env(plain, None, "") == plain
    with pytest.raises(AgentError, match="api_key_env names MY_KEY, which is not set"):
        provider_env({}, table, "m2")


def test_prepare_writes_the_settings_in_the_tasks_private_home(tmp_path: Path) -> None:
    homes = tmp_path / "homes"
    table = AgentSettings(model="cfg-model", base_url="http://h/v1", api_key_env="K")
    runner = QwenRunner("qwen", PlainLauncher(), agent=table, homes=homes)
    ctx = context(tmp_path)
    ctx = dataclasses.replace(ctx, env={**ctx.env, "K": "secret", "QWEN_HOME": "/users/own"})
    prepared, model = runner.prepare(ctx)
    qwen_home = homes / ctx.task.id / ".qwen"
    assert model == "cfg-model"
    assert prepared.env["QWEN_HOME"] == str(qwen_home)  # never the user's
    assert prepared.env["OPENAI_API_KEY"] == "secret"
    assert prepared.env["OPENAI_MODEL"] == "cfg-model"
    assert (qwen_home.parent.stat().st_mode & 0o777, qwen_home.stat().st_mode & 0o777) == (
        0o700,
        0o700,
    )
    written = json.loads((qwen_home / "settings.json").read_text(encoding="utf-8"))
    assert written == qwen_settings()
    assert written["model"]["generationConfig"]["maxRetries"] == 0
    assert written["memory"]["enableManagedAutoMemory"] is False
    # what a launcher is told: the Qwen folder, and the settings for a private home
    assert runner.agent_paths(prepared.env) == (qwen_home,)
    assert runner.home_copies(prepared.env) == (
        (qwen_home / "settings.json", ".qwen/settings.json"),
    )
    access = runner.access(prepared)
    assert "QWEN_HOME" not in access.env_patterns  # a host path: confined, HOME/.qwen is it
    assert access.endpoints == ("http://h",)  # what a model-only network lets through
    # the task's model wins over the table's
    with_model = context(tmp_path, model="task-model")
    with_model = dataclasses.replace(with_model, env={**with_model.env, "K": "secret"})
    task_model, model = runner.prepare(with_model)
    assert model == "task-model"
    assert task_model.env["OPENAI_MODEL"] == "task-model"


def test_a_run_without_any_model_is_refused(tmp_path: Path) -> None:
    runner = QwenRunner("qwen", PlainLauncher(), homes=tmp_path / "homes")
    with pytest.raises(AgentError, match="no model for Qwen Code"):
        runner.prepare(context(tmp_path))


def test_the_spec_registers_like_any_agent(settings: Settings, tmp_path: Path) -> None:
    spec = qwen_spec()
    registry = default_registry() if "qwen" not in default_registry() else AgentRegistry()
    registry.register(spec)
    assert spec.capabilities == QwenRunner.capabilities
    assert spec.capabilities.resumes_in_place is True
    assert spec.capabilities.reports_cost is False
    configured = settings.model_copy(
        update={"agents": {"qwen": AgentSettings(binary_path="/opt/qwen", model="m", args=("-d",))}}
    )
    runner = registry.runners(configured, PlainLauncher())["qwen"]
    assert isinstance(runner, QwenRunner)
    assert runner.binary == "/opt/qwen"
    assert runner.agent is not None
    assert runner.agent.args == ("-d",)
    assert runner.homes == configured.homes_dir
    assert spec.credentials is not None
    assert spec.credentials({"OPENAI_API_KEY": "x"}) == (True, "OPENAI_API_KEY")
    assert spec.credentials({})[0] is None
