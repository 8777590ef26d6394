"""A task's cost: the sum over its executions, unknown if one is, estimated if one is; one
grouped query for any number of tasks (a real SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from claudomator.models import AgentConfig, Execution, Task, TaskCost, TaskState, utcnow
from claudomator.money import budget_unchecked, cost_text, execution_cost_text
from claudomator.store import Store
from claudomator.store.costs import task_costs


def ended(task: Task, cost: float, *, known: bool = True, estimated: bool = False) -> Execution:
    start = utcnow() - timedelta(minutes=5)
    return Execution(
        task_id=task.id,
        agent="gemini",
        status=TaskState.COMPLETED,
        start_time=start,
        end_time=start + timedelta(minutes=1),
        cost_usd=cost,
        cost_known=known,
        cost_estimated=estimated,
    )


@pytest.fixture
def tasks(store: Store) -> list[Task]:
    names = ["reported", "estimated", "unknown", "partly", "never-ran", "running"]
    return store.add_tasks(
        [Task(name=n, agent=AgentConfig(instructions="x", max_budget_usd=1)) for n in names]
    )


@pytest.fixture
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engine runs from now on."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(store._engine, "before_cursor_execute", record)


def test_sum_known_and_estimated_over_every_execution(
    store: Store, tasks: list[Task], statements: list[str]
) -> None:
    reported, estimated, unknown, partly, never, running = tasks
    for execution in (
        ended(reported, 0.25),
        ended(reported, 0.5),
        ended(estimated, 0.5),
        ended(estimated, 0.25, estimated=True),
        ended(unknown, 0.0, known=False),
        ended(partly, 0.125),
        ended(partly, 0.0, known=False),
        Execution(task_id=running.id),  # still running: no cost yet
    ):
        store.add_execution(execution)
    statements.clear()

    costs = task_costs(store, [t.id for t in tasks])

    assert len(statements) == 1  # one grouped query, not one per task
    assert costs[reported.id] == TaskCost(total_usd=0.75, executions=2, ended=2)
    assert costs[estimated.id].total_usd == 0.75
    assert (costs[estimated.id].known, costs[estimated.id].estimated) == (True, True)
    assert costs[unknown.id] == TaskCost(total_usd=0, known=False, executions=1, ended=1)
    assert costs[partly.id] == TaskCost(total_usd=0.125, known=False, executions=2, ended=2)
    assert costs[never.id] == TaskCost()
    assert costs[running.id] == TaskCost(executions=1, ended=0)
    assert task_costs(store, []) == {}

    texts = {t.name: cost_text(costs[t.id]) for t in tasks}
    assert texts == {
        "reported": "$0.7500",
        "estimated": "~$0.7500",
        "unknown": "unknown",
        "partly": "≥ $0.1250",
        "never-ran": "",
        "running": "",
    }
    assert budget_unchecked(unknown, costs[unknown.id].known) == (
        " (no price for the model: the budget of $1 was not checked)"
    )
    assert budget_unchecked(reported, costs[reported.id].known) == ""


def test_many_tasks_are_counted_in_chunks(store: Store) -> None:
    many = store.add_tasks(
        [Task(name=f"t{i}", agent=AgentConfig(instructions="x")) for i in range(1203)]
    )
    for task in many[::100]:
        store.add_execution(ended(task, 0.5, known=task is not many[0]))
    costs = task_costs(store, [t.id for t in many])
    assert len(costs) == 1203
    assert costs[many[0].id].known is False
    assert costs[many[1200].id].total_usd == 0.5
    assert sum(c.executions for c in costs.values()) == 13


def test_one_execution_says_unknown_not_zero() -> None:
    task = Task(name="t", agent=AgentConfig(instructions="x"))
    assert execution_cost_text(ended(task, 0.0, known=False)) == "unknown"
    assert execution_cost_text(ended(task, 0.01, estimated=True)) == "~$0.0100"
    assert execution_cost_text(Execution(task_id=task.id)) == ""
