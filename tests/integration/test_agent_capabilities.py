"""The attempt reads a runner's declared capabilities: options the runner cannot apply are
logged by the attempt, for every runner (here the local model, which runs without any CLI)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from agent_harness import PoolHarness, make_task

from claudomator.agents.local import LocalRunner
from claudomator.config import LocalModelSettings, Settings
from claudomator.dispatch import Pool
from claudomator.llm import LLMClient
from claudomator.models import AgentConfig, TaskState
from claudomator.runtime import pool_parts
from claudomator.store import Store
from conftest import MakeRepo
from fakes.openai_server import FakeOpenAI, Reply


@pytest.fixture
def fake_local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


async def test_options_the_runner_cannot_apply_are_logged_by_the_attempt(
    settings: Settings,
    store: Store,
    fake_local: FakeOpenAI,
    make_repo: MakeRepo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    project = make_repo()
    fake_local.set_script([Reply("An answer.\n\n## Summary\nAnswered.")])
    local = LocalModelSettings(endpoint=fake_local.url, model="local-coder")
    async with LLMClient(local) as llm:  # the process's one: closed by its owner
        pool = Pool(
            settings,
            store,
            {"local": LocalRunner(local, llm)},
            **pool_parts(settings, store),
            base_env={},
            poll_interval=0.2,
        )
        h = PoolHarness(settings, store, {})
        h.pool = pool
        h.service.on_submit = pool.wake
        task = make_task(project, "Explain it", agent_type="local")
        agent = AgentConfig.model_validate(
            {**task.agent.model_dump(), "max_budget_usd": 1, "allowed_tools": ["Read"]}
        )
        with caplog.at_level(logging.WARNING, logger="claudomator.execution.attempt"):
            async with h:
                [submitted] = h.submit(task.model_copy(update={"agent": agent}))
                [done] = await h.settle([submitted])
    assert done.state == TaskState.COMPLETED  # ignored, not refused
    said = [r.getMessage() for r in caplog.records if r.name == "claudomator.execution.attempt"]
    assert (
        f"the local agent cannot apply max_budget_usd, allowed_tools; ignored for task {done.id}"
        in said
    )
