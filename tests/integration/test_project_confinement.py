# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""A project or a task confines its agent more than the orchestrator does (issue 13): under a
``plain`` orchestrator, the real Claude CLI of a project with ``launcher = "bubblewrap"`` (or of
a task with ``isolation.launcher = "bubblewrap"``) really runs under bwrap: it cannot read a key
in the user's real ``~/.ssh``, and neither can the build check that runs the Makefile it wrote.
The control (no override) reads both. Where bubblewrap cannot run, an explicit ``bubblewrap``
fails the task saying why and ``auto`` runs it plain with a warning in the log and on the
execution."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    claude_settings,
    fake,
    make_task,
    user_home,
)

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import Project, TaskIsolation, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse

PLAIN = IsolationSettings(launcher="plain")  # the orchestrator's own: unconfined

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
]

SECRET = "ssh-private-key-do-not-leak"


def _secret() -> Path:
    """A private key in the real home of the user running the orchestrator."""
    secret = Path(os.environ["HOME"]) / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(SECRET, encoding="utf-8")
    return secret


def _script(secret: Path) -> list[ToolUse | Text]:
    """The agent reads the key itself and writes a Makefile whose build rule tries too."""
    makefile = (
        f"build:\n\t-cat {secret} > build-report.txt 2>&1 || echo read-failed > build-report.txt\n"
    )
    escaped = makefile.replace("\t", "\\t").replace("\n", "\\n")
    command = (
        f"(cat {secret} || echo read-failed) > agent-report.txt 2>&1; printf '{escaped}' > Makefile"
    )
    return [ToolUse("Bash", {"command": command}), Text("Done.\n\n## Summary\nReported.")]


@pytest.mark.parametrize("who", ["project", "task", "nobody"])
async def test_a_project_or_task_confines_its_agent_under_a_plain_orchestrator(
    who: str,
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    secret = _secret()
    repo = make_repo()
    fake.set_script(_script(secret))
    launcher = "bubblewrap" if who == "project" else ""
    project = Project(name="webapp", dir=str(repo), launcher=launcher)
    settings = claude_settings.model_copy(update={"projects": (project,), "isolation": PLAIN})
    assert settings.isolation.launcher == "plain"
    isolation = TaskIsolation(launcher="bubblewrap" if who == "task" else "")
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(repo, "Report what you can read", isolation=isolation))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(repo, task.id)
    agent_report = git(repo, "show", f"{branch}:agent-report.txt")
    build_report = git(repo, "show", f"{branch}:build-report.txt")
    if who == "nobody":  # the control: the plain orchestrator's agent reads the key
        assert SECRET in agent_report
        assert SECRET in build_report
        assert run.confinement == "plain, network open"
    else:
        assert SECRET not in agent_report
        assert "read-failed" in agent_report
        assert SECRET not in build_report  # the build check ran under the same launcher
        assert "read-failed" in build_report
        assert run.confinement == "bubblewrap, network open"


def _without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator's PATH without bwrap (the agent keeps its own environment)."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    for tool in ("git", "sh", "make"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))


async def test_an_explicit_bubblewrap_that_cannot_run_fails_the_task(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo()
    fake.set_script([ToolUse("Bash", {"command": "touch ran.txt"}), Text("Done.")])
    project = Project(name="webapp", dir=str(repo), launcher="bubblewrap")
    settings = claude_settings.model_copy(update={"projects": (project,), "isolation": PLAIN})
    async with PoolHarness(settings, store, agent_env) as h:
        _without_bwrap(tmp_path, monkeypatch)
        [task] = h.submit(make_task(repo, "Touch a file"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.FAILED
    assert run.error_msg.startswith(
        'project "webapp" launcher = "bubblewrap", but bubblewrap cannot run here: bwrap is not '
        "on PATH"
    )
    assert 'set project "webapp" launcher = "auto"' in run.error_msg
    assert run.confinement == f"refused: {run.error_msg}"
    assert fake.requests == []  # the agent never started


async def test_auto_that_cannot_confine_runs_plain_with_a_warning(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = _secret()
    repo = make_repo()
    fake.set_script(_script(secret))
    project = Project(name="webapp", dir=str(repo), launcher="auto")
    settings = claude_settings.model_copy(update={"projects": (project,), "isolation": PLAIN})
    async with PoolHarness(settings, store, agent_env) as h:
        _without_bwrap(tmp_path, monkeypatch)
        with caplog.at_level(logging.WARNING, logger="claudomator.execution.attempt"):
            [task] = h.submit(make_task(repo, "Report what you can read"))
            [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert SECRET in git(repo, "show", f"{kept_branch(repo, task.id)}:agent-report.txt")
    assert run.confinement.startswith(
        "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH"
    )
    said = [r.getMessage() for r in caplog.records if r.name == "claudomator.execution.attempt"]
    assert any(
        m.startswith(f"task {task.id}: runs unconfined (plain launcher): ")
        and 'project "webapp" launcher = "auto"' in m
        for m in said
    ), said


async def test_the_orchestrator_s_own_auto_fallback_is_on_every_execution(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = make_repo()
    fake.set_script([ToolUse("Bash", {"command": "echo x > work.txt"}), Text("Done.")])
    isolation = claude_settings.isolation.model_copy(update={"launcher": "auto"})
    settings = claude_settings.model_copy(update={"isolation": isolation})
    _without_bwrap(tmp_path, monkeypatch)  # before the orchestrator settles its own launcher
    with caplog.at_level(logging.WARNING, logger="claudomator.execution.attempt"):
        async with PoolHarness(settings, store, agent_env) as h:
            [task] = h.submit(make_task(repo, "Write a file"))
            [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert run.confinement.startswith(
        "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH"
    )
    said = [r.getMessage() for r in caplog.records if r.name == "claudomator.execution.attempt"]
    assert any(
        m.startswith(f"task {task.id}: agents run unconfined (plain launcher)") for m in said
    ), said
