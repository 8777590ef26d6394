# ruff: noqa: F811  (the fixtures of opencode_harness are imported, then used by name)
"""The real OpenCode CLI through :class:`OpenCodeRunner`, against the fake Chat Completions
server: what the runner relies on that the pool tests (``test_pool_opencode.py``) do not show.

Real git repositories, real processes, real CLI; only the model is fake (`fakes.openai_tools`).
The CLI comes from ``$CLAUDOMATOR_OPENCODE_BIN``; the tests skip, saying why, when it is unset.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from agent_harness import pid_alive, wait_for
from opencode_harness import (  # noqa: F401  (pytest fixtures)
    MODEL,
    PRICE,
    bash,
    fake,
    opencode_bin,
    opencode_env,
    opencode_table,
)

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.opencode import OpenCodeRunner, OpenCodeSettings
from claudomator.config import Settings
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from conftest import MakeRepo
from fakes.openai_tools import ApiError, FakeChatTools, Hang, Reply, ToolCall

pytestmark = pytest.mark.cli


class Runs:
    """Run contexts of one task in one repo, run with the real CLI through the runner."""

    def __init__(self, binary: str, fake: FakeChatTools, repo: Path, tmp_path: Path) -> None:
        table = opencode_table(binary, fake)
        settings = Settings(
            data_dir=tmp_path / "data", agents={"opencode": table}, prices={MODEL: PRICE}
        )
        self.homes = settings.homes_dir
        self.user_home = tmp_path / "user-home"
        self.runner = OpenCodeRunner(binary, PlainLauncher(), OpenCodeSettings.of(settings))
        self.repo = repo
        self.logs = tmp_path / "logs"
        self.task = Task(name="opencode test", agent=AgentConfig(type="opencode", instructions="-"))
        self.pids: list[int] = []

    def context(
        self, instructions: str, *, session_id: str = "", resume: bool = False
    ) -> RunContext:
        config = AgentConfig(type="opencode", instructions=instructions)
        execution_id = str(uuid.uuid4())
        return RunContext(
            task=self.task.model_copy(update={"agent": config}),  # one task: one private home
            execution_id=execution_id,
            workdir=self.repo,
            log_dir=self.logs / execution_id,
            env=opencode_env(self.user_home),
            session_id=session_id or str(uuid.uuid4()),
            timeout=90.0,
            kill_grace=2,
            stop=asyncio.Event(),
            resume=resume,
            on_started=self.pids.append,
        )

    async def run(self, ctx: RunContext) -> Outcome:
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        return await self.runner.run(ctx)


@pytest.fixture
def runs(opencode_bin: str, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path) -> Runs:
    return Runs(opencode_bin, fake, make_repo("project"), tmp_path)


async def test_the_prompt_follows_the_double_dash_and_opencode_quotes_it(
    runs: Runs, fake: FakeChatTools
) -> None:
    prompt = '--version -p=x\n-still "the" prompt'
    fake.set_script([Reply("## Summary\nok")])
    outcome = await runs.run(runs.context(prompt))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [request] = fake.chat_requests
    # OpenCode wraps a prompt that has a space in double quotes, its own quotes escaped
    assert request.texts("user")[-1] == '"--version -p=x\n-still \\"the\\" prompt"'
    fake.set_script([Reply("## Summary\nok")])
    await runs.run(runs.context("one-word-prompt"))
    assert fake.chat_requests[-1].texts("user")[-1] == "one-word-prompt"
    # a prompt that is one number would reach the CLI as a number: it gets a space
    fake.set_script([Reply("## Summary\nok")])
    outcome = await runs.run(runs.context("42"))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert fake.chat_requests[-1].texts("user")[-1] == '"42 "'


async def test_the_task_name_is_the_sessions_title_even_with_a_leading_dash(
    runs: Runs, fake: FakeChatTools
) -> None:
    fake.set_script([Reply("## Summary\nok")])
    ctx = runs.context("say hi")
    ctx = dataclasses.replace(ctx, task=ctx.task.model_copy(update={"name": "--help -x"}))
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    database = runs.homes / ctx.task.id / ".local/share/opencode/opencode.db"
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute("select id, title from session").fetchall()
    assert rows == [(outcome.session_id, "--help -x")]
    assert len(fake.chat_requests) == 1  # no title side call


async def test_continuing_an_unknown_session_fails_with_opencodes_reason(
    runs: Runs, fake: FakeChatTools
) -> None:
    ctx = runs.context("continue", session_id="ses_doesnotexist1234", resume=True)
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == 1
    assert outcome.error_msg == "Error: Session not found"
    assert ctx.stdout_path.read_text(encoding="utf-8") == ""
    assert fake.requests == []


async def test_cached_prompt_tokens_count_as_input_once(runs: Runs, fake: FakeChatTools) -> None:
    fake.cached_tokens = 40  # of the 100 prompt tokens
    fake.set_script([Reply("## Summary\nok")])
    ctx = runs.context("say hi")
    outcome = await runs.run(ctx)
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [line] = [
        json.loads(x)
        for x in ctx.stdout_path.read_text(encoding="utf-8").splitlines()
        if '"step_finish"' in x
    ]
    assert line["part"]["tokens"]["cache"]["read"] == 40
    assert (outcome.tokens_in, outcome.tokens_out) == (100, 20)


async def test_a_failing_command_is_reported_to_the_model_and_the_run_goes_on(
    runs: Runs, fake: FakeChatTools
) -> None:
    fake.set_script([bash("ls /nonexistent_dir_xyz"), Reply("## Summary\nthat failed")])
    outcome = await runs.run(runs.context("list it"))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.details["tools"] == ["bash"]
    [result] = fake.chat_requests[1].tool_results()
    assert "No such file or directory" in str(result["content"])


async def test_the_write_tool_edits_the_sandbox(runs: Runs, fake: FakeChatTools) -> None:
    target = runs.repo / "notes" / "plan.md"
    fake.set_script(
        [
            ToolCall("write", {"filePath": str(target), "content": "# Plan\n"}),
            Reply("## Summary\nWrote the plan."),
        ]
    )
    outcome = await runs.run(runs.context("Write the plan"))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert target.read_text(encoding="utf-8") == "# Plan\n"
    assert outcome.details["tools"] == ["write"]


async def test_one_429_is_retried_after_its_retry_after_and_the_run_completes(
    runs: Runs, fake: FakeChatTools
) -> None:
    fake.set_script([ApiError(429, "slow down (fake)", retry_after=1), Reply("## Summary\nok")])
    outcome = await runs.run(runs.context("say hi"))
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.api_error_status is None
    assert outcome.details["steps"] == 1
    assert len(fake.chat_requests) == 2


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
