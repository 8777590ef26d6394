"""SSE streams (task events, log follow) and Prometheus metrics over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_api_tasks import Served, task_body

from claudomator.config import Settings
from claudomator.models import Execution, TaskState, utcnow
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


def test_metrics_in_prometheus_format(served: Served, tmp_path: Path) -> None:
    with httpx.Client(base_url=served.url) as client:
        client.post("/api/tasks", json=task_body(tmp_path))
        text = client.get("/metrics").text
    assert 'claudomator_tasks{state="QUEUED"} 1' in text
    assert 'claudomator_tasks{state="RUNNING"} 0' in text
    assert "# TYPE claudomator_executions_total counter" in text
    assert 'claudomator_queue_wait_seconds{quantile="0.5"} NaN' in text
    assert "claudomator_queue_wait_seconds_count 0" in text


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
        text = client.get("/metrics").text
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("claudomator_queue_wait_seconds")
    }
    assert values["claudomator_queue_wait_seconds_count"] == 2
    assert 0.3 <= values['claudomator_queue_wait_seconds{quantile="0.5"}'] < 30
    assert values["claudomator_queue_wait_seconds_sum"] >= 0.6
