"""The store contract: tasks and transitions with history — on every backend.

Moved from ``tests/unit/test_store_sqlite.py`` (which keeps what only SQLite has: the file,
WAL, migrations); the ``store`` fixture (``backends.py``) gives each test every backend.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from claudomator.errors import IntegrityViolation, InvalidTransition, NotFound
from claudomator.models import (
    AgentConfig,
    Execution,
    Priority,
    Task,
    TaskState,
)
from claudomator.store.base import Store
from contract import backends

store = backends.store  # the fixture: each test runs on every backend

S = TaskState
REFUSED = (IntegrityViolation, sa.exc.IntegrityError)  # a duplicate id, a missing task


def _task(name: str = "t", **fields: object) -> Task:
    agent = AgentConfig(instructions=f"do {name}", model="opus", allowed_tools=("Bash",))
    return Task.model_validate({"name": name, "agent": agent, **fields})


def _events(store: Store, task_id: str) -> list[tuple[TaskState | None, TaskState, str]]:
    return [(e.from_state, e.to_state, e.reason) for e in store.events(task_id)]


def _to(store: Store, task_id: str, *path: TaskState) -> None:
    for state in path:
        store.transition(task_id, state, f"to {state}")


# -- tasks ------------------------------------------------------------------------------------


def test_add_tasks_queues_and_records_history(store: Store) -> None:
    original = _task("a", priority=Priority.HIGH, tags=("x", "y"), timeout=90.0, depends_on=("d",))
    [stored] = store.add_tasks([original])
    assert stored.state == S.QUEUED
    assert stored.id == original.id
    loaded = store.get_task(original.id)
    assert loaded == stored
    assert loaded.agent == original.agent
    assert loaded.tags == ("x", "y")
    assert loaded.depends_on == ("d",)
    assert loaded.timeout == 90.0
    assert loaded.priority == Priority.HIGH
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert _events(store, original.id) == [
        (None, S.PENDING, "created"),
        (S.PENDING, S.QUEUED, "submitted"),
    ]
    events = store.events(original.id)
    assert all(e.at.utcoffset() == timedelta(0) for e in events)
    assert events[0].at == events[1].at == loaded.created_at


def test_add_tasks_without_submit_stays_pending(store: Store) -> None:
    [stored] = store.add_tasks([_task()], submit=False)
    assert store.get_task(stored.id).state == S.PENDING
    assert _events(store, stored.id) == [(None, S.PENDING, "created")]


def test_add_tasks_is_all_or_nothing(store: Store) -> None:
    a, b = _task("a"), _task("b")
    with pytest.raises(REFUSED):
        store.add_tasks([a, b, a])
    assert store.list_tasks() == []
    assert store.events(a.id) == []
    assert store.events(b.id) == []


def test_get_task_unknown(store: Store) -> None:
    with pytest.raises(NotFound) as info:
        store.get_task("nope")
    assert (info.value.kind, info.value.ident) == ("task", "nope")


def test_find_tasks_by_prefix(store: Store) -> None:
    store.add_tasks([_task(id="abc-1"), _task(id="abc-2"), _task(id="xyz-1"), _task(id="a_c-9")])
    assert {t.id for t in store.find_tasks("abc")} == {"abc-1", "abc-2"}
    assert [t.id for t in store.find_tasks("xy")] == ["xyz-1"]
    assert [t.id for t in store.find_tasks("xyz-1")] == ["xyz-1"]
    assert store.find_tasks("q") == []
    # LIKE wildcards in the prefix are literal
    assert [t.id for t in store.find_tasks("a_")] == ["a_c-9"]
    assert store.find_tasks("%") == []


def test_queued_tasks_high_priority_first_then_oldest(store: Store) -> None:
    low = store.add_tasks([_task("low", priority=Priority.LOW)])[0]
    normal_old = store.add_tasks([_task("normal-old")])[0]
    high_old = store.add_tasks([_task("high-old", priority=Priority.HIGH)])[0]
    normal_new = store.add_tasks([_task("normal-new")])[0]
    high_new = store.add_tasks([_task("high-new", priority=Priority.HIGH)])[0]
    running = store.add_tasks([_task("running", priority=Priority.HIGH)])[0]
    store.add_tasks([_task("pending", priority=Priority.HIGH)], submit=False)
    store.transition(running.id, S.RUNNING, "claimed")
    order = [t.name for t in store.queued_tasks()]
    assert order == ["high-old", "high-new", "normal-old", "normal-new", "low"]
    assert [t.id for t in store.queued_tasks()] == [
        high_old.id,
        high_new.id,
        normal_old.id,
        normal_new.id,
        low.id,
    ]


def test_list_tasks_filters(store: Store) -> None:
    a = store.add_tasks([_task("a")])[0]
    b = store.add_tasks([_task("b")])[0]
    store.transition(a.id, S.CANCELLED, "no")
    assert [t.name for t in store.list_tasks()] == ["b", "a"]  # newest first
    assert [t.name for t in store.list_tasks(states=[S.CANCELLED])] == ["a"]
    assert [t.name for t in store.list_tasks(ids=[b.id])] == ["b"]
    assert [t.name for t in store.list_tasks(limit=1)] == ["b"]
    assert store.states_of([a.id, b.id, "missing"]) == {a.id: S.CANCELLED, b.id: S.QUEUED}
    assert store.states_of([]) == {}


def test_count_by_state(store: Store) -> None:
    assert store.count_by_state() == {}
    tasks = store.add_tasks([_task(str(i)) for i in range(4)])
    store.add_tasks([_task("p")], submit=False)
    store.transition(tasks[0].id, S.RUNNING, "claim")
    store.transition(tasks[1].id, S.CANCELLED, "no")
    assert store.count_by_state() == {S.QUEUED: 2, S.RUNNING: 1, S.CANCELLED: 1, S.PENDING: 1}


def test_update_task(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    store.update_task(task.id, summary="half done", cancel_requested=True)
    loaded = store.get_task(task.id)
    assert loaded.summary == "half done"
    assert loaded.cancel_requested is True
    assert loaded.updated_at > task.updated_at
    assert loaded.state == S.QUEUED


def test_update_task_refuses_state(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    with pytest.raises(ValueError, match="transition"):
        store.update_task(task.id, state=S.COMPLETED.value)
    assert store.get_task(task.id).state == S.QUEUED
    with pytest.raises(NotFound):
        store.update_task("missing", summary="x")


# -- transitions ------------------------------------------------------------------------------


def test_transition_records_an_event_with_the_reason(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    moved = store.transition(task.id, S.RUNNING, "claimed by worker-1")
    assert moved.state == S.RUNNING
    assert moved.updated_at > task.updated_at
    loaded = store.get_task(task.id)
    assert loaded.state == S.RUNNING
    assert loaded.updated_at == moved.updated_at
    assert _events(store, task.id)[-1] == (S.QUEUED, S.RUNNING, "claimed by worker-1")
    assert store.events(task.id)[-1].at == moved.updated_at


def test_transition_sets_fields(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    store.transition(task.id, S.RUNNING, "claim")
    moved = store.transition(task.id, S.BLOCKED, "asked", question='{"text": "which?"}')
    assert moved.question == '{"text": "which?"}'
    assert store.get_task(task.id).question == '{"text": "which?"}'


def test_full_history(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    _to(store, task.id, S.RUNNING, S.READY, S.QUEUED, S.RUNNING, S.COMPLETED)
    assert [(e[0], e[1]) for e in _events(store, task.id)] == [
        (None, S.PENDING),
        (S.PENDING, S.QUEUED),
        (S.QUEUED, S.RUNNING),
        (S.RUNNING, S.READY),
        (S.READY, S.QUEUED),
        (S.QUEUED, S.RUNNING),
        (S.RUNNING, S.COMPLETED),
    ]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((), S.COMPLETED),
        ((), S.BLOCKED),
        ((S.RUNNING, S.COMPLETED), S.QUEUED),
        ((S.CANCELLED,), S.RUNNING),
    ],
)
def test_illegal_transition_changes_nothing(
    store: Store, path: tuple[TaskState, ...], target: TaskState
) -> None:
    [task] = store.add_tasks([_task()])
    _to(store, task.id, *path)
    before = store.get_task(task.id)
    history = store.events(task.id)
    with pytest.raises(InvalidTransition) as info:
        store.transition(task.id, target, "should not happen", summary="nope")
    assert (info.value.task_id, info.value.source, info.value.target) == (
        task.id,
        before.state.value,
        target.value,
    )
    assert store.get_task(task.id) == before
    assert store.events(task.id) == history


def test_expected_state_mismatch_raises(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    with pytest.raises(InvalidTransition) as info:
        store.transition(task.id, S.RUNNING, "claim", expected=S.PENDING)
    assert info.value.source == "QUEUED"
    assert store.get_task(task.id).state == S.QUEUED
    assert len(store.events(task.id)) == 2
    # the matching expectation wins
    assert store.transition(task.id, S.RUNNING, "claim", expected=S.QUEUED).state == S.RUNNING
    # a second claim from QUEUED loses
    with pytest.raises(InvalidTransition):
        store.transition(task.id, S.RUNNING, "claim", expected=S.QUEUED)


def test_transition_unknown_task(store: Store) -> None:
    with pytest.raises(NotFound):
        store.transition("missing", S.RUNNING, "claim")


def test_cancel_requested_is_cleared_on_requeue_and_terminal_states(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    store.transition(task.id, S.RUNNING, "claim")
    store.update_task(task.id, cancel_requested=True)
    store.transition(task.id, S.BLOCKED, "asked")  # neither queued nor terminal: kept
    assert store.get_task(task.id).cancel_requested is True
    store.transition(task.id, S.CANCELLED, "cancelled")
    assert store.get_task(task.id).cancel_requested is False


def test_transition_returns_what_was_stored(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    store.update_task(task.id, cancel_requested=True)
    returned = store.transition(task.id, S.CANCELLED, "cancelled")
    assert returned == store.get_task(task.id)


def test_transition_with_execution_inserts_it_atomically(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    execution = Execution(task_id=task.id, agent="claude")
    store.transition(task.id, S.RUNNING, "claim", expected=S.QUEUED, execution=execution)
    assert store.get_execution(execution.id) == execution
    # a lost claim inserts no execution
    loser = Execution(task_id=task.id, agent="claude")
    with pytest.raises(InvalidTransition):
        store.transition(task.id, S.RUNNING, "claim", expected=S.QUEUED, execution=loser)
    with pytest.raises(NotFound):
        store.get_execution(loser.id)
    assert store.executions_of(task.id) == [execution]


def test_of_many_threads_claiming_one_task_exactly_one_wins(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    [task] = store.add_tasks([_task()])

    def claim(worker: int) -> bool:
        execution = Execution(task_id=task.id, agent="claude", worker_id=f"w{worker}")
        try:
            store.transition(task.id, S.RUNNING, "claim", expected=S.QUEUED, execution=execution)
        except InvalidTransition:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(claim, range(16)))
    assert won.count(True) == 1
    assert len(store.executions_of(task.id)) == 1
    assert [e.to_state for e in store.events(task.id)].count(S.RUNNING) == 1
