"""The real Gemini CLI through :class:`GeminiRunner`, against the fake Gemini API server.

Real git repositories, real processes, real CLI; only the model is fake (`fakes.gemini`). The CLI
comes from ``$CLAUDOMATOR_GEMINI_BIN`` (default: the copy `make test` installs); the tests skip,
saying why, when it is missing. ``general.maxAttempts`` is 2 (1 where a retry would only add the
CLI's 5 s minimum backoff), so failing runs end in seconds. The last test runs a task through the
pool end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import SETTLED, pid_alive, wait_for

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.gemini import GeminiRunner
from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.process import MARK_VARIABLE
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from claudomator.summary import from_text
from conftest import MakeRepo, git, kept_branch
from fakes.gemini import ApiError, FakeGemini, FunctionCall, Hang, Text, gemini_env

pytestmark = pytest.mark.cli

MODEL = "gemini-2.5-pro"
QUOTA_MESSAGE = "Resource has been exhausted (e.g. check quota). (fake)"

HANG = """
import os, sys, time
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(300)
"""


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def agent_home(tmp_path: Path) -> Path:
    return tmp_path / "agent-home"


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo("project")


class Runs:
    """Builds run contexts in one repo and runs the real CLI through `GeminiRunner`."""

    def __init__(self, binary: str, fake: FakeGemini, repo: Path, home: Path, logs: Path) -> None:
        self.runner = GeminiRunner(binary, PlainLauncher())
        self.fake = fake
        self.repo = repo
        self.home = home
        self.logs = logs
        self.pids: list[int] = []

    def context(
        self,
        instructions: str,
        *,
        model: str = MODEL,
        session_id: str | None = None,
        resume: bool = False,
        timeout: float = 90.0,
        max_attempts: int = 2,
        **agent: object,
    ) -> RunContext:
        config = AgentConfig.model_validate(
            {"type": "gemini", "instructions": instructions, "model": model, **agent}
        )
        execution_id = str(uuid.uuid4())
        return RunContext(
            task=Task(name="gemini test", agent=config),
            execution_id=execution_id,
            workdir=self.repo,
            log_dir=self.logs / execution_id,
            env=gemini_env(self.fake.url, self.home, max_attempts=max_attempts),
            session_id=session_id or str(uuid.uuid4()),
            timeout=timeout,
            kill_grace=2,
            stop=asyncio.Event(),
            resume=resume,
            on_started=self.pids.append,
        )

    async def run(self, ctx: RunContext) -> Outcome:
        return await self.runner.run(ctx)


@pytest.fixture
def runs(gemini_bin: str, fake: FakeGemini, repo: Path, agent_home: Path, tmp_path: Path) -> Runs:
    return Runs(gemini_bin, fake, repo, agent_home, tmp_path / "logs")


def hang_command(tmp_path: Path) -> tuple[str, Path]:
    """A shell command whose process writes its pid to a file and then hangs."""
    script = tmp_path / "hang.py"
    script.write_text(HANG, encoding="utf-8")
    pidfile = tmp_path / "child.pid"
    return f"python3 {script} {pidfile}", pidfile


def stdout_events(ctx: RunContext) -> list[dict[str, object]]:
    lines = ctx.stdout_path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) for e in events)
    return events


# -- the runner with the real CLI ----------------------------------------------------------


async def test_tool_call_then_summary_completes(runs: Runs, fake: FakeGemini, repo: Path) -> None:
    fake.set_script(
        [
            FunctionCall(
                "run_shell_command",
                {"command": "echo 'hello from gemini' > hello.txt", "description": "create"},
                text="I'll create the file.",
            ),
            Text("Done, the file is there.\n\n## Summary\nCreated hello.txt with a greeting."),
        ]
    )
    ctx = runs.context("Create hello.txt")
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.exit_code == 0
    assert outcome.error_msg == ""
    assert (repo / "hello.txt").read_text(encoding="utf-8") == "hello from gemini\n"
    assert outcome.session_id == ctx.session_id
    assert outcome.model == MODEL
    # two model calls of 100 in / 20 out each; no cost reported
    assert (outcome.tokens_in, outcome.tokens_out) == (200, 40)
    assert outcome.cost_usd == 0
    assert outcome.cost_reported is False
    assert outcome.details["tools"] == ["run_shell_command"]
    assert outcome.details["leftover_processes"] == 0
    assert outcome.text.startswith("I'll create the file.\n\n")
    assert from_text(outcome.text) == "Created hello.txt with a greeting."
    # stdout.log is the raw stream, exactly as the CLI wrote it
    events = stdout_events(ctx)
    assert events[0] == {**events[0], "type": "init", "session_id": ctx.session_id, "model": MODEL}
    assert events[-1]["type"] == "result"
    assert events[-1]["status"] == "success"
    assert [e["type"] for e in events].count("tool_use") == 1
    # what the model saw: our prompt, the sandbox as workspace, then the tool's result
    first, second = fake.requests
    assert first.model == MODEL
    assert first.headers["x-goog-api-key"] == "fake-key"
    assert first.texts("user")[-1] == "Create hello.txt"
    assert f"- **Workspace Directories:**\n  - {repo}\n" in first.texts("user")[0]
    [response] = second.function_responses()
    assert response["name"] == "run_shell_command"
    assert fake.side_requests == []  # -m given: no router call
    assert len(runs.pids) == 1
    assert not pid_alive(runs.pids[0])


async def test_resume_sends_the_earlier_conversation(
    runs: Runs, fake: FakeGemini, repo: Path
) -> None:
    """Without -m the model is `auto`: the router side call happens and the main model wins."""
    fake.set_script(
        [
            FunctionCall("run_shell_command", {"command": "echo one > first.txt"}),
            Text("## Summary\nWrote first.txt"),
        ]
    )
    first_ctx = runs.context("first task prompt", model="")
    first = await runs.run(first_ctx)
    assert first.status == TaskState.COMPLETED, first.error_msg
    assert fake.side_requests, "model auto makes a router call"
    assert first.model == fake.requests[-1].model != "auto"
    assert first.model not in {r.model for r in fake.side_requests}

    fake.set_script([Text("## Summary\nContinued")])
    before = len(fake.requests)
    second_ctx = runs.context(
        "second task prompt", model="", session_id=first_ctx.session_id, resume=True
    )
    second = await runs.run(second_ctx)

    assert second.status == TaskState.COMPLETED, second.error_msg
    assert second.session_id == first_ctx.session_id
    assert stdout_events(second_ctx)[0]["session_id"] == first_ctx.session_id
    assert from_text(second.text) == "Continued"
    [request] = fake.requests[before:]
    user_texts = request.texts("user")
    assert "first task prompt" in user_texts
    assert user_texts[-1] == "second task prompt"
    assert [c["name"] for c in request.function_calls()] == ["run_shell_command"]
    assert "## Summary\nWrote first.txt" in request.texts("model")
    assert (repo / "first.txt").exists()


async def test_resume_of_an_unknown_session_fails_with_the_cli_reason(
    runs: Runs, fake: FakeGemini
) -> None:
    ctx = runs.context("continue", resume=True)
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 42
    assert outcome.api_error_status is None
    # nothing on stdout: the reason comes from stderr ("No previous sessions found for this
    # project." here; "Invalid session identifier" once the project has other sessions)
    assert outcome.error_msg.startswith("Error resuming session: ")
    assert "FatalInputError" in outcome.error_msg
    assert ctx.stdout_path.read_text(encoding="utf-8") == ""
    assert fake.requests == []


async def test_server_error_forever_fails_with_500_after_max_attempts(
    runs: Runs, fake: FakeGemini
) -> None:
    fake.set_script([ApiError(500)], repeat_last=True)
    started = time.monotonic()
    outcome = await runs.run(runs.context("say hi"))
    elapsed = time.monotonic() - started

    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 244  # 500 & 0xFF
    assert outcome.api_error_status == 500
    assert "Internal error encountered. (fake)" in outcome.error_msg
    assert len(fake.requests) == 2  # general.maxAttempts
    assert elapsed < 30, f"took {elapsed:.1f}s"
    assert "quota" not in outcome.details


async def test_daily_quota_is_terminal_and_flagged(runs: Runs, fake: FakeGemini) -> None:
    fake.set_script(
        [
            ApiError(
                429,
                QUOTA_MESSAGE,
                "RESOURCE_EXHAUSTED",
                retry_delay=1,
                quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            )
        ],
        repeat_last=True,
    )
    outcome = await runs.run(runs.context("say hi"))

    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 173  # 429 & 0xFF
    assert outcome.api_error_status == 429
    assert "exhausted your daily quota" in outcome.error_msg
    assert outcome.details["quota"] is True
    assert len(fake.requests) == 1  # no retry


async def test_rate_limited_always_fails_with_429(runs: Runs, fake: FakeGemini) -> None:
    fake.set_script(
        [ApiError(429, QUOTA_MESSAGE, "RESOURCE_EXHAUSTED", retry_delay=1)], repeat_last=True
    )
    # one attempt: a retry would only add the CLI's 5 s minimum backoff
    outcome = await runs.run(runs.context("say hi", max_attempts=1))

    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 173
    assert outcome.api_error_status == 429  # the message has no code: from the exit code
    assert QUOTA_MESSAGE in outcome.error_msg
    assert "quota" not in outcome.details  # retryable, not the daily quota
    assert len(fake.requests) == 1


async def test_timeout_kills_the_cli_and_its_detached_shell_command(
    runs: Runs, fake: FakeGemini, tmp_path: Path
) -> None:
    command, pidfile = hang_command(tmp_path)
    fake.set_script([FunctionCall("run_shell_command", {"command": command})])
    ctx = runs.context("hang", timeout=6)
    job = asyncio.create_task(runs.run(ctx))
    await wait_for(pidfile.exists, 30)
    child = int(pidfile.read_text(encoding="utf-8"))
    assert pid_alive(child)
    # the CLI runs shell commands in their own process group, outside the agent's
    assert os.getpgid(child) != runs.pids[0]
    assert f"{MARK_VARIABLE}={ctx.execution_id}".encode() in Path(
        f"/proc/{child}/environ"
    ).read_bytes().split(b"\0")
    outcome = await job

    assert outcome.status == TaskState.TIMED_OUT
    assert "timed out after 6s" in outcome.error_msg
    assert isinstance(outcome.details["leftover_processes"], int)
    assert outcome.details["leftover_processes"] >= 1
    await wait_for(lambda: not pid_alive(child), 5)
    assert not pid_alive(runs.pids[0])


async def test_stop_cancels_a_run_waiting_for_the_model(runs: Runs, fake: FakeGemini) -> None:
    fake.set_script([Hang(60)])
    ctx = runs.context("wait for me")
    job = asyncio.create_task(runs.run(ctx))
    await wait_for(lambda: bool(fake.requests), 30)
    started = time.monotonic()
    ctx.stop.set()
    outcome = await job

    assert outcome.status == TaskState.CANCELLED
    assert outcome.error_msg == "stopped before it finished"
    assert time.monotonic() - started < 10
    assert not pid_alive(runs.pids[0])


async def test_a_prompt_starting_with_a_dash_reaches_the_model_intact(
    runs: Runs, fake: FakeGemini
) -> None:
    prompt = "--version -p=x --yolo\n-still the prompt"
    fake.set_script([Text("## Summary\nok")])
    ctx = runs.context(prompt)
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [request] = fake.requests
    assert request.texts("user")[-1] == prompt
    assert stdout_events(ctx)[1] == {**stdout_events(ctx)[1], "role": "user", "content": prompt}


async def test_context_files_outside_the_sandbox_are_readable(
    runs: Runs, fake: FakeGemini, tmp_path: Path
) -> None:
    notes = tmp_path / "shared-docs" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("context note 4711\n", encoding="utf-8")
    fake.set_script(
        [FunctionCall("read_file", {"file_path": str(notes)}), Text("## Summary\nread it")]
    )
    outcome = await runs.run(runs.context("Read the notes", context_files=[str(notes)]))

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert fake.requests[0].texts("user")[-1].endswith(f"- {notes}")
    [response] = fake.requests[1].function_responses()
    assert "context note 4711" in json.dumps(response["response"])


# -- the pool end to end -------------------------------------------------------------------


async def test_pool_runs_a_gemini_task_and_delivers_a_branch(
    settings: Settings,
    store: Store,
    gemini_bin: str,
    fake: FakeGemini,
    agent_home: Path,
    make_repo: MakeRepo,
) -> None:
    project = make_repo("pool-project")
    user_head = git(project, "rev-parse", "HEAD")
    fake.set_script(
        [
            FunctionCall("run_shell_command", {"command": "echo 'from gemini' > hello.txt"}),
            Text("Done.\n\n## Summary\nCreated hello.txt from Gemini."),
        ]
    )
    pool_settings = settings.model_copy(
        update={"gemini_binary_path": gemini_bin, "kill_grace_seconds": 2}
    )
    env = gemini_env(fake.url, agent_home)
    pool = Pool(
        pool_settings,
        store,
        {"gemini": GeminiRunner(gemini_bin, PlainLauncher())},
        **pool_parts(pool_settings, store),
        base_env=env,
        poll_interval=0.2,
    )
    service = Service(pool_settings, store, on_submit=pool.wake)
    agent = AgentConfig(
        type="gemini", model=MODEL, instructions="Create hello.txt", project_dir=str(project)
    )
    await pool.start()
    try:
        [task] = service.submit([Task(name="gemini task", agent=agent)])
        await wait_for(lambda: store.get_task(task.id).state in SETTLED, 90)
    finally:
        await pool.shutdown()

    done = store.get_task(task.id)
    [execution] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert execution.agent == "gemini"
    assert execution.exit_code == 0
    assert done.summary == "Created hello.txt from Gemini."
    assert execution.tokens_in > 0
    assert execution.tokens_out > 0
    assert execution.session_id
    assert len(execution.commits) == 1
    branch = kept_branch(project, task.id)
    assert git(project, "rev-parse", branch) == execution.commits[0].hash
    assert git(project, "show", f"{branch}:hello.txt") == "from gemini"
    assert git(project, "rev-parse", "HEAD") == user_head
    assert not (project / "hello.txt").exists()
    # the agent ran in the sandbox, with the session id the pool chose
    workspace = f"- **Workspace Directories:**\n  - {execution.sandbox_dir}\n"
    assert workspace in fake.requests[0].texts("user")[0]
    lines = Path(execution.stdout_path).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["session_id"] == execution.session_id
    assert json.loads(lines[-1])["status"] == "success"


async def test_live_cost_estimate_over_the_budget_stops_the_run(
    runs: Runs, fake: FakeGemini, tmp_path: Path
) -> None:
    from claudomator.config import DEFAULT_PRICES, estimate_cost

    command, pidfile = hang_command(tmp_path)
    # the tool prints 200,000 characters: the next model turn is sent ~50,000 tokens
    flood = f"python3 -c 'print(\"x\" * 200000)'; {command}"
    fake.set_script(
        [
            FunctionCall("run_shell_command", {"command": "python3 -c 'print(\"x\" * 200000)'"}),
            FunctionCall("run_shell_command", {"command": flood}),
        ]
    )
    ctx = runs.context("spend", timeout=60, max_budget_usd=0.01)
    ctx = dataclasses.replace(
        ctx,
        estimate_cost=lambda model, tin, tout: estimate_cost(DEFAULT_PRICES, model, tin, tout),
    )
    outcome = await runs.run(ctx)

    assert outcome.status == TaskState.BUDGET_EXCEEDED, outcome.error_msg
    assert "passed the budget of $0.01" in outcome.error_msg
    assert not pid_alive(runs.pids[0])
    if pidfile.exists():  # the hanging command may have started before the stop
        await wait_for(lambda: not pid_alive(int(pidfile.read_text())), 5)


async def test_without_a_budget_the_estimate_never_stops_a_run(
    runs: Runs, fake: FakeGemini
) -> None:
    fake.set_script([Text("## Summary\nfine")])
    ctx = dataclasses.replace(runs.context("cheap"), estimate_cost=lambda *_: 1000.0)
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.COMPLETED
