"""The task page says when an execution started without the user's uncommitted changes (issue 11
item 14: the CLI's `run` and `show` said it, the web did not), in real Chromium against a real
``claudomator serve``; the API serves the note, and a note an agent replaced with a link to a
file of its choosing is none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_harness import Browser, chromium_browser, serving, shot

from claudomator.checkout import CheckoutNote, note_file, write_note
from claudomator.config import load_settings
from claudomator.models import AgentConfig, Execution, Task, TaskState, utcnow
from claudomator.store import open_store

HEAD = "1a2b3c4d" + "0" * 32


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_browser(tmp_path / "chromium") as wrapped:
        yield wrapped


def _ran(task: Task, settings_logs: Path) -> Execution:
    execution = Execution(task_id=task.id, agent="claude", status=TaskState.COMPLETED)
    folder = settings_logs / execution.id
    folder.mkdir(parents=True)
    (folder / "stdout.log").write_text("", encoding="utf-8")
    return execution.model_copy(
        update={
            "stdout_path": str(folder / "stdout.log"),
            "stderr_path": str(folder / "stderr.log"),
            "end_time": utcnow(),
        }
    )


def test_the_task_page_shows_the_uncommitted_changes_note(tmp_path: Path, browser: Browser) -> None:
    settings = load_settings()
    store = open_store(settings.db_path)
    try:
        [task] = store.add_tasks([Task(name="dirty", agent=AgentConfig(instructions="x"))])
        store.transition(task.id, TaskState.RUNNING, "claimed")
        store.transition(task.id, TaskState.COMPLETED, "done")
        noted, planted, plain = (_ran(task, settings.logs_dir) for _ in range(3))
        for execution in (noted, planted, plain):
            store.add_execution(execution)
    finally:
        store.close()
    note = CheckoutNote(project_dir="/srv/app", branch="main", head=HEAD, changes=3)
    write_note(Path(noted.stdout_path).parent, note)
    elsewhere = tmp_path / "forged.json"
    elsewhere.write_text(note.model_dump_json(), encoding="utf-8")
    note_file(Path(planted.stdout_path).parent).symlink_to(elsewhere)  # the agent's doing

    env = dict(os.environ)
    with serving(env) as url, httpx.Client(base_url=url, timeout=30) as api:
        detail = api.get(f"/api/tasks/{task.id}").json()
        assert detail["checkout_notes"] == {noted.id: note.line}
        page = browser.page()
        page.goto(f"{url}/tasks/{task.id}")
        shown = page.locator(".checkout-note")
        shown.wait_for()
        assert shown.count() == 1
        assert shown.inner_text() == (
            "Note on #1: the agent started from main@1a2b3c4d; your uncommitted changes in "
            "/srv/app (3 paths) were not included"
        )
        shot(page, "checkout-note")
