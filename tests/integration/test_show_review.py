"""Issue 11 item 14: what ``run`` and ``show`` say about a run's start and its leftovers: the
user's uncommitted changes that were not in the sandbox, a removed sandbox, and an acceptance
check without a verdict. Real console script, real git repositories, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Execution, Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAUDOMATOR, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def agent_env(fake: FakeAnthropic, tmp_path: Path, claude_bin: str) -> dict[str, str]:
    env = claude_env(fake.url, tmp_path / "agent-home")
    env["CLAUDOMATOR_DATA_DIR"] = os.environ["CLAUDOMATOR_DATA_DIR"]
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = tmp_path / "config.toml"
    config.write_text(f'claude_binary_path = "{claude_bin}"\n', encoding="utf-8")
    env["CLAUDOMATOR_CONFIG"] = str(config)
    return env


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.open(load_settings().db_path)
    yield opened
    opened.close()


def _task_file(tmp_path: Path, project: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nagent:\n  instructions: Write notes\n  project_dir: {project}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.cli
def test_run_and_show_say_the_uncommitted_changes_were_not_included(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, agent_env: dict[str, str]
) -> None:
    project = make_repo()
    head = git(project, "rev-parse", "HEAD")
    (project / "README.md").write_text("# project\nmy edit, not committed\n", encoding="utf-8")
    (project / "scratch.txt").write_text("untracked\n", encoding="utf-8")
    index = project / ".git" / "index"
    before = index.stat().st_mtime_ns
    fake.set_script(
        [
            ToolUse("Bash", {"command": "cat README.md > seen.txt"}),
            Text("## Summary\nCopied the README."),
        ]
    )
    done = cli("run", str(_task_file(tmp_path, project, "dirty")), env=agent_env)
    assert done.returncode == 0, done.stdout + done.stderr
    line = (
        f"the agent started from main@{head[:8]}; your uncommitted changes in {project} "
        "(2 paths) were not included"
    )
    assert line in " ".join(done.stdout.split()), done.stdout
    [branch] = git(
        project, "branch", "--list", "claudomator/*", "--format=%(refname:short)"
    ).split()
    assert git(project, "show", f"{branch}:seen.txt") == "# project"  # HEAD's README, not mine
    short_id = branch.removeprefix("claudomator/").split("-")[0]  # claudomator/<id8>-<slug>
    shown = cli("show", short_id, env=agent_env)
    assert line in " ".join(shown.stdout.split()), shown.stdout
    # the user's checkout is as they left it, its index not even refreshed
    assert index.stat().st_mtime_ns == before
    assert (project / "README.md").read_text() == "# project\nmy edit, not committed\n"
    assert git(project, "status", "--porcelain", "--untracked-files=normal").count("\n") == 1

    # a clean checkout: nothing to say
    git(project, "checkout", "--", "README.md")
    (project / "scratch.txt").unlink()
    fake.set_script([Text("## Summary\nNothing.")])
    clean = cli("run", "--again", str(_task_file(tmp_path, project, "clean")), env=agent_env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "uncommitted changes" not in clean.stdout


def _finished(store: Store, task: Task, state: TaskState, **fields: Any) -> Task:
    [stored] = store.add_tasks([task])
    store.transition(stored.id, TaskState.RUNNING, "claimed")
    return store.transition(stored.id, state, "done", **fields)


def test_show_marks_a_removed_sandbox(tmp_path: Path, store: Store) -> None:
    task = _finished(store, Task(name="t", agent=AgentConfig(instructions="x")), TaskState.FAILED)
    kept = tmp_path / "kept-sandbox"
    kept.mkdir()
    gone = tmp_path / "gone-sandbox"
    for where in (gone, kept):
        store.add_execution(
            Execution(task_id=task.id, status=TaskState.FAILED, sandbox_dir=str(where))
        )
    shown = cli("show", task.id)
    assert shown.returncode == 0, shown.stderr
    words = " ".join(shown.stdout.split())
    assert f"sandbox {gone} (removed)" in words, shown.stdout
    assert f"sandbox {kept} Execution" in words or words.endswith(f"sandbox {kept}"), words


def test_show_says_the_check_is_pending_then_that_it_has_no_verdict(store: Store) -> None:
    checked = _finished(
        store,
        Task(name="export", agent=AgentConfig(instructions="x"), acceptance_criteria="tested"),
        TaskState.COMPLETED,
    )
    [checker] = store.add_tasks(
        [Task(name="check", agent=AgentConfig(instructions="c"), checker_for_task_id=checked.id)]
    )
    pending = cli("show", checked.id)
    assert f"check: pending (checker task {checker.id} QUEUED)" in pending.stdout, pending.stdout

    store.transition(checker.id, TaskState.RUNNING, "claimed")
    store.transition(checker.id, TaskState.FAILED, "boom")
    report = "the checker ended FAILED: the model is overloaded"
    store.update_task(checked.id, check_verdict="", check_report=report)
    ended = cli("show", checked.id)
    line = f"check: no verdict — checker task {checker.id} FAILED: the model is overloaded"
    assert line in " ".join(ended.stdout.split()), ended.stdout
    as_json = json.loads(cli("show", "--json", checked.id).stdout)
    assert as_json["check"]["state"] == "no verdict"
    assert as_json["check"]["checker_id"] == checker.id

    store.update_task(checked.id, check_verdict="fail", check_report="no test for export()")
    failed = cli("show", checked.id)
    assert "check: fail" in failed.stdout
    assert "no test for export()" in failed.stdout


def test_show_gives_a_superseded_review_round_a_note_not_an_error(store: Store) -> None:
    task = _finished(store, Task(name="r", agent=AgentConfig(instructions="x")), TaskState.READY)
    second = Execution(task_id=task.id, status=TaskState.READY)
    note = f"review asked for changes; continued by execution {second.id}"
    store.add_execution(Execution(task_id=task.id, status=TaskState.COMPLETED, error_msg=note))
    store.add_execution(second)
    words = " ".join(cli("show", task.id).stdout.split())
    assert "status COMPLETED" in words
    assert f"note {note}" in words, words
    assert "error" not in words
