# ruff: noqa: F811  (the fixtures of codex_harness are imported, then used by name)
"""The real Codex CLI (0.169.0) through :class:`CodexRunner`, against the Responses API of the
OpenAI fake.

Real git repositories, real processes, the real CLI; only the model is fake. The CLI comes from
``$CLAUDOMATOR_CODEX_BIN`` (default: the copy `make test` installs); the tests skip, saying why,
when it is missing. Codex's own retries are bounded with ``-c`` overrides (0 unless a test says),
so failing runs end in about a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import tomllib
from pathlib import Path

import pytest
from agent_harness import pid_alive, wait_for
from codex_harness import (  # noqa: F401  (pytest fixtures)
    KEY,
    MODEL,
    codex_env,
    codex_user_home,
    hang_command,
    host_pids,
    responses,
    retries,
)

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.codex import WORKSPACE_WRITE, CodexRunner, CodexSettings
from claudomator.config import DEFAULT_PRICES, estimate_cost
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.ratelimit import Limit, classify
from claudomator.summary import from_text
from conftest import MakeRepo
from fakes.openai_server import ApiError, FakeOpenAI, Hang, Reply, StreamFailure
from fakes.responses import exec_command

pytestmark = pytest.mark.cli

HIGH_DEMAND = "We\u2019re currently experiencing high demand"


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo("project")


class Runs:
    """Builds run contexts in one repo and runs the real CLI through `CodexRunner`."""

    def __init__(
        self, binary: str, fake: FakeOpenAI, repo: Path, env: dict[str, str], tmp: Path
    ) -> None:
        self.binary = binary
        self.fake = fake
        self.repo = repo
        self.env = env
        self.homes = tmp / "data" / "homes"
        self.logs = tmp / "logs"
        self.pids: list[int] = []

    def runner(self, retry: int = 0) -> CodexRunner:
        config = CodexSettings(self.homes, MODEL, self.fake.url, "FAKE_KEY", retries(retry))
        return CodexRunner(self.binary, PlainLauncher(), config)

    def context(
        self,
        instructions: str,
        *,
        task: Task | None = None,
        session_id: str = "",
        resume: bool = False,
        timeout: float = 90.0,
        **agent: object,
    ) -> RunContext:
        config = AgentConfig.model_validate(
            {"type": "codex", "instructions": instructions, **agent}
        )
        task = (task or Task(name="codex test", agent=config)).model_copy(update={"agent": config})
        execution_id = f"exec-{len(self.pids)}-{time.monotonic_ns()}"
        return RunContext(
            task=task,
            execution_id=execution_id,
            workdir=self.repo,
            log_dir=self.logs / execution_id,
            env=dict(self.env),
            session_id=session_id,
            timeout=timeout,
            kill_grace=2,
            stop=asyncio.Event(),
            resume=resume,
            on_started=self.pids.append,
        )

    async def run(self, ctx: RunContext, retry: int = 0) -> Outcome:
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        return await self.runner(retry).run(ctx)


@pytest.fixture
def runs(
    codex_bin: str, responses: FakeOpenAI, repo: Path, codex_env: dict[str, str], tmp_path: Path
) -> Runs:
    return Runs(codex_bin, responses, repo, codex_env, tmp_path)


def events(ctx: RunContext) -> list[dict[str, object]]:
    return [json.loads(line) for line in ctx.stdout_path.read_text(encoding="utf-8").splitlines()]


# -- the runner with the real CLI ----------------------------------------------------------


async def test_an_exec_command_edits_the_sandbox_and_the_run_completes(
    runs: Runs, responses: FakeOpenAI, repo: Path
) -> None:
    responses.set_script(
        [
            exec_command("echo 'hello from codex' > hello.txt", text="I'll create the file."),
            Reply("Done.\n\n## Summary\nCreated hello.txt with a greeting."),
        ]
    )
    ctx = runs.context("Create hello.txt")
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.exit_code == 0
    assert (repo / "hello.txt").read_text(encoding="utf-8") == "hello from codex\n"
    stream = events(ctx)
    assert stream[0]["type"] == "thread.started"
    assert outcome.session_id == stream[0]["thread_id"]
    assert outcome.model == MODEL
    assert (outcome.tokens_in, outcome.tokens_out) == (200, 40)  # 2 requests of 100/20
    assert outcome.cost_reported is False  # the pool estimates it
    assert outcome.details["commands"] == 1
    assert outcome.text.startswith("I'll create the file.\n\n")
    assert from_text(outcome.text) == "Created hello.txt with a greeting."
    # what the model saw: our prompt, the key, then the command's output
    first, second = responses.responses_requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.responses.model == MODEL
    assert first.responses.texts("user")[-1] == "Create hello.txt"
    assert "exec_command" in first.responses.tool_names
    [output] = second.responses.function_outputs()
    assert "Process exited with code 0" in output["output"]
    # the task's own CODEX_HOME, in its private home, never the user's
    codex_home = runs.homes / ctx.task.id / ".codex"
    config = tomllib.loads((codex_home / "config.toml").read_text(encoding="utf-8"))
    assert config["sandbox_mode"] == WORKSPACE_WRITE
    assert config["model_providers"]["claudomator"]["base_url"] == responses.url
    assert list((codex_home / "sessions").rglob(f"*{outcome.session_id}.jsonl"))
    assert not (Path(runs.env["HOME"]) / ".codex").exists()
    assert not pid_alive(runs.pids[0])


async def test_a_prompt_starting_with_a_dash_reaches_the_model_intact(
    runs: Runs, responses: FakeOpenAI
) -> None:
    prompt = "--version -m x\n-still the prompt"
    responses.set_script([Reply("## Summary\nok")])
    outcome = await runs.run(runs.context(prompt))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [request] = responses.responses_requests
    assert request.responses.texts("user")[-1] == prompt


async def test_resume_continues_the_thread_and_counts_only_its_own_tokens(
    runs: Runs, responses: FakeOpenAI, repo: Path, tmp_path: Path
) -> None:
    responses.set_script(
        [exec_command("echo one > first.txt"), Reply("## Summary\nWrote first.txt")]
    )
    first_ctx = runs.context("first task prompt")
    first = await runs.run(first_ctx)
    assert first.status == TaskState.COMPLETED, first.error_msg

    responses.set_script([Reply("## Summary\nContinued")])
    before = len(responses.requests)
    second_ctx = runs.context(
        "second task prompt", task=first_ctx.task, session_id=first.session_id, resume=True
    )
    second = await runs.run(second_ctx)

    assert second.status == TaskState.COMPLETED, second.error_msg
    assert second.session_id == first.session_id
    assert events(second_ctx)[0]["thread_id"] == first.session_id
    # the server saw the earlier conversation, then the new prompt
    [request] = responses.requests[before:]
    users = request.responses.texts("user")
    assert "first task prompt" in users
    assert users[-1] == "second task prompt"
    assert "## Summary\nWrote first.txt" in request.responses.texts("assistant")
    assert [json.loads(c["arguments"])["cmd"] for c in request.responses.function_calls()] == [
        "echo one > first.txt"
    ]
    # turn.completed said 300/60 for the session; this run's own share is one request
    assert second.details["session_tokens"] == [300, 60]
    assert (second.tokens_in, second.tokens_out) == (100, 20)


async def test_resume_of_an_unknown_thread_fails_with_the_cli_reason(
    runs: Runs, responses: FakeOpenAI
) -> None:
    ctx = runs.context("continue", session_id="01a237d9-7762-7110-acae-000000000000", resume=True)
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 1
    assert "no rollout found for thread id 01a237d9-7762-7110-acae-000000000000" in (
        outcome.error_msg
    )
    assert "Reading additional input" not in outcome.error_msg
    assert ctx.stdout_path.read_text(encoding="utf-8") == ""
    assert responses.requests == []


async def test_resume_of_a_name_that_is_no_thread_is_not_taken_for_a_resume(
    runs: Runs, responses: FakeOpenAI
) -> None:
    """Codex looks a non-UUID up as a thread name and, not finding it, starts a new thread
    (exit 0): that is no resume of the conversation, so the run fails."""
    responses.set_script([Reply("## Summary\nfresh start")])
    outcome = await runs.run(runs.context("continue", session_id="no-such-name", resume=True))
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 0
    assert "instead of resuming 'no-such-name'" in outcome.error_msg
    assert outcome.session_id != "no-such-name"


async def test_a_missing_key_variable_fails_saying_which(runs: Runs, responses: FakeOpenAI) -> None:
    del runs.env["FAKE_KEY"]
    outcome = await runs.run(runs.context("say hi"))
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg == "Missing environment variable: `FAKE_KEY`."
    assert responses.requests == []


async def test_server_error_500_fails_in_codex_words_with_the_status(
    runs: Runs, responses: FakeOpenAI
) -> None:
    responses.set_script([ApiError(500, "upstream exploded (fake)")], repeat_last=True)
    started = time.monotonic()
    outcome = await runs.run(runs.context("say hi"))

    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 1
    assert outcome.api_error_status == 500
    # Codex shows its own message for a 500, not the body's
    assert outcome.error_msg.startswith(f"API error 500: {HIGH_DEMAND}")
    assert len(responses.requests) == 1  # retries bounded to 0
    assert time.monotonic() - started < 30
    assert classify(outcome) is None  # an ordinary failure, not a rate limit


async def test_a_bad_gateway_fails_with_the_apis_own_message(
    runs: Runs, responses: FakeOpenAI
) -> None:
    responses.set_script([ApiError(502, "the upstream model is down (fake)")], repeat_last=True)
    outcome = await runs.run(runs.context("say hi"), retry=1)

    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 502
    assert "unexpected status 502 Bad Gateway: the upstream model is down (fake)" in (
        outcome.error_msg
    )
    assert outcome.details["retries"] == 1
    assert len(responses.requests) == 4  # 1 request retry x 1 stream retry


async def test_a_mid_stream_failure_fails_with_its_message(
    runs: Runs, responses: FakeOpenAI
) -> None:
    responses.set_script([StreamFailure("the model lost its train of thought")], repeat_last=True)
    outcome = await runs.run(runs.context("say hi"))
    assert outcome.status == TaskState.FAILED
    assert "stream disconnected before completion: the model lost its train" in outcome.error_msg


async def test_rate_limit_beyond_codex_retries_is_a_rate_limit(
    runs: Runs, responses: FakeOpenAI
) -> None:
    limited = ApiError(429, "Rate limit reached (fake)", retry_after=1, error_type="rate_limit")
    responses.set_script([limited], repeat_last=True)
    outcome = await runs.run(runs.context("say hi"), retry=1)

    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 429
    assert "last status: 429 Too Many Requests" in outcome.error_msg
    assert len(responses.requests) == 2  # Codex retried once, honouring retry-after
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.RATE


async def test_insufficient_quota_is_a_quota_failure(runs: Runs, responses: FakeOpenAI) -> None:
    responses.set_script(
        [ApiError(429, "You exceeded your current quota (fake)", error_type="insufficient_quota")],
        repeat_last=True,
    )
    outcome = await runs.run(runs.context("say hi"), retry=1)
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg.startswith("Quota exceeded.")
    assert outcome.details["quota"] is True
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA
    assert len(responses.requests) == 1  # not retried


async def test_an_auth_error_fails_with_the_status(runs: Runs, responses: FakeOpenAI) -> None:
    responses.set_script([ApiError(401, "Incorrect API key provided (fake)")], repeat_last=True)
    outcome = await runs.run(runs.context("say hi"))
    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 401
    assert "401 Unauthorized: Incorrect API key provided (fake)" in outcome.error_msg
    assert classify(outcome) is None


async def test_timeout_kills_the_cli_and_its_command(
    runs: Runs, responses: FakeOpenAI, tmp_path: Path
) -> None:
    command, pidfile = hang_command(tmp_path)
    responses.set_script([exec_command(command, yield_time_ms=30000), Hang(120)])
    ctx = runs.context("hang", timeout=8)
    job = asyncio.create_task(runs.run(ctx))
    await wait_for(pidfile.exists, 30)
    [child] = host_pids(str(pidfile))
    # Codex's own sandbox runs it in a pid namespace of its own
    assert int(pidfile.read_text(encoding="utf-8")) != child
    outcome = await job

    assert outcome.status == TaskState.TIMED_OUT
    assert "timed out after 8s" in outcome.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert host_pids(str(pidfile)) == []
    assert not pid_alive(runs.pids[0])


async def test_stop_cancels_a_run_waiting_for_the_model(runs: Runs, responses: FakeOpenAI) -> None:
    responses.set_script([Hang(60)])
    ctx = runs.context("wait for me")
    job = asyncio.create_task(runs.run(ctx))
    await wait_for(lambda: bool(responses.requests), 30)
    started = time.monotonic()
    ctx.stop.set()
    outcome = await job
    assert outcome.status == TaskState.CANCELLED
    assert time.monotonic() - started < 10
    assert not pid_alive(runs.pids[0])


async def test_live_cost_estimate_over_the_budget_stops_the_run(
    runs: Runs, responses: FakeOpenAI, tmp_path: Path
) -> None:
    command, pidfile = hang_command(tmp_path)
    flood = "python3 -c 'print(\"x\" * 400000)'"  # the next model turn is sent ~100,000 tokens
    responses.set_script([exec_command(flood), exec_command(f"{flood}; {command}"), Hang(60)])
    ctx = runs.context("spend", timeout=60, max_budget_usd=0.01)
    ctx = dataclasses.replace(
        ctx, estimate_cost=lambda model, i, o: estimate_cost(DEFAULT_PRICES, model, i, o)
    )
    # gpt-5-mini: 100,000 tokens in are $0.025, over the budget of $0.01
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.BUDGET_EXCEEDED, outcome.error_msg
    assert "passed the budget of $0.01" in outcome.error_msg
    assert outcome.error_msg.startswith("estimated cost ~$")
    assert not pid_alive(runs.pids[0])
    await wait_for(lambda: host_pids(str(pidfile)) == [], 5)


async def test_a_codex_home_under_the_temp_dir_still_runs_commands(
    runs: Runs, responses: FakeOpenAI, repo: Path, tmp_path: Path
) -> None:
    """Codex refuses its sandbox helper when CODEX_HOME is under $TMPDIR (every command would
    fail, exit 0): the runner gives such a run a TMPDIR of its own."""
    runs.env["TMPDIR"] = str(tmp_path)  # the private homes are below it
    responses.set_script([exec_command("echo $TMPDIR > where.txt"), Reply("## Summary\nok")])
    ctx = runs.context("where")
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    private = runs.homes / ctx.task.id / "tmp"
    assert (repo / "where.txt").read_text(encoding="utf-8").strip() == str(private)
    assert "Refusing to create helper binaries" not in ctx.stderr_path.read_text()


async def test_context_files_outside_the_sandbox_are_readable(
    runs: Runs, responses: FakeOpenAI, tmp_path: Path
) -> None:
    notes = tmp_path / "shared-docs" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("context note 4711\n", encoding="utf-8")
    responses.set_script([exec_command(f"cat {notes}"), Reply("## Summary\nread it")])
    outcome = await runs.run(runs.context("Read the notes", context_files=[str(notes)]))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert responses.requests[0].responses.texts("user")[-1].endswith(f"- {notes}")
    [output] = responses.requests[1].responses.function_outputs()
    assert "context note 4711" in output["output"]


def test_the_codex_binary_of_make_test_is_the_pinned_version(codex_bin: str) -> None:
    import subprocess

    done = subprocess.run([codex_bin, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "codex-cli 0.169.0"
    assert os.access(codex_bin, os.X_OK)
