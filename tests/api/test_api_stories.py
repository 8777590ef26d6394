"""Stories over the API: tasks grouped toward one goal, with progress."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_api_tasks import Served, task_body

from claudomator.config import Settings
from claudomator.models import TaskState
from claudomator.store import Store


def test_story_groups_tasks_and_reports_progress(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        created = client.post("/api/stories", json={"name": "CSV export", "description": "#142"})
        assert created.status_code == 201, created.text
        story = created.json()["story"]
        assert created.json()["progress"] == 0.0
        batch = {
            "tasks": [task_body(tmp_path, f"t{i}", story_id=story["id"]) for i in range(4)]
            + [task_body(tmp_path, "loose")]
        }
        tasks = client.post("/api/tasks", json=batch).json()["tasks"]
        store.transition(tasks[0]["id"], TaskState.RUNNING, "claimed")
        store.transition(tasks[0]["id"], TaskState.COMPLETED, "done")
        view = client.get(f"/api/stories/{story['id']}").json()
        assert (view["total"], view["completed"], view["progress"]) == (4, 1, pytest.approx(0.25))
        assert view["tasks"] == {"COMPLETED": 1, "QUEUED": 3}
        mine = client.get("/api/tasks", params={"story": story["id"]}).json()["tasks"]
        assert {t["name"] for t in mine} == {"t0", "t1", "t2", "t3"}
        assert [s["story"]["name"] for s in client.get("/api/stories").json()["stories"]] == [
            "CSV export"
        ]
        unknown = client.post("/api/tasks", json=task_body(tmp_path, "x", story_id="nope"))
        assert unknown.status_code == 422  # a problem of the body, listed with the others
        assert client.post("/api/stories", json={"name": ""}).status_code == 422
        assert client.delete(f"/api/stories/{story['id']}").status_code == 204
        assert client.get(f"/api/stories/{story['id']}").status_code == 404
        assert client.get(f"/api/tasks/{tasks[1]['id']}").json()["task"]["story_id"] is None


def test_a_story_is_renamed_and_described(settings: Settings, store: Store) -> None:
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        story = client.post("/api/stories", json={"name": "old", "description": "d"}).json()
        story_id = story["story"]["id"]
        renamed = client.patch(f"/api/stories/{story_id}", json={"name": "CSV export"})
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["story"]["name"], renamed.json()["story"]["description"]) == (
            "CSV export",
            "d",
        )
        described = client.patch(f"/api/stories/{story_id}", json={"description": "#142"})
        assert described.json()["story"] == {**renamed.json()["story"], "description": "#142"}
        assert client.get(f"/api/stories/{story_id}").json()["story"]["description"] == "#142"
        empty = client.patch(f"/api/stories/{story_id}", json={"name": ""})
        assert empty.status_code == 422
        assert "name" in empty.text
        unknown_field = client.patch(f"/api/stories/{story_id}", json={"id": "x"})
        assert unknown_field.status_code == 422
        missing = client.patch("/api/stories/nope", json={"name": "x"})
        assert missing.status_code == 404
        assert "nope" in missing.json()["error"]
        assert client.get(f"/api/stories/{story_id}").json()["story"]["name"] == "CSV export"
