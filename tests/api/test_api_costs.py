"""What tasks cost, over real HTTP: the task JSON's totals, the schema, and /metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from test_api_streams import sample, scrape
from test_api_tasks import Served, task_body

from claudomator.config import Settings
from claudomator.models import Execution, TaskState, utcnow
from claudomator.store import Store


def finish(store: Store, task_id: str, model: str, cost: float, **fields: bool) -> None:
    start = utcnow() - timedelta(minutes=2)
    store.add_execution(
        Execution(
            task_id=task_id,
            agent="gemini",
            model=model,
            status=TaskState.FAILED,
            start_time=start,
            end_time=start + timedelta(minutes=1),
            cost_usd=cost,
            **fields,
        )
    )


def test_tasks_say_their_total_cost_and_whether_it_is_known(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as api:
        made = api.post(
            "/api/tasks",
            json={"tasks": [task_body(tmp_path, name) for name in ("priced", "unpriced", "new")]},
        ).json()["tasks"]
        ids = {t["name"]: t["id"] for t in made}
        finish(store, ids["priced"], "gemini-2.5-pro", 0.25, cost_estimated=True)
        finish(store, ids["priced"], "gemini-2.5-pro", 0.5, cost_estimated=True)
        finish(store, ids["unpriced"], "gemini-2.5-pro", 0.5, cost_estimated=True)
        finish(store, ids["unpriced"], "gemini-unpriced", 0.0, cost_known=False)

        listed = {t["name"]: t for t in api.get("/api/tasks").json()["tasks"]}
        detail = api.get(f"/api/tasks/{ids['unpriced']}").json()
        schema = api.get("/openapi.json").json()["components"]["schemas"]["TaskView"]
        families = scrape(api)

    def cost(task: dict[str, object]) -> tuple[object, ...]:
        return task["cost_usd_total"], task["cost_known"], task["cost_estimated"]

    assert cost(listed["priced"]) == (0.75, True, True)
    assert cost(listed["unpriced"]) == (0.5, False, True)  # at least $0.50
    assert cost(listed["new"]) == (0.0, True, False)
    assert cost(detail["task"]) == (0.5, False, True)
    assert [e["cost_known"] for e in detail["executions"]] == [True, False]
    for name in ("cost_usd_total", "cost_known", "cost_estimated"):
        assert name in schema["properties"], name
    assert "budget" in schema["properties"]["cost_known"]["description"]
    unknown = families["claudomator_executions_cost_unknown"]
    total = "claudomator_executions_cost_unknown_total"
    assert sample(unknown, total, agent="gemini", model="gemini-unpriced") == 1
    assert sample(unknown, total, agent="gemini", model="gemini-2.5-pro") == 0
