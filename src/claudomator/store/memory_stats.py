"""The aggregates of :class:`claudomator.store.memory.MemoryStore`, computed over its records
with the same results as the SQL store's grouped queries."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from claudomator.models import Execution, TaskCost, TaskEvent, TaskState
from claudomator.store.stats import ExecutionGroup, RunTime


class MemoryStats:
    """Task costs and ``/metrics`` numbers over a memory store's executions and events."""

    _lock: threading.RLock
    _executions: dict[str, Execution]
    _events: list[TaskEvent]

    def task_costs(self, task_ids: Iterable[str]) -> dict[str, TaskCost]:
        ids = list(dict.fromkeys(task_ids))
        wanted = set(ids)
        with self._lock:
            found = [e for e in self._executions.values() if e.task_id in wanted]
        costs = {task_id: TaskCost() for task_id in ids}
        for task_id in {e.task_id for e in found}:
            mine = [e for e in found if e.task_id == task_id]
            costs[task_id] = TaskCost(
                total_usd=float(sum(e.cost_usd for e in mine)),
                known=all(e.cost_known for e in mine),
                estimated=any(e.cost_estimated for e in mine),
                executions=len(mine),
                ended=sum(1 for e in mine if e.end_time is not None),
            )
        return costs

    def execution_groups(self) -> list[ExecutionGroup]:
        groups: dict[tuple[str, str, str], list[Execution]] = {}
        with self._lock:
            for e in self._executions.values():
                groups.setdefault((e.agent, e.model, e.status.value), []).append(e)
        return [
            ExecutionGroup(
                agent,
                model,
                status,
                len(mine),
                float(sum(e.cost_usd for e in mine)),
                sum(e.tokens_in for e in mine),
                sum(e.tokens_out for e in mine),
                sum(1 for e in mine if not e.cost_known),
            )
            for (agent, model, status), mine in groups.items()
        ]

    def run_times(self) -> list[RunTime]:
        with self._lock:
            ended = [e for e in self._executions.values() if e.end_time is not None]
        return [
            RunTime(e.agent, e.model, max(0.0, (e.end_time - e.start_time).total_seconds()))
            for e in ended
            if e.end_time is not None
        ]

    def queue_waits(self) -> list[float]:
        with self._lock:
            events = list(self._events)
        waits: list[float] = []
        for i, event in enumerate(events):
            if event.to_state != TaskState.RUNNING:
                continue
            entered = [
                e.at
                for e in events[:i]
                if e.task_id == event.task_id and e.to_state == TaskState.QUEUED
            ]
            if entered:
                waits.append(max(0.0, (event.at - max(entered)).total_seconds()))
        return waits
