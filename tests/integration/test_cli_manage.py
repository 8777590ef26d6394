"""The command line's task, project and story management, as a user runs it (real processes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import Store

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAUDOMATOR, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def stored(task_id: str) -> Task:
    store = Store.open(load_settings().db_path)
    try:
        return store.get_task(task_id)
    finally:
        store.close()


def draft() -> Task:
    store = Store.open(load_settings().db_path)
    try:
        [task] = store.add_tasks(
            [Task(name="draft", agent=AgentConfig(instructions="x"))], submit=False
        )
        return task
    finally:
        store.close()


def test_edit_submit_and_delete_a_draft() -> None:
    task = draft()
    edited = cli(
        "edit", task.id[:8], "--name", "renamed", "--timeout", "20m", "-t", "a", "-t", "b",
        "--instructions", "new words", "--priority", "high",
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "agent.instructions" in edited.stdout
    now = stored(task.id)
    assert (now.name, now.timeout, now.tags) == ("renamed", 1200.0, ("a", "b"))
    assert now.agent.instructions == "new words"
    assert now.state == TaskState.PENDING

    bad = cli("edit", task.id, "--timeout", "0")
    assert bad.returncode == 2
    assert "timeout" in bad.stderr
    assert stored(task.id).timeout == 1200.0  # nothing changed
    assert cli("edit", task.id).returncode == 2  # nothing to change

    submitted = cli("submit", task.id)
    assert submitted.returncode == 0, submitted.stderr
    assert stored(task.id).state == TaskState.QUEUED
    again = cli("submit", task.id)
    assert again.returncode == 1
    assert "not a PENDING draft" in again.stderr

    refused = cli("delete", task.id)  # no terminal to confirm on
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    deleted = cli("delete", "--yes", task.id)
    assert deleted.returncode == 0, deleted.stderr
    assert cli("show", task.id).returncode == 2


def test_a_running_task_is_neither_edited_nor_deleted() -> None:
    task = draft()
    store = Store.open(load_settings().db_path)
    try:
        store.transition(task.id, TaskState.QUEUED, "submitted")
        store.transition(task.id, TaskState.RUNNING, "claimed")
    finally:
        store.close()
    edited = cli("edit", task.id, "--name", "x")
    assert edited.returncode == 1
    assert "only PENDING or QUEUED tasks can be edited" in one_line(edited.stderr)
    deleted = cli("delete", "-y", task.id)
    assert deleted.returncode == 1
    assert "cancel it first" in deleted.stderr
    assert stored(task.id).state == TaskState.RUNNING


def test_projects_from_the_command_line(tmp_path: Path) -> None:
    repo = tmp_path / "webapp"
    repo.mkdir()
    assert "No projects" in cli("project", "list").stdout
    added = cli("project", "add", "webapp", str(repo), "--build", "make check", "--review")
    assert added.returncode == 0, added.stderr
    listing = one_line(cli("project", "list").stdout)
    assert "webapp" in listing
    assert "make check" in listing
    assert "yes" in listing
    taken = cli("project", "add", "webapp", str(repo))
    assert taken.returncode == 1
    assert "already exists" in taken.stderr
    assert cli("project", "add", "webapp", str(repo), "--replace").returncode == 0
    bad = cli("project", "add", "../x", str(repo))
    assert bad.returncode == 2
    assert "is not a project name" in one_line(bad.stderr)
    missing = cli("project", "add", "other", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "is not an absolute path to a directory" in one_line(missing.stderr)
    assert cli("project", "remove", "webapp").returncode == 0
    assert cli("project", "remove", "webapp").returncode == 2


def test_stories_from_the_command_line() -> None:
    added = cli("story", "add", "Ship v2", "--description", "all of it")
    assert added.returncode == 0, added.stderr
    story_id = added.stdout.split(": ")[-1].strip()
    store = Store.open(load_settings().db_path)
    try:
        store.add_tasks([Task(name="part", agent=AgentConfig(instructions="x"), story_id=story_id)])
    finally:
        store.close()
    listing = one_line(cli("story", "list").stdout)
    assert "Ship v2" in listing
    assert "0/1 completed" in listing
    shown = cli("story", "show", story_id)
    assert "QUEUED: 1" in shown.stdout
    assert cli("story", "remove", story_id).returncode == 0
    assert cli("story", "show", story_id).returncode == 2


def test_a_refused_action_says_what_the_api_says() -> None:
    """The command line prints the service's refusal (the same words as the API's 409)."""
    from claudomator.errors import InvalidTransition
    from claudomator.service import Service

    task = draft()
    service = Service.open(load_settings())
    try:
        expected: dict[str, str] = {}
        actions: list[tuple[str, Callable[[], object]]] = [
            ("accept", lambda: service.accept(task.id)),
            ("reject", lambda: service.reject(task.id, "more")),
            ("retry", lambda: service.retry(task.id)),
            ("answer", lambda: service.answer(task.id, "yes")),
        ]
        for action, call in actions:
            try:
                call()
            except InvalidTransition as exc:
                expected[action] = str(exc)
    finally:
        service.close()
    assert set(expected) == {"accept", "reject", "retry", "answer"}
    for action, message in expected.items():
        args = (action, task.id[:8]) + (("x",) if action in ("reject", "answer") else ())
        done = cli(*args)
        assert done.returncode == 1, (action, done.stderr)
        assert message in one_line(done.stderr), (action, done.stderr)
    assert "only READY tasks can be accepted" in expected["accept"]
