# ruff: noqa: F811  (the fixtures of qwen_harness are imported, then used by name)
"""The real Qwen Code CLI through :class:`QwenRunner`, against the fake Chat Completions server.

Real git repositories, real processes, real CLI; only the model is fake (`fakes.openai_tools`).
The CLI comes from ``$CLAUDOMATOR_QWEN_BIN`` (default: ``.tools/node_modules/.bin/qwen``); the
tests skip, saying why, when it is missing. The provider is configured as an operator would:
``[agents.qwen]`` ``base_url``, ``model`` and ``api_key_env`` naming a variable of the
orchestrator's environment. The runner bounds the CLI's retries itself (``maxRetries: 0``), so
a failing run ends after the CLI's fixed outer retries (seconds for a 429 with Retry-After, about
80 s for a persistent 500).

The pool-level tests (delivery, 500, 429, question and resume, review) are in
``test_qwen_pool.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from pathlib import Path

import pytest
from agent_harness import hanging_command, marked_pid, marked_pids, pid_alive, wait_for
from qwen_harness import (  # noqa: F401  (pytest fixtures)
    MODEL,
    create_file,
    fake,
    qwen_bin,
    qwen_env,
    qwen_table,
)

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.qwen import QwenRunner
from claudomator.config import ModelPrice, estimate_cost
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.ratelimit import Limit, classify
from conftest import MakeRepo
from fakes.openai_tools import ApiError, FakeChatTools, Hang, Reply, ToolCall

pytestmark = pytest.mark.cli


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo("project")


class Runs:
    """Builds run contexts in one repo and runs the real CLI through `QwenRunner`."""

    def __init__(self, binary: str, fake: FakeChatTools, repo: Path, tmp_path: Path) -> None:
        self.homes = tmp_path / "homes"
        self.user_home = tmp_path / "user-home"
        self.runner = QwenRunner(
            binary, PlainLauncher(), agent=qwen_table(binary, fake), homes=self.homes
        )
        self.repo = repo
        self.logs = tmp_path / "logs"
        self.task = Task(name="qwen test", agent=AgentConfig(type="qwen", instructions="-"))
        self.pids: list[int] = []

    def context(
        self,
        instructions: str,
        *,
        session_id: str | None = None,
        resume: bool = False,
        timeout: float = 90.0,
        **agent: object,
    ) -> RunContext:
        config = AgentConfig.model_validate({"type": "qwen", "instructions": instructions, **agent})
        execution_id = str(uuid.uuid4())
        return RunContext(
            task=self.task.model_copy(update={"agent": config}),  # one task: one private home
            execution_id=execution_id,
            workdir=self.repo,
            log_dir=self.logs / execution_id,
            env=qwen_env(self.user_home),
            session_id=session_id or str(uuid.uuid4()),
            timeout=timeout,
            kill_grace=2,
            stop=asyncio.Event(),
            resume=resume,
            on_started=self.pids.append,
        )

    @property
    def qwen_home(self) -> Path:
        return self.homes / self.task.id / ".qwen"

    async def run(self, ctx: RunContext) -> Outcome:
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        return await self.runner.run(ctx)


@pytest.fixture
def runs(qwen_bin: str, fake: FakeChatTools, repo: Path, tmp_path: Path) -> Runs:
    return Runs(qwen_bin, fake, repo, tmp_path)


def stdout_events(ctx: RunContext) -> list[dict[str, object]]:
    events = [json.loads(line) for line in ctx.stdout_path.read_text("utf-8").splitlines()]
    assert all(isinstance(e, dict) for e in events)
    return events


# -- the runner with the real CLI ------------------------------------------------------------


async def test_shell_tool_call_edits_the_sandbox_and_completes(
    runs: Runs, fake: FakeChatTools, repo: Path
) -> None:
    fake.set_script([create_file(repo), Reply("Done.\n\n## Summary\nCreated hello.txt.")])
    ctx = runs.context("Create hello.txt")
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.exit_code == 0
    assert (repo / "hello.txt").read_text(encoding="utf-8") == "hello from qwen\n"
    assert outcome.session_id == ctx.session_id
    assert outcome.model == MODEL
    assert (outcome.tokens_in, outcome.tokens_out) == (200, 40)  # two calls of 100 / 20
    assert outcome.cost_reported is False
    assert outcome.details["tools"] == ["run_shell_command"]
    assert outcome.text.startswith("I'll create the file.")
    events = stdout_events(ctx)
    assert events[0]["subtype"] == "init"
    assert events[0]["session_id"] == ctx.session_id
    assert events[-1]["type"] == "result"
    # what the server saw: the provider of [agents.qwen], our prompt, then the tool's result
    first, second = fake.requests
    assert first.headers["authorization"] == "Bearer fake-key"
    assert first.model == MODEL
    assert first.body["stream"] is True
    assert "run_shell_command" in first.tool_names
    assert first.texts("user")[-1] == "Create hello.txt"
    [result] = second.tool_results()
    assert "Exit Code: 0" in json.dumps(result["content"])
    # everything Qwen keeps is in the task's private home, none in the user's
    settings = json.loads((runs.qwen_home / "settings.json").read_text(encoding="utf-8"))
    assert settings["model"]["generationConfig"]["maxRetries"] == 0
    assert list(runs.qwen_home.glob(f"projects/*/chats/{ctx.session_id}.jsonl"))
    assert not (runs.user_home / ".qwen").exists()
    assert not (repo / ".qwen").exists()
    assert not pid_alive(runs.pids[0])


async def test_write_file_tool_edits_the_sandbox(
    runs: Runs, fake: FakeChatTools, repo: Path
) -> None:
    target = repo / "notes" / "plan.md"
    fake.set_script(
        [
            ToolCall("write_file", {"file_path": str(target), "content": "# Plan\n"}),
            Reply("## Summary\nWrote the plan."),
        ]
    )
    outcome = await runs.run(runs.context("Write the plan"))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert target.read_text(encoding="utf-8") == "# Plan\n"
    assert outcome.details["tools"] == ["write_file"]


async def test_resume_sends_the_earlier_conversation(
    runs: Runs, fake: FakeChatTools, repo: Path
) -> None:
    fake.set_script([create_file(repo), Reply("## Summary\nWrote hello.txt")])
    first_ctx = runs.context("first task prompt")
    first = await runs.run(first_ctx)
    assert first.status == TaskState.COMPLETED, first.error_msg

    fake.set_script([Reply("## Summary\nContinued")])
    before = len(fake.requests)
    second_ctx = runs.context("second task prompt", session_id=first_ctx.session_id, resume=True)
    second = await runs.run(second_ctx)

    assert second.status == TaskState.COMPLETED, second.error_msg
    assert second.session_id == first_ctx.session_id
    # this run's tokens; the CLI's result.usage is the session's
    assert (second.tokens_in, second.tokens_out) == (100, 20)
    assert second.details["session_tokens"] == [300, 60]
    [request] = fake.requests[before:]
    assert request.texts("user")[-1] == "second task prompt"
    assert any("first task prompt" in t for t in request.texts("user"))
    assert [c["name"] for c in request.tool_calls()] == ["run_shell_command"]
    assert "## Summary\nWrote hello.txt" in request.texts("assistant")


async def test_resume_of_an_unknown_session_fails_with_the_cli_reason(
    runs: Runs, fake: FakeChatTools
) -> None:
    ctx = runs.context("continue", resume=True)
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 1
    assert outcome.error_msg.startswith(f"No saved session found with ID {ctx.session_id}.")
    assert ctx.stdout_path.read_text(encoding="utf-8") == ""
    assert fake.requests == []


async def test_rate_limit_beyond_the_retries_fails_as_a_rate_limit(
    runs: Runs, fake: FakeChatTools
) -> None:
    fake.set_script([ApiError(429, "Too many requests (fake)", retry_after=1)], repeat_last=True)
    started = time.monotonic()
    outcome = await runs.run(runs.context("say hi"))
    elapsed = time.monotonic() - started

    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 429
    assert outcome.error_msg.startswith("[API Error: 429 Too many requests (fake)]")
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.RATE
    # the CLI's fixed 7 attempts, each after the 1 s Retry-After; no SDK retries (maxRetries 0)
    assert len(fake.requests) == 7
    assert {r.headers["x-stainless-retry-count"] for r in fake.requests} == {"0"}
    assert elapsed < 40, f"took {elapsed:.1f}s"


async def test_timeout_kills_the_cli_and_its_shell_command(
    runs: Runs, fake: FakeChatTools, repo: Path, tmp_path: Path
) -> None:
    marker = f"hang-{tmp_path.name}"
    fake.set_script(
        [
            ToolCall(
                "run_shell_command", {"command": hanging_command(marker), "directory": str(repo)}
            )
        ]
    )
    ctx = runs.context("hang", timeout=8)
    job = asyncio.create_task(runs.run(ctx))
    child = await asyncio.to_thread(marked_pid, marker)
    assert pid_alive(child)
    # the CLI starts shell commands detached, outside the agent's process group
    assert os.getpgid(child) != runs.pids[0]
    outcome = await job

    assert outcome.status == TaskState.TIMED_OUT
    assert "timed out after 8s" in outcome.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert not pid_alive(runs.pids[0])


async def test_stop_cancels_a_run_waiting_for_the_model(runs: Runs, fake: FakeChatTools) -> None:
    fake.set_script([Hang(60)])
    ctx = runs.context("wait for me")
    job = asyncio.create_task(runs.run(ctx))
    await wait_for(lambda: bool(fake.requests), 30)
    started = time.monotonic()
    ctx.stop.set()
    outcome = await job

    assert outcome.status == TaskState.CANCELLED
    assert time.monotonic() - started < 10
    assert not pid_alive(runs.pids[0])


async def test_a_prompt_starting_with_a_dash_reaches_the_model_intact(
    runs: Runs, fake: FakeChatTools
) -> None:
    prompt = "--version -p=x --yolo\n-still the prompt"
    fake.set_script([Reply("## Summary\nok")])
    outcome = await runs.run(runs.context(prompt))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [request] = fake.requests
    assert request.texts("user")[-1] == prompt


async def test_live_estimate_over_the_budget_stops_the_run(
    runs: Runs, fake: FakeChatTools, repo: Path, tmp_path: Path
) -> None:
    marker = f"hang-{tmp_path.name}"
    fake.prompt_tokens = (
        1000  # $0.40 a call at $400 per million (small: the CLI compresses big ones)
    )
    fake.set_script(
        [
            ToolCall("run_shell_command", {"command": "echo one > one.txt"}),
            ToolCall("run_shell_command", {"command": hanging_command(marker)}),
        ]
    )
    prices = {MODEL: ModelPrice(input_per_million=400.0, output_per_million=0.0)}
    ctx = dataclasses.replace(
        runs.context("spend", timeout=60, max_budget_usd=0.5),
        estimate_cost=lambda model, tin, tout: estimate_cost(prices, model, tin, tout),
    )
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.BUDGET_EXCEEDED, outcome.error_msg
    assert outcome.error_msg == (
        "estimated cost $0.8000 passed the budget of $0.5; stopped the agent"
    )
    assert (outcome.tokens_in, outcome.tokens_out) == (2000, 40)
    assert (repo / "one.txt").exists()
    assert not pid_alive(runs.pids[0])
    await wait_for(lambda: not marked_pids(marker), 5)  # if the hanging command had started
