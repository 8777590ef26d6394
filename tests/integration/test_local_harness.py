# ruff: noqa: F811  (the fixtures of qwen_harness are imported, then used by name)
"""A local model as a real coding agent (``[local_model] harness``): the model behind an
OpenAI-compatible endpoint (here the fake Chat Completions server) drives the real Qwen Code
CLI, which edits the sandbox; the work of the ``local`` agent is delivered as a commit, its
tokens recorded and its cost 0. Confined by bubblewrap (the default launcher, auto, here) and
unconfined."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_harness import SETTLED, make_task, wait_for
from opencode_harness import bash, opencode_bin  # noqa: F401
from qwen_harness import MODEL, create_file, fake, qwen_bin, qwen_env  # noqa: F401

from claudomator.agents.local_harness import (
    CHAT,
    LocalOpenCodeRunner,
    LocalQwenRunner,
    resolve_harness,
)
from claudomator.agents.registry import default_registry
from claudomator.config import AgentSettings, LocalModelSettings, Settings
from claudomator.config.sections import IsolationSettings
from claudomator.dispatch import Pool
from claudomator.models import TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.openai_tools import FakeChatTools, Reply

pytestmark = pytest.mark.cli


def test_the_harness_is_the_first_cli_installed_else_chat(tmp_path: Path) -> None:
    local = LocalModelSettings(endpoint="http://127.0.0.1:9/v1", model="m")
    settings = Settings(data_dir=tmp_path, local_model=local)
    assert resolve_harness(settings, {"opencode": None, "qwen": "/usr/bin/qwen"}) == "qwen"
    both = {"opencode": "/usr/bin/opencode", "qwen": "/usr/bin/qwen"}
    assert resolve_harness(settings, both) == "opencode"
    assert resolve_harness(settings, {"opencode": None, "qwen": None}) == CHAT
    chat = local.model_copy(update={"harness": "chat"})
    pinned = settings.model_copy(update={"local_model": chat})
    assert resolve_harness(pinned, {"qwen": "/usr/bin/qwen"}) == CHAT


def test_an_unknown_harness_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'aider' is not a harness; use one of: chat, opencode"):
        LocalModelSettings(harness="aider")


HARNESS_CASES = [
    pytest.param(harness, launcher, id=f"{harness}-{launcher}")
    for harness in ("qwen", "opencode")
    for launcher in ("auto", "plain")
]


@pytest.mark.parametrize(("harness", "launcher"), HARNESS_CASES)
async def test_a_local_model_drives_an_agent_cli_and_its_edit_is_delivered(
    harness: str,
    launcher: str,
    request: pytest.FixtureRequest,
    settings: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    binary = request.getfixturevalue(f"{harness}_bin")  # skips, saying why, without the CLI
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    edit = create_file() if harness == "qwen" else bash("echo 'hello from qwen' > hello.txt")
    fake.set_script([edit, Reply("Done.\n\n## Summary\nCreated hello.txt.")])
    local = LocalModelSettings(endpoint=fake.url, model=MODEL, harness=harness)
    cfg = settings.model_copy(
        update={
            "local_model": local,
            "agents": {harness: AgentSettings(binary_path=binary)},
            "isolation": IsolationSettings(launcher=launcher),
            "kill_grace_seconds": 2,
        }
    )
    registry = default_registry()
    launched = registry.launcher(cfg)
    runners = registry.runners(cfg, launched)
    kind = LocalQwenRunner if harness == "qwen" else LocalOpenCodeRunner
    assert isinstance(runners["local"], kind)
    service = Service(cfg, store, agents=registry)
    pool = Pool(
        cfg,
        store,
        runners,
        **pool_parts(cfg, store, launched),
        base_env=qwen_env(tmp_path / "user-home"),
        poll_interval=0.2,
    )
    service.on_submit = pool.wake
    await pool.start()
    try:
        [task] = service.submit([make_task(project, "Create hello.txt", agent_type="local")])
        await wait_for(lambda: store.get_task(task.id).state in SETTLED, 120)
    finally:
        await pool.shutdown()

    done = store.get_task(task.id)
    [execution] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert execution.agent == "local"
    assert done.summary == "Created hello.txt."
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello from qwen"
    assert git(project, "rev-parse", "HEAD") == user_head
    assert (execution.tokens_in, execution.tokens_out) == (200, 40)
    assert execution.cost_usd == 0.0
    assert execution.cost_estimated is False
    # the model the local table names, asked with the local key placeholder
    assert {r.model for r in fake.chat_requests} == {MODEL}
    assert {r.headers.get("authorization") for r in fake.chat_requests} == {"Bearer local"}
    if launcher == "auto":
        assert execution.confinement.startswith("bubblewrap")
