"""The task page says the task's own isolation and how each execution was confined, with a
note on one that ran unconfined because ``auto`` found no bubblewrap (issue 13), in real
Chromium against a real ``claudomator serve``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_harness import Browser, chromium_browser, serving, shot

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Execution, Task, TaskIsolation, TaskState, utcnow
from claudomator.store import open_store
from conftest import MakeRepo

FELL_BACK = "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH)"
CONFINED = "bubblewrap, network model-only"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_browser(tmp_path / "chromium") as wrapped:
        yield wrapped


def _ran(task: Task, logs: Path, confinement: str) -> Execution:
    execution = Execution(task_id=task.id, agent="claude", status=TaskState.COMPLETED)
    folder = logs / execution.id
    folder.mkdir(parents=True)
    (folder / "stdout.log").write_text("", encoding="utf-8")
    return execution.model_copy(
        update={
            "stdout_path": str(folder / "stdout.log"),
            "stderr_path": str(folder / "stderr.log"),
            "end_time": utcnow(),
            "confinement": confinement,
        }
    )


def test_the_task_page_shows_each_execution_s_confinement(browser: Browser) -> None:
    settings = load_settings()
    store = open_store(settings.db_path)
    try:
        isolation = TaskIsolation(network="model-only")
        task = Task(name="confined", agent=AgentConfig(instructions="x"), isolation=isolation)
        [task] = store.add_tasks([task])
        store.transition(task.id, TaskState.RUNNING, "claimed")
        store.transition(task.id, TaskState.COMPLETED, "done")
        store.add_execution(_ran(task, settings.logs_dir, FELL_BACK))
        store.add_execution(_ran(task, settings.logs_dir, CONFINED))
    finally:
        store.close()

    with serving(dict(os.environ)) as url:
        page = browser.page()
        page.goto(f"{url}/tasks/{task.id}")
        note = page.locator(".confinement-note")
        note.wait_for()
        assert note.count() == 1  # only the one that ran unconfined
        assert note.inner_text() == f"Confinement of #1: {FELL_BACK}"
        cells = page.locator("td.confinement")
        assert [cells.nth(i).inner_text() for i in range(cells.count())] == [FELL_BACK, CONFINED]
        facts = page.locator("dl.facts").inner_text()
        assert "network model-only" in facts  # the task's own isolation
        assert CONFINED in facts  # the latest execution's
        shot(page, "confinement")


def test_the_projects_page_sets_and_keeps_a_project_s_confinement(
    browser: Browser, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """With api_token (an open API may not widen a project's confinement: an agent could use
    it), the page sets, keeps and checks a project's confinement."""
    repo = make_repo("webapp")
    config = tmp_path / "config.toml"
    config.write_text('api_token = "tok"\n', encoding="utf-8")
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config)}
    auth = {"Authorization": "Bearer tok"}
    with (
        serving(env) as url,
        httpx.Client(base_url=url, timeout=30, headers=auth) as api,
    ):
        page = browser.page()
        page.goto(f"{url}/")
        page.evaluate("sessionStorage.setItem('claudomator.token', 'tok')")
        page.goto(f"{url}/projects")
        page.get_by_label("Name").fill("webapp")
        page.get_by_label("Directory").fill(str(repo))
        page.get_by_label("Launcher").select_option("bubblewrap")
        page.get_by_label("Network").select_option("model-only")
        page.get_by_label("Read-only paths").fill("/srv/cache/npm /opt/tools")
        page.get_by_label("Allowed endpoints").fill("https://registry.npmjs.org")
        page.get_by_role("button", name="Add project").click()
        card = page.locator("[data-project=webapp] .confinement")
        card.wait_for()
        assert card.inner_text() == (
            "launcher bubblewrap; network model-only; read-only /srv/cache/npm, /opt/tools; "
            "endpoints https://registry.npmjs.org"
        )
        stored = api.get("/api/projects/webapp").json()
        assert stored["read_only_paths"] == ["/srv/cache/npm", "/opt/tools"]
        # editing another field keeps the confinement (the form is filled with it)
        page.get_by_role("button", name="Edit webapp").click()
        page.get_by_label("Build command").fill("make check")
        page.get_by_role("button", name="Save project").click()
        page.get_by_text("Saved webapp.").wait_for()
        edited = api.get("/api/projects/webapp").json()
        assert edited["build_command"] == ["make", "check"]
        assert (edited["launcher"], edited["network"]) == ("bubblewrap", "model-only")
        assert edited["read_only_paths"] == ["/srv/cache/npm", "/opt/tools"]
        # a bad value is refused, naming the field
        page.get_by_role("button", name="Edit webapp").click()
        page.get_by_label("Read-only paths").fill("relative/cache")
        page.get_by_role("button", name="Save project").click()
        page.get_by_text("is not an absolute path").wait_for()
        shot(page, "project-confinement")
    browser.problems[:] = [p for p in browser.problems if "422 (Unprocessable" not in p]


def test_the_task_form_sets_the_isolation_and_marks_a_loosening_at_its_field(
    browser: Browser, make_repo: MakeRepo
) -> None:
    repo = make_repo("webapp")
    with serving(dict(os.environ)) as url, httpx.Client(base_url=url, timeout=30) as api:
        project = {"name": "webapp", "dir": str(repo), "launcher": "bubblewrap"}
        assert api.post("/api/projects", json=project).is_success
        body = {"name": "draft", "agent": {"instructions": "x", "project_dir": str(repo)}}
        [task] = api.post("/api/tasks?submit=false", json=body).json()["tasks"]
        page = browser.page()
        page.goto(f"{url}/tasks/{task['id']}/edit")
        page.locator("summary", has_text="More options").click()
        page.get_by_label("Launcher").select_option("plain")
        page.get_by_role("button", name="Save changes").click()
        problem = page.locator('[data-field="isolation.launcher"] .problem')
        problem.wait_for()
        assert 'is looser than project "webapp" launcher = "bubblewrap"' in problem.inner_text()
        assert api.get(f"/api/tasks/{task['id']}").json()["task"]["isolation"]["launcher"] == ""
        page.get_by_label("Launcher").select_option("")
        page.get_by_label("Network").select_option("model-only")
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(f"{url}/tasks/{task['id']}")
        saved = api.get(f"/api/tasks/{task['id']}").json()["task"]
        assert saved["isolation"] == {"launcher": "", "network": "model-only"}
        page.locator("dl.facts", has_text="network model-only").wait_for()
        # and the edit form shows it again, "More options" open
        page.goto(f"{url}/tasks/{task['id']}/edit")
        assert page.get_by_label("Network").input_value() == "model-only"
    browser.problems[:] = [p for p in browser.problems if "422 (Unprocessable" not in p]
