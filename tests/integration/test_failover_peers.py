# ruff: noqa: F811  (the fixtures of the harnesses are imported, then used by name)
"""Failover across the new agents: an unpinned task that Codex cannot run because its quota is
used up (an OpenAI ``insufficient_quota``) is re-queued and completed by Qwen Code, with the
real CLIs against their fake model servers; a task pinned to Codex waits instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from agent_harness import SETTLED, make_task, wait_for
from codex_harness import KEY, codex_table, responses  # noqa: F401
from qwen_harness import KEY_VARIABLE, create_file, fake, qwen_bin, qwen_table  # noqa: F401

from claudomator.agents.registry import default_registry
from claudomator.chooser import Choice
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.dispatch import Pool
from claudomator.models import Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.openai_server import ApiError, FakeOpenAI
from fakes.openai_tools import FakeChatTools, Reply

pytestmark = pytest.mark.cli


async def test_codex_out_of_quota_fails_an_unpinned_task_over_to_qwen(
    settings: Settings,
    store: Store,
    codex_bin: str,
    qwen_bin: str,
    responses: FakeOpenAI,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    responses.set_script(
        [ApiError(429, "You exceeded your current quota (fake)", error_type="insufficient_quota")],
        repeat_last=True,
    )
    fake.set_script([create_file(), Reply("Done.\n\n## Summary\nCreated hello.txt on Qwen.")])
    cfg = settings.model_copy(
        update={
            "agents": {
                "codex": codex_table(codex_bin, responses.url, retry=0),
                "qwen": qwen_table(qwen_bin, fake),
            },
            "isolation": IsolationSettings(launcher="plain"),
            "kill_grace_seconds": 2,
        }
    )

    async def prefer_codex(
        task: Task, available: list[str], counts: dict[str, int], blocked: dict[str, str]
    ) -> Choice:
        return Choice("codex" if "codex" in available else "qwen", "", "prefers codex")

    home = tmp_path / "orchestrator-home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "FAKE_KEY": KEY,
        KEY_VARIABLE: "fake-key",
    }
    registry = default_registry()
    launcher = registry.launcher(cfg)
    runners = registry.runners(cfg, launcher)
    service = Service(cfg, store, agents=registry)
    pool = Pool(
        cfg,
        store,
        {name: runners[name] for name in ("codex", "qwen")},
        **pool_parts(cfg, store, launcher),
        base_env=env,
        poll_interval=0.2,
        chooser=prefer_codex,
    )
    service.on_submit = pool.wake
    await pool.start()
    try:
        [unpinned] = service.submit([make_task(project, "Create hello.txt", agent_type="")])
        await wait_for(lambda: store.get_task(unpinned.id).state in SETTLED, 120)
        [pinned] = service.submit([make_task(project, name="pinned", agent_type="codex")])
        await pool._claim_all()
        assert store.get_task(pinned.id).state == TaskState.QUEUED  # waits for its agent
    finally:
        await pool.shutdown()

    done = store.get_task(unpinned.id)
    runs = store.executions_of(unpinned.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.agent for r in runs] == ["codex", "qwen"]
    assert runs[0].status == TaskState.QUEUED  # re-queued, not failed
    assert runs[0].error_msg.startswith("Quota exceeded.")
    assert done.summary == "Created hello.txt on Qwen."
    assert git(project, "show", f"{kept_branch(project, unpinned.id)}:hello.txt") == (
        "hello from qwen"
    )
    assert store.agent_status("codex").unavailable_until is not None  # out for the quota wait
