"""Many API clients at once creating, cancelling and answering: nothing lost, doubled or 5xx."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from robust import Served, size

from claudomator.config import Settings
from claudomator.models import Execution, Interaction, Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo

CLIENTS = size(50, 200)
ROUNDS = size(2, 6)  # each round: a task, a batch of two, a cancel, list and get


def blocked_task(store: Store, index: int, project: Path) -> Task:
    """A task BLOCKED on a question, as an agent leaves it."""
    [task] = store.add_tasks(
        [Task(name=f"blocked-{index}", agent={"instructions": "x", "project_dir": str(project)})]
    )
    store.transition(task.id, TaskState.RUNNING, "claimed", expected=TaskState.QUEUED)
    run = store.add_execution(Execution(task_id=task.id, agent="claude"))
    question = {"text": "Proceed?", "options": ["yes", "no"]}
    store.save_execution(run.model_copy(update={"status": TaskState.BLOCKED}))
    store.add_interaction(Interaction(task_id=task.id, execution_id=run.id, question="Proceed?"))
    return store.transition(
        task.id,
        TaskState.BLOCKED,
        "question",
        expected=TaskState.RUNNING,
        question=json.dumps(question),
    )


@pytest.mark.heavy
def test_concurrent_clients_lose_nothing_and_never_get_a_5xx(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    project = make_repo()
    blocked = [blocked_task(store, i, project).id for i in range(CLIENTS)]
    results: list[tuple[str, str, int, str]] = []  # (action, target, status, detail)
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def body(name: str) -> dict[str, object]:
        return {"name": name, "agent": {"instructions": "do", "project_dir": str(project)}}

    def client(index: int) -> None:
        def record(
            action: str, target: str, response: httpx.Response, sent: str = ""
        ) -> httpx.Response:
            with lock:
                results.append((action, target, response.status_code, sent or response.text[:300]))
            return response

        with httpx.Client(base_url=served.url, timeout=60) as http:
            start.wait()
            for r in range(ROUNDS):
                one = record(
                    "create",
                    f"c{index}-{r}-a",
                    http.post("/api/tasks", json=body(f"c{index}-{r}-a")),
                )
                batch = {"tasks": [body(f"c{index}-{r}-b"), body(f"c{index}-{r}-c")]}
                record("create", f"c{index}-{r}-bc", http.post("/api/tasks", json=batch))
                if one.status_code == 201:
                    victim = one.json()["tasks"][0]["id"]
                    record("cancel", victim, http.post(f"/api/tasks/{victim}/cancel"))
                    record("get", victim, http.get(f"/api/tasks/{victim[:8]}"))
                record("list", "", http.get("/api/tasks", params={"limit": 50}))
            # racing on the blocked tasks: my own, my neighbour's, and a cancel of another's
            mine, neighbour, other = (blocked[(index + k) % CLIENTS] for k in range(3))
            for target in (mine, neighbour):
                text = f"from client {index}"
                sent = http.post(f"/api/tasks/{target}/answer", json={"answer": text})
                record("answer", target, sent, text)
            record("cancel-blocked", other, http.post(f"/api/tasks/{other}/cancel"))

    with Served(settings, store) as served:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)

    server_errors = [r for r in results if r[2] >= 500]
    assert not server_errors, server_errors[:5]
    by_action = Counter((r[0], r[2]) for r in results)
    unexpected = [r for r in results if (r[0], r[2]) not in EXPECTED]
    assert not unexpected, unexpected[:5]
    # every create answered 201 and stored its tasks exactly once
    assert by_action[("create", 201)] == 2 * CLIENTS * ROUNDS
    tasks = store.list_tasks(limit=100_000)
    names = Counter(t.name for t in tasks)
    assert len(tasks) == CLIENTS + 3 * CLIENTS * ROUNDS
    assert all(n == 1 for n in names.values()), [k for k, n in names.items() if n > 1]
    for i in range(CLIENTS):
        for r in range(ROUNDS):
            assert {f"c{i}-{r}-{x}" for x in "abc"} <= names.keys()
    states = {t.name: t.state for t in tasks}
    assert by_action[("cancel", 200)] == CLIENTS * ROUNDS
    assert all(
        states[f"c{i}-{r}-a"] == TaskState.CANCELLED for i in range(CLIENTS) for r in range(ROUNDS)
    )
    # each blocked task: answered at most once, and its state says what won
    for task_id in blocked:
        answered = [r for r in results if r[0] == "answer" and r[1] == task_id and r[2] == 200]
        cancelled = [
            r for r in results if r[0] == "cancel-blocked" and r[1] == task_id and r[2] == 200
        ]
        assert len(answered) <= 1, task_id
        assert answered or cancelled, task_id
        task = store.get_task(task_id)
        assert task.state == (TaskState.CANCELLED if cancelled else TaskState.QUEUED)
        [interaction] = store.interactions_of(task_id)
        if answered:
            assert interaction.answer == answered[0][3]
        else:
            assert interaction.answer == ""
        resumed = [e for e in store.events(task_id) if e.reason == "answered; resuming"]
        assert len(resumed) == len(answered)


EXPECTED = {
    ("create", 201),
    ("cancel", 200),
    ("get", 200),
    ("list", 200),
    ("answer", 200),
    ("answer", 409),  # someone else answered (or cancelled) first
    ("cancel-blocked", 200),
    ("cancel-blocked", 409),  # already cancelled
}
