"""The Runtime is the composition root: it builds the process's one model client and one agent
launcher, and everything else (the local runner, the API's elaborate and CI plans, the chooser's
and elaborate's one-shot CLI calls) uses those; the one-shot calls read the project only."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from claudomator.agents.local import LocalRunner
from claudomator.api import create_app
from claudomator.chooser import AgentChooser, Choice
from claudomator.config import LocalModelSettings, Settings
from claudomator.config.sections import IsolationSettings
from claudomator.elaborate import Elaborator
from claudomator.isolation.base import Access
from claudomator.isolation.policy import confinement_for, origin
from claudomator.llm import LLMClient
from claudomator.models import AgentConfig, Project, Task, TaskState
from claudomator.runtime import Runtime
from conftest import MakeRepo
from fakes.openai_server import FakeOpenAI, JsonReply, Reply

SPEC: dict[str, Any] = {
    "name": "csv-export",
    "description": "Users asked for a CSV export of reports.",
    "agent": {"type": "claude", "instructions": "Add a CSV export to the reports page."},
    "timeout": "20m",
    "priority": "normal",
}


@dataclass
class RecordingLauncher:
    """Notes every wrap() and starts the command unchanged."""

    name: str = "recording"
    calls: list[tuple[list[str], Path, dict[str, str], Access]] = field(default_factory=list)

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        self.calls.append((list(argv), cwd, dict(env), paths))
        return list(argv), dict(env)


def answering_cli(path: Path, answer: Mapping[str, object]) -> str:
    """An executable that prints ``{"response": <answer as JSON text>}`` the way the Gemini CLI's
    ``-o json`` does (and notes the directory it ran in)."""
    body = json.dumps({"response": json.dumps(answer)})
    path.write_text(f"#!/bin/sh\npwd > '{path}.cwd'\ncat <<'EOF'\n{body}\nEOF\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


async def test_a_runtime_builds_one_model_client_that_the_api_and_the_local_runner_use(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[LLMClient] = []
    real_init = LLMClient.__init__

    def counted(self: LLMClient, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(LLMClient, "__init__", counted)
    settings = Settings(
        data_dir=tmp_path / "data",
        local_model=LocalModelSettings(endpoint=fake_openai.url, model="local-coder"),
        claude_binary_path=str(tmp_path / "no-claude"),
        gemini_binary_path=str(tmp_path / "no-gemini"),
    )
    fake_openai.set_script([Reply("An answer.\n\n## Summary\nAnswered."), JsonReply(SPEC)])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    async with Runtime(settings, base_env=env) as runtime:
        local = runtime.pool.runners["local"]
        assert isinstance(local, LocalRunner)
        assert local.llm is runtime.llm  # given by the registry, not built by the runner
        agent = AgentConfig(type="local", instructions="Explain the plan.")
        [task] = runtime.service.submit([Task(name="explain", agent=agent)])
        for _ in range(600):
            if runtime.service.store.get_task(task.id).state == TaskState.COMPLETED:
                break
            await asyncio.sleep(0.05)
        app = create_app(runtime.service, settings, llm=runtime.llm, launcher=runtime.launcher)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as api:
            drafted = await api.post("/api/tasks/elaborate", json={"prompt": "add a CSV export"})
    assert runtime.service.store.get_task(task.id).state == TaskState.COMPLETED
    assert drafted.status_code == 200, drafted.text
    assert drafted.json()["backend"] == "local"
    assert [r.stream for r in fake_openai.chat_requests] == [True, False]  # the run, then the spec
    assert built == [runtime.llm]  # one client for the whole process
    assert runtime.llm._sdk is None  # and closed by its owner on the way out
    runtime.service.close()


def test_a_retry_view_shares_the_owners_connections_and_closes_nothing() -> None:
    owner = LLMClient(LocalModelSettings(endpoint="http://127.0.0.1:9/v1", model="m"))
    view = owner.with_retries(max_retries=0, extra_attempts=0)
    assert (view.max_retries, view.extra_attempts) == (0, 0)
    assert (owner.max_retries, owner.extra_attempts) == (2, 3)
    assert view.owner is owner
    sdk = view._client()
    assert sdk.max_retries == 0
    assert sdk._client is owner._client()._client  # the same HTTP connection pool
    asyncio.run(view.aclose())
    assert owner._sdk is not None  # a view closes nothing
    asyncio.run(owner.aclose())
    assert owner._sdk is None


async def test_the_choosers_one_shot_call_goes_through_the_launcher(tmp_path: Path) -> None:
    recorder = RecordingLauncher()
    cli = answering_cli(tmp_path / "gemini", {"agent": "claude", "reason": "multi-file"})
    chooser = AgentChooser(
        None, gemini_binary=cli, env={"PATH": "/usr/bin:/bin"}, launcher=recorder
    )
    choice = await chooser(Task(name="t", agent=AgentConfig(instructions="i")), ["claude"], {}, {})
    assert choice == Choice("claude", "", "Gemini CLI: multi-file")
    [(argv, cwd, _, access)] = recorder.calls
    assert argv[0] == cli
    # no project: an empty temporary directory of its own, the one place it may write
    assert access.workdir == cwd == access.log_dir
    assert Path((tmp_path / "gemini.cwd").read_text().strip()) == cwd
    assert not cwd.exists()  # removed after the call


async def test_elaborates_one_shot_call_reads_the_project_through_the_launcher(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo("webapp")
    recorder = RecordingLauncher()
    home = tmp_path / "home"
    settings = Settings(
        data_dir=tmp_path / "data",
        projects=(Project(name="webapp", dir=str(project)),),
        claude_binary_path=str(tmp_path / "no-claude"),
        gemini_binary_path=answering_cli(tmp_path / "gemini", SPEC),
    )
    elaborator = Elaborator(
        settings, None, env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, launcher=recorder
    )
    done = await elaborator.elaborate("add a CSV export", "webapp")
    assert done.backend == "gemini"
    [(_, cwd, _, access)] = recorder.calls  # claude's binary is missing: never started
    assert cwd == access.workdir == project.resolve()
    assert not access.workdir_writable
    assert project.resolve() in access.readable
    assert project.resolve() not in access.writable
    assert access.log_dir != project.resolve()  # its own temporary directory
    assert access.writable == (access.log_dir, home / ".gemini")  # and the CLI's own paths


async def test_the_one_shot_calls_get_the_runs_network_policy(tmp_path: Path) -> None:
    """Under ``network = "model-only"`` the chooser's and elaborate's one-shot calls are held
    to it too: their Access names the policy, the CLI's model endpoint and the API."""
    isolation = IsolationSettings(launcher="plain", network="model-only")
    settings = Settings(
        data_dir=tmp_path / "data",
        isolation=isolation,
        claude_binary_path=str(tmp_path / "no-claude"),
        gemini_binary_path=answering_cli(tmp_path / "gemini", SPEC),
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    recorder = RecordingLauncher()
    done = await Elaborator(settings, None, env=env, launcher=recorder).elaborate("add CSV", "")
    assert done.backend == "gemini"
    [(_, _, _, access)] = recorder.calls
    assert access.network == "model-only"
    assert "https://generativelanguage.googleapis.com" in access.endpoints
    assert origin(settings.api_url) in access.endpoints
    confined = IsolationSettings(launcher="bubblewrap", network="model-only")
    async with Runtime(settings.model_copy(update={"isolation": confined})) as rt:
        assert isinstance(rt.pool.chooser, AgentChooser)
        assert rt.pool.chooser.confinement == confinement_for(rt.settings)
        assert rt.pool.chooser.confinement.network == "model-only"
        rt.service.close()


def test_a_read_only_workdir_is_no_writable_path(tmp_path: Path) -> None:
    access = Access(workdir=tmp_path / "p", log_dir=tmp_path / "t", workdir_writable=False)
    assert access.writable == (tmp_path / "t",)
    assert access.readable == (tmp_path / "p",)
    run = Access(workdir=tmp_path / "s", log_dir=tmp_path / "l", read_only=(tmp_path / "c",))
    assert run.writable == (tmp_path / "s", tmp_path / "l")
    assert run.readable == (tmp_path / "c",)
