"""SSE streams (task events, log follow) and Prometheus metrics over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from test_api_tasks import Served, task_body

from claudomator.config import Settings
from claudomator.models import AgentConfig, Execution, Task, TaskState, utcnow
from claudomator.store import Store


@pytest.fixture
def served(settings: Settings, store: Store) -> Iterator[Served]:
    with Served(settings, store) as server:
        yield server


def read_frames(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` SSE frames (comment lines skipped)."""
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if frame:
                frames.append(frame)
                frame = {}
                if len(frames) == count:
                    break
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        frame[key] = f"{frame[key]}\n{value}" if key in frame else value
    return frames


def test_task_events_stream_and_resume_from_the_last_id(served: Served, tmp_path: Path) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        [task] = client.post("/api/tasks", json=task_body(tmp_path)).json()["tasks"]
        with client.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = read_frames(response, 2)
        assert [f["event"] for f in first] == ["task", "task"]
        states = [json.loads(f["data"])["to_state"] for f in first]
        assert states == ["PENDING", "QUEUED"]
        assert json.loads(first[0]["data"])["task_id"] == task["id"]
        client.post(f"/api/tasks/{task['id']}/cancel")
        headers = {"Last-Event-ID": first[-1]["id"]}
        with client.stream("GET", "/api/events", headers=headers) as response:
            [later] = read_frames(response, 1)
        assert json.loads(later["data"])["to_state"] == "CANCELLED"
        assert int(later["id"]) > int(first[-1]["id"])


def test_log_follow_streams_new_lines_until_the_execution_ends(
    served: Served, store: Store, tmp_path: Path, settings: Settings
) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        [task] = client.post("/api/tasks", json=task_body(tmp_path)).json()["tasks"]
    execution = Execution(task_id=task["id"])
    log = settings.logs_dir / execution.id / "stdout.log"  # where the pool puts it
    log.parent.mkdir(parents=True)
    log.write_text('{"type":"system","subtype":"init"}\n')
    execution = execution.model_copy(update={"stdout_path": str(log)})
    store.transition(task["id"], TaskState.RUNNING, "claimed", execution=execution)

    def agent_writes_then_ends() -> None:
        time.sleep(0.7)
        with log.open("a") as fh:
            fh.write('{"type":"assistant"}\n{"type":"result"')
        time.sleep(0.7)
        store.save_execution(
            execution.model_copy(update={"end_time": utcnow(), "status": TaskState.COMPLETED})
        )

    writer = threading.Thread(target=agent_writes_then_ends)
    writer.start()
    try:
        with (
            httpx.Client(base_url=served.url, timeout=10) as client,
            client.stream("GET", f"/api/executions/{execution.id}/log/follow") as response,
        ):
            frames = read_frames(response, 4)
    finally:
        writer.join()
    assert [f["event"] for f in frames] == ["log", "log", "log", "end"]
    assert [f["data"] for f in frames[:3]] == [
        '{"type":"system","subtype":"init"}',
        '{"type":"assistant"}',
        '{"type":"result"',
    ]
    assert json.loads(frames[3]["data"]) == {"status": "COMPLETED", "offset": log.stat().st_size}


def scrape(client: httpx.Client) -> dict[str, Metric]:
    """``/metrics`` parsed by prometheus_client's own parser, by family name."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(family: Metric, name: str, **labels: str) -> float:
    [value] = [s.value for s in family.samples if s.name == name and s.labels == labels]
    return float(value)


def test_metrics_in_prometheus_format(served: Served, tmp_path: Path) -> None:
    with httpx.Client(base_url=served.url) as client:
        client.post("/api/tasks", json=task_body(tmp_path))
        families = scrape(client)
    assert families["claudomator_tasks"].type == "gauge"
    assert sample(families["claudomator_tasks"], "claudomator_tasks", state="QUEUED") == 1
    assert sample(families["claudomator_tasks"], "claudomator_tasks", state="RUNNING") == 0
    assert families["claudomator_executions"].type == "counter"
    wait = families["claudomator_queue_wait_seconds"]
    assert wait.type == "histogram"
    assert sample(wait, "claudomator_queue_wait_seconds_count") == 0
    assert sample(families["claudomator_pending_outcomes"], "claudomator_pending_outcomes") == 0
    refusals = families["claudomator_store_write_refusals"]
    assert refusals.type == "counter"
    assert sample(refusals, "claudomator_store_write_refusals_total") == 0
    assert sample(families["process_cpu_seconds"], "process_cpu_seconds_total") > 0
    assert sample(families["process_resident_memory_bytes"], "process_resident_memory_bytes") > 0


def test_metrics_report_how_long_tasks_waited_in_the_queue(
    served: Served, store: Store, tmp_path: Path
) -> None:
    with httpx.Client(base_url=served.url) as client:
        tasks = client.post(
            "/api/tasks", json={"tasks": [task_body(tmp_path, f"t{i}") for i in range(3)]}
        ).json()["tasks"]
        time.sleep(0.3)
        for task in tasks[:2]:
            store.transition(task["id"], TaskState.RUNNING, "claimed")
        wait = scrape(client)["claudomator_queue_wait_seconds"]
    name = "claudomator_queue_wait_seconds"
    assert sample(wait, f"{name}_count") == 2
    assert sample(wait, f"{name}_sum") >= 0.6
    assert sample(wait, f"{name}_bucket", le="1.0") == 2
    assert sample(wait, f"{name}_bucket", le="+Inf") == 2


def test_metrics_count_executions_cost_tokens_and_run_time_per_agent_and_model(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    tasks = [
        Task(name=f"t{i}", agent=AgentConfig(type="claude", instructions="x")) for i in range(3)
    ]
    for i, task in enumerate(store.add_tasks(tasks)):
        started = utcnow() - timedelta(seconds=45 + 1000 * i)
        execution = Execution(task_id=task.id, agent="claude", model="opus" if i else "haiku")
        store.transition(task.id, TaskState.RUNNING, "claimed", execution=execution)
        if i < 2:  # the third still runs
            store.save_execution(
                execution.model_copy(
                    update={
                        "start_time": started,
                        "end_time": started + timedelta(seconds=45 + 1000 * i),
                        "status": TaskState.COMPLETED,
                        "cost_usd": 0.25,
                        "tokens_in": 100,
                        "tokens_out": 7,
                    }
                )
            )
    # a second server with its own store on the same database: the numbers are the database's
    second = Store.open(settings.db_path)
    with (
        Served(settings, store) as one,
        Served(settings, second) as other,
        httpx.Client(base_url=one.url) as a,
        httpx.Client(base_url=other.url) as b,
    ):
        families, again = scrape(a), scrape(b)
    second.close()
    for fams in (families, again):
        runs = fams["claudomator_executions"]
        total = "claudomator_executions_total"
        assert sample(runs, total, agent="claude", model="haiku", status="COMPLETED") == 1
        assert sample(runs, total, agent="claude", model="opus", status="COMPLETED") == 1
        assert sample(runs, total, agent="claude", model="opus", status="RUNNING") == 1
        cost = fams["claudomator_cost_usd"]
        assert sample(cost, "claudomator_cost_usd_total", agent="claude", model="opus") == 0.25
        tokens = fams["claudomator_tokens"]
        labels = {"agent": "claude", "model": "haiku"}
        assert sample(tokens, "claudomator_tokens_total", **labels, direction="in") == 100
        assert sample(tokens, "claudomator_tokens_total", **labels, direction="out") == 7
        run = fams["claudomator_run_seconds"]
        assert run.type == "histogram"
        assert sample(run, "claudomator_run_seconds_count", **labels) == 1
        assert sample(run, "claudomator_run_seconds_sum", **labels) == pytest.approx(45)
        assert sample(run, "claudomator_run_seconds_bucket", **labels, le="30.0") == 0
        assert sample(run, "claudomator_run_seconds_bucket", **labels, le="60.0") == 1
        opus = {"agent": "claude", "model": "opus"}
        assert sample(run, "claudomator_run_seconds_bucket", **opus, le="600.0") == 0
        assert sample(run, "claudomator_run_seconds_bucket", **opus, le="1200.0") == 1
