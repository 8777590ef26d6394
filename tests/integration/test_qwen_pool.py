# ruff: noqa: F811  (the fixtures of qwen_harness are imported, then used by name)
"""Qwen Code through the pool end to end: the real CLI against the fake Chat Completions server.

Real SQLite, real git, real processes; only the model is fake. Qwen is registered the way any
agent is (``registry.register(qwen_spec())``) and configured as an operator would, in
``[agents.qwen]``. The launcher is the default (``auto``: bubblewrap where it can run, as here)
unless a test pins one.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from agent_harness import PoolHarness, hanging_command, make_task, marked_pid, pid_alive, wait_for
from qwen_harness import (  # noqa: F401  (pytest fixtures)
    MODEL,
    create_file,
    fake,
    qwen_bin,
    qwen_env,
    qwen_table,
)

from claudomator.config import ModelPrice, Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import Execution, Project, Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.openai_tools import ApiError, FakeChatTools, Reply, ToolCall

pytestmark = pytest.mark.cli

FULL = os.environ.get("CLAUDOMATOR_ROBUST_SCALE", "") == "full"


@pytest.fixture
def cfg(settings: Settings, qwen_bin: str, fake: FakeChatTools) -> Settings:
    price = ModelPrice(input_per_million=1.0, output_per_million=2.0)
    return settings.model_copy(
        update={
            "agents": {"qwen": qwen_table(qwen_bin, fake)},
            "kill_grace_seconds": 2,
            "rate_limit_backoff_seconds": 1,
            "prices": {**settings.prices, MODEL: price},
        }
    )


class QwenPool(PoolHarness):
    """The pool harness with Qwen's environment (the key in its variable, HOME)."""

    def __init__(self, settings: Settings, store: Store, home: Path) -> None:
        super().__init__(settings, store, qwen_env(home))

    async def settle(self, tasks: Sequence[Task], timeout: float = 120.0) -> list[Task]:
        return await super().settle(tasks, timeout)


def qwen_task(project: Path, instructions: str = "Create hello.txt", **kwargs: object) -> Task:
    return make_task(project, instructions, agent_type="qwen", **kwargs)


def only_execution(store: Store, task_id: str) -> Execution:
    [execution] = store.executions_of(task_id)
    return execution


def shell(command: str) -> ToolCall:
    """A shell command in the CLI's cwd (write_file wants absolute paths: the sandbox's is not
    known when the script is written)."""
    return ToolCall("run_shell_command", {"command": command, "description": "edit"})


def ask(question: str, options: Sequence[str] = ()) -> ToolCall:
    """The model asks a question through the protocol's question file."""
    payload = json.dumps({"text": question, "options": list(options)})
    command = f"echo '{payload}' > \"$CLAUDOMATOR_QUESTION_FILE\""
    return ToolCall("run_shell_command", {"command": command, "description": "ask"})


@pytest.mark.parametrize("launcher", ["plain", "bubblewrap"])
async def test_an_edit_is_delivered_as_a_commit_with_tokens_and_estimated_cost(
    launcher: str,
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    fake.set_script([create_file(), Reply("Done.\n\n## Summary\nCreated hello.txt.")])
    pinned = cfg.model_copy(update={"isolation": IsolationSettings(launcher=launcher)})
    async with QwenPool(pinned, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project))
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert execution.agent == "qwen"
    assert done.summary == "Created hello.txt."
    assert len(execution.commits) == 1
    branch = kept_branch(project, task.id)
    assert git(project, "rev-parse", branch) == execution.commits[0].hash
    assert git(project, "show", f"{branch}:hello.txt") == "hello from qwen"
    assert git(project, "rev-parse", "HEAD") == user_head
    assert not (project / "hello.txt").exists()
    # tokens as reported; no cost reported, so estimated from the price table
    assert (execution.tokens_in, execution.tokens_out) == (200, 40)
    assert execution.cost_estimated is True
    assert execution.cost_usd == pytest.approx((200 * 1.0 + 40 * 2.0) / 1e6)
    # the session the pool chose, kept in the task's private home with the runner's settings
    lines = Path(execution.stdout_path).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["session_id"] == execution.session_id
    qwen_home = pinned.homes_dir / task.id / ".qwen"
    assert json.loads((qwen_home / "settings.json").read_text("utf-8"))["memory"] == {
        "enableManagedAutoMemory": False,
        "enableManagedAutoDream": False,
    }
    assert list(qwen_home.glob(f"projects/*/chats/{execution.session_id}.jsonl"))
    assert not (tmp_path / "user-home" / ".qwen").exists()
    # the agent worked in the sandbox, with the provider of [agents.qwen]
    assert fake.requests[0].headers["authorization"] == "Bearer fake-key"
    assert execution.sandbox_dir in json.dumps(fake.requests[0].body["messages"])


# A 500 takes the CLI's 7 attempts with its own backoff, about 80 s (its outer retries cannot
# be configured): make test-all runs it; make test the same path with a 503 whose retry-after
# (which Qwen honours for 503) is 1 s, in about 7 s.
SERVER_ERRORS = [pytest.param(503, "Service unavailable (fake)", 1.0, id="503")]
if FULL:
    SERVER_ERRORS.append(
        pytest.param(500, "Internal server error (fake)", None, id="500", marks=pytest.mark.heavy)
    )


@pytest.mark.parametrize(("status", "message", "retry_after"), SERVER_ERRORS)
async def test_server_error_forever_fails_the_task_with_the_api_message(
    status: int,
    message: str,
    retry_after: float | None,
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    failing = ApiError(status, message, retry_after=retry_after)
    fake.set_script([failing], repeat_last=True)
    async with QwenPool(cfg, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project))
        [done] = await h.settle([task], timeout=200)

    execution = only_execution(store, task.id)
    assert done.state == TaskState.FAILED
    assert execution.exit_code == 1
    assert f"[API Error: {status} {message}]" in execution.error_msg
    assert f"[API Error: {status}" in store.events(task.id)[-1].reason
    assert len(fake.requests) == 7
    assert store.agent_status("qwen").rate_limit_strikes == 0  # a failure, not a limit


async def test_rate_limit_requeues_then_completes_after_the_window(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    limited = ApiError(429, "Too many requests (fake)", retry_after=1)
    # the CLI's own 7 attempts are used up: the run fails with 429
    fake.set_script([*[limited] * 7, create_file(), Reply("## Summary\nok")])
    async with QwenPool(cfg, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project))
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.status for r in runs] == [TaskState.QUEUED, TaskState.COMPLETED]
    assert "[API Error: 429 Too many requests (fake)]" in runs[0].error_msg
    states = [e.to_state for e in store.events(task.id)]
    assert states[-4:] == [
        TaskState.RUNNING,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]
    assert store.events(task.id)[-3].reason.startswith("rate_limit on qwen; re-queued until")
    assert runs[1].start_time >= runs[0].end_time  # type: ignore[operator]
    health = store.agent_status("qwen")
    assert health.rate_limit_strikes == 0
    assert git(project, "show", f"{kept_branch(project, task.id)}:hello.txt") == "hello from qwen"


async def test_question_blocks_then_the_answer_resumes_the_same_session(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ask("Which colour should the button be?", ["red", "blue"]),
            Reply("I asked a human."),
            shell("echo blue > colour.txt"),
            Reply("## Summary\nWrote colour.txt with the chosen colour."),
        ]
    )
    async with QwenPool(cfg, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project, "Make the button a nice colour"))
        [blocked] = await h.settle([task])
        assert blocked.state == TaskState.BLOCKED, store.executions_of(task.id)[0].error_msg
        assert json.loads(blocked.question) == {
            "text": "Which colour should the button be?",
            "options": ["red", "blue"],
        }
        first_requests = len(fake.requests)
        h.service.answer(task.id, "blue")
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert done.summary == "Wrote colour.txt with the chosen colour."
    assert [r.status for r in runs] == [TaskState.BLOCKED, TaskState.COMPLETED]
    assert {r.session_id for r in runs} == {runs[0].session_id}
    assert {r.sandbox_dir for r in runs} == {runs[0].sandbox_dir}
    # the resumed run sent the earlier conversation, then the answer
    resumed = fake.requests[first_requests]
    conversation = json.dumps(resumed.messages)
    assert "Make the button a nice colour" in conversation
    assert "Which colour should the button be?" in conversation
    assert "I asked a human." in resumed.texts("assistant")
    assert "Answer: blue" in resumed.texts("user")[-1]
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "blue"


async def test_review_reject_reworks_in_the_same_session(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    reviewed = cfg.model_copy(
        update={"projects": (Project(name="app", dir=str(project), review=True),)}
    )
    fake.set_script(
        [
            shell("echo v1 > a.txt"),
            Reply("## Summary\nfirst try"),
            shell("echo v2 > a.txt"),
            Reply("## Summary\nsecond try"),
        ]
    )
    async with QwenPool(reviewed, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project, "Write a.txt"))
        [ready] = await h.settle([task])
        assert ready.state == TaskState.READY, store.executions_of(task.id)[0].error_msg
        branch = kept_branch(project, task.id)
        assert git(project, "show", f"{branch}:a.txt") == "v1"
        before = len(fake.requests)
        h.service.reject(task.id, "Please write v2 instead.")
        [again] = await h.settle([task])
        assert again.state == TaskState.READY
        assert again.summary == "second try"
        assert git(project, "show", f"{branch}:a.txt") == "v2"
        h.service.accept(task.id)

    runs = store.executions_of(task.id)
    assert [r.status for r in runs] == [TaskState.COMPLETED, TaskState.COMPLETED]
    assert {r.session_id for r in runs} == {runs[0].session_id}
    rework = fake.requests[before]
    assert "Please write v2 instead." in rework.texts("user")[-1]
    assert "## Summary\nfirst try" in rework.texts("assistant")  # the same conversation


async def test_a_confined_hanging_agent_is_killed_with_its_tree_at_the_timeout(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script([ToolCall("run_shell_command", {"command": hanging_command(marker)})])
    confined = cfg.model_copy(update={"isolation": IsolationSettings(launcher="bubblewrap")})
    async with QwenPool(confined, store, tmp_path / "user-home") as h:
        [task] = h.submit(qwen_task(project, timeout=8))
        child = await asyncio.to_thread(marked_pid, marker)
        assert pid_alive(child)
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.TIMED_OUT
    assert "timed out after 8s" in execution.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert execution.pid is not None
    assert not pid_alive(execution.pid)
