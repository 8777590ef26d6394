"""POST /api/tasks/{id}/again: an ended task's definition queued as a new task (what
``claudomator run --again`` does with its file), over real HTTP and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_api_tasks import Served, task_body

from claudomator.config import Settings
from claudomator.models import Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo


@pytest.fixture
def api(settings: Settings, store: Store) -> Iterator[httpx.Client]:
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        yield client


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo()


def ended(api: httpx.Client, store: Store, body: dict[str, object], state: TaskState) -> str:
    [task] = api.post("/api/tasks", json=body).json()["tasks"]
    store.transition(task["id"], TaskState.RUNNING, "claimed")
    store.transition(task["id"], state, "ended", summary="did it")
    return str(task["id"])


def test_again_queues_a_copy_and_keeps_the_ended_task(
    api: httpx.Client, project: Path, store: Store
) -> None:
    body = task_body(project, "repeat me", tags=["a", "b"], priority="high", timeout="10m")
    body["agent"] = {**body["agent"], "model": "sonnet"}  # type: ignore[dict-item]
    done = ended(api, store, body, TaskState.COMPLETED)

    again = api.post(f"/api/tasks/{done[:8]}/again")
    assert again.status_code == 201, again.text
    copy = again.json()
    assert copy["id"] != done
    assert copy["state"] == "QUEUED"
    assert copy["summary"] == ""
    assert (copy["name"], copy["priority"], copy["timeout"]) == ("repeat me", "high", 600)
    assert copy["tags"] == ["a", "b"]
    assert copy["agent"]["instructions"] == "do"
    assert copy["agent"]["model"] == "sonnet"
    assert copy["agent"]["project_dir"] == str(project)
    original = api.get(f"/api/tasks/{done}").json()["task"]
    assert (original["state"], original["summary"]) == ("COMPLETED", "did it")

    failed = ended(api, store, task_body(project, "failed"), TaskState.FAILED)
    assert api.post(f"/api/tasks/{failed}/again").json()["state"] == "QUEUED"
    assert api.get(f"/api/tasks/{failed}").json()["task"]["state"] == "FAILED"


def test_again_refuses_unfinished_and_checker_tasks(
    api: httpx.Client, project: Path, store: Store
) -> None:
    [queued] = api.post("/api/tasks", json=task_body(project, "waiting")).json()["tasks"]
    refused = api.post(f"/api/tasks/{queued['id']}/again")
    assert refused.status_code == 409
    assert "is QUEUED: only ended" in refused.json()["error"]

    checked = ended(api, store, task_body(project, "checked"), TaskState.COMPLETED)
    [checker] = store.add_tasks(
        [Task.model_validate({**task_body(project, "check"), "checker_for_task_id": checked})],
        submit=True,
    )
    store.transition(checker.id, TaskState.RUNNING, "claimed")
    store.transition(checker.id, TaskState.COMPLETED, "checked")
    refused = api.post(f"/api/tasks/{checker.id}/again")
    assert refused.status_code == 409
    assert "run that task again instead" in refused.json()["error"]
    assert api.post("/api/tasks/nope-nope/again").status_code == 404
    names = sorted(t["name"] for t in api.get("/api/tasks").json()["tasks"])
    assert names == ["check", "checked", "waiting"]  # nothing was created
