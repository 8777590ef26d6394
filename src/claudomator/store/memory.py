"""An in-memory store: a real implementation of :class:`claudomator.store.base.Store`.

For the fast test tier (and ``memory://``): the same rules as the SQL store — transitions
checked against :data:`~claudomator.models.TRANSITIONS` and guarded by the expected state,
stored with their event (and the claim's execution) atomically, the same
:class:`~claudomator.errors.NotFound` errors, the same order of every list — held in dicts
under one lock, gone with the process. Datetimes are kept in UTC, as the SQL store returns them.
The contract suite (``tests/contract/``) runs unchanged against it and against SQLite.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from claudomator.errors import IntegrityViolation, InvalidTransition, NotFound
from claudomator.models import (
    AgentStatus,
    Commit,
    DeliveryRecord,
    Execution,
    Interaction,
    Project,
    PushSubscription,
    Story,
    Task,
    TaskEvent,
    TaskState,
    check_transition,
    utcnow,
)
from claudomator.store.backlog import WriteBacklog
from claudomator.store.intents import DeliveryIntent
from claudomator.store.memory_records import MemoryRecords, utc
from claudomator.store.memory_stats import MemoryStats

logger = logging.getLogger(__name__)


_TASK_FIELDS = frozenset(Task.model_fields) - {"id", "state", "created_at"}


def _newest_first(tasks: Iterable[Task]) -> list[Task]:
    by_id = sorted(tasks, key=lambda t: t.id)
    return sorted(by_id, key=lambda t: t.created_at, reverse=True)


class MemoryStore(MemoryRecords, MemoryStats):
    """Every record in dicts, under one re-entrant lock (each method is one transaction)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.backlog = WriteBacklog()  # nothing is ever refused, so it stays empty
        self._tasks: dict[str, Task] = {}
        self._events: list[TaskEvent] = []
        self._next_event = 0
        self._executions: dict[str, Execution] = {}
        self._intents: dict[str, DeliveryIntent] = {}
        self._interactions: dict[int, Interaction] = {}
        self._next_interaction = 0
        self._statuses: dict[str, AgentStatus] = {}
        self._intake: dict[str, tuple[str, datetime]] = {}
        self._projects: dict[str, Project] = {}
        self._stories: dict[str, Story] = {}
        self._push: dict[str, PushSubscription] = {}

    @classmethod
    def open(cls, _url: str = "memory://") -> MemoryStore:
        return cls()

    def close(self) -> None:
        """Nothing to release (the records stay readable until the store is dropped)."""

    # -- tasks -------------------------------------------------------------------------------

    def add_tasks(self, new_tasks: Sequence[Task], *, submit: bool = True) -> list[Task]:
        now = utcnow()
        state = TaskState.QUEUED if submit else TaskState.PENDING
        stored: list[Task] = []
        for offset, new in enumerate(new_tasks):
            created = now + timedelta(microseconds=offset)  # claimed in file order
            stamp = {"state": state, "created_at": created, "updated_at": created}
            stored.append(utc(new.model_copy(update=stamp)))
        with self._lock:
            ids = [t.id for t in stored]
            if len(set(ids)) != len(ids) or any(i in self._tasks for i in ids):
                raise IntegrityViolation(f"a task id in {ids} is already stored")
            for task in stored:
                self._tasks[task.id] = task
                self._event(task.id, None, TaskState.PENDING, "created", now)
                if submit:
                    self._event(task.id, TaskState.PENDING, TaskState.QUEUED, "submitted", now)
        return stored

    def get_task(self, task_id: str) -> Task:
        with self._lock:
            if task_id not in self._tasks:
                raise NotFound("task", task_id)
            return self._tasks[task_id]

    def find_tasks(self, prefix: str) -> list[Task]:
        with self._lock:
            return sorted((t for t in self._tasks.values() if t.id.startswith(prefix)), key=_id)[:2]

    def tasks_named(self, name: str, limit: int = 20) -> list[Task]:
        with self._lock:
            return _newest_first(t for t in self._tasks.values() if t.name == name)[:limit]

    def list_tasks(
        self,
        *,
        states: Iterable[TaskState] | None = None,
        ids: Iterable[str] | None = None,
        parent: str | None = None,
        story: str | None = None,
        project_dir: str | None = None,
        tags: Iterable[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Task]:
        wanted_states = set(states) if states is not None else None
        wanted_ids = set(ids) if ids is not None else None
        wanted_tags = set(tags)

        def keep(t: Task) -> bool:
            return (
                (wanted_states is None or t.state in wanted_states)
                and (wanted_ids is None or t.id in wanted_ids)
                and (parent is None or t.parent_task_id == parent)
                and (story is None or t.story_id == story)
                and (project_dir is None or t.agent.project_dir == project_dir)
                and wanted_tags <= set(t.tags)
            )

        with self._lock:
            found = _newest_first(t for t in self._tasks.values() if keep(t))
        return found[offset:] if limit is None else found[offset : offset + limit]

    def children_of(self, task_ids: Iterable[str]) -> list[Task]:
        ids = set(task_ids)
        with self._lock:
            found = [
                t
                for t in self._tasks.values()
                if t.parent_task_id in ids or t.checker_for_task_id in ids
            ]
        return sorted(sorted(found, key=_id), key=lambda t: t.created_at)

    def queued_tasks(self, *, limit: int | None = None, offset: int = 0) -> list[Task]:
        with self._lock:
            queued = [t for t in self._tasks.values() if t.state == TaskState.QUEUED]
        queued.sort(key=lambda t: (-t.priority.rank, t.created_at, t.id))
        return queued[offset:] if limit is None else queued[offset : offset + limit]

    def states_of(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        with self._lock:
            return {i: self._tasks[i].state for i in task_ids if i in self._tasks}

    def count_by_state(self) -> dict[TaskState, int]:
        counts: dict[TaskState, int] = {}
        with self._lock:
            for task in self._tasks.values():
                counts[task.state] = counts.get(task.state, 0) + 1
        return counts

    def transition(
        self,
        task_id: str,
        target: TaskState,
        reason: str,
        *,
        expected: TaskState | None = None,
        execution: Execution | None = None,
        **fields: Any,
    ) -> Task:
        _check_fields(fields)
        with self._lock:
            current = self.get_task(task_id)
            source = current.state
            if expected is not None and source != expected:
                raise InvalidTransition(task_id, source.value, target.value)
            check_transition(task_id, source, target)
            now = utcnow()
            changes = dict(fields)
            if target == TaskState.QUEUED or target.is_terminal:
                changes.setdefault("cancel_requested", False)
            moved = current.model_copy(update={"state": target, "updated_at": now, **changes})
            if execution is not None:
                self._insert_execution(execution)
            self._tasks[task_id] = moved
            self._event(task_id, source, target, reason, now)
        logger.info(
            "task %s: %s -> %s (%s)",
            task_id,
            source.value,
            target.value,
            reason,
            extra={"action": "transition"},
        )
        return moved

    def update_task(self, task_id: str, **fields: Any) -> None:
        if "state" in fields:
            raise ValueError("use transition() to change a task's state")
        _check_fields(fields)
        with self._lock:
            current = self.get_task(task_id)
            self._tasks[task_id] = current.model_copy(update={"updated_at": utcnow(), **fields})

    def request_cancel(self, task_id: str) -> bool:
        with self._lock:
            current = self._tasks.get(task_id)
            if current is None or current.state != TaskState.RUNNING:
                return False
            update = {"cancel_requested": True, "updated_at": utcnow()}
            self._tasks[task_id] = current.model_copy(update=update)
            return True

    def cancel_requested(self, task_ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {i for i in task_ids if i in self._tasks and self._tasks[i].cancel_requested}

    def replace_task(self, task: Task, *, only_in: Iterable[TaskState]) -> Task:
        allowed = set(only_in)
        with self._lock:
            current = self.get_task(task.id)
            if current.state not in allowed:
                raise InvalidTransition(task.id, current.state.value, "edited")
            kept = ("state", "created_at", "summary", "question", "cancel_requested")
            update = {name: getattr(current, name) for name in kept}
            replaced = utc(task.model_copy(update={**update, "updated_at": utcnow()}))
            self._tasks[task.id] = replaced
            return replaced

    def delete_task(self, task_id: str, *, not_in: Iterable[TaskState]) -> None:
        refused = set(not_in)
        with self._lock:
            state = self.get_task(task_id).state
            if state in refused:
                raise InvalidTransition(task_id, state.value, "deleted")
            gone = {i for i, e in self._executions.items() if e.task_id == task_id}
            if gone & set(self._intents):
                raise IntegrityViolation(f"task {task_id}: an execution has a delivery intent")
            self._events = [e for e in self._events if e.task_id != task_id]
            self._interactions = {
                i: q for i, q in self._interactions.items() if q.task_id != task_id
            }
            for execution_id in gone:
                del self._executions[execution_id]
            del self._tasks[task_id]

    def events(self, task_id: str) -> list[TaskEvent]:
        with self._lock:
            return [e for e in self._events if e.task_id == task_id]

    def last_event_id(self) -> int:
        with self._lock:
            return self._events[-1].id if self._events and self._events[-1].id else 0

    def events_since(self, after_id: int, limit: int = 500) -> list[TaskEvent]:
        with self._lock:
            return [e for e in self._events if (e.id or 0) > after_id][:limit]

    def _event(
        self,
        task_id: str,
        source: TaskState | None,
        target: TaskState,
        reason: str,
        at: datetime,
    ) -> None:
        self._next_event += 1
        event = TaskEvent(
            id=self._next_event,
            task_id=task_id,
            at=at,
            from_state=source,
            to_state=target,
            reason=reason,
        )
        self._events.append(event)

    # -- executions --------------------------------------------------------------------------

    def _insert_execution(self, execution: Execution) -> None:
        if execution.task_id not in self._tasks:
            raise IntegrityViolation(f"execution {execution.id}: no task {execution.task_id}")
        if execution.id in self._executions:
            raise IntegrityViolation(f"execution {execution.id} is already stored")
        self._executions[execution.id] = utc(execution)

    def add_execution(self, execution: Execution) -> Execution:
        with self._lock:
            self._insert_execution(execution)
        return execution

    def save_execution(self, execution: Execution) -> Execution:
        with self._lock:
            if execution.id not in self._executions:
                raise NotFound("execution", execution.id)
            if execution.task_id not in self._tasks:
                raise IntegrityViolation(f"execution {execution.id}: no task {execution.task_id}")
            self._executions[execution.id] = utc(execution)
        return execution

    def get_execution(self, execution_id: str) -> Execution:
        with self._lock:
            if execution_id not in self._executions:
                raise NotFound("execution", execution_id)
            return self._executions[execution_id]

    def _in_start_order(self, found: Iterable[Execution]) -> list[Execution]:
        return sorted(found, key=lambda e: (e.start_time, e.id))

    def executions_of(self, task_id: str) -> list[Execution]:
        with self._lock:
            found = [e for e in self._executions.values() if e.task_id == task_id]
        return self._in_start_order(found)

    def latest_executions(self, task_ids: Iterable[str]) -> dict[str, Execution]:
        ids = set(task_ids)
        with self._lock:
            found = [e for e in self._executions.values() if e.task_id in ids]
        return {e.task_id: e for e in self._in_start_order(found)}

    def close_running_execution(
        self,
        execution_id: str,
        status: TaskState,
        error: str,
        *,
        commits: Sequence[Commit] | None = None,
        cost_known: bool = True,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status, "end_time": utcnow(), "error_msg": error}
        if not cost_known:
            values["cost_known"] = False
        if commits is not None:
            values["commits"] = tuple(commits)
        if delivery is not None:
            values["delivery"] = delivery
        with self._lock:
            current = self._executions.get(execution_id)
            if current is None or current.status != TaskState.RUNNING:
                return False
            self._executions[execution_id] = current.model_copy(update=values)
            return True

    def record_delivery_intent(self, intent: DeliveryIntent) -> None:
        with self._lock:
            if intent.execution_id not in self._executions:
                raise IntegrityViolation(f"delivery intent: no execution {intent.execution_id}")
            self._intents[intent.execution_id] = replace(
                intent, created_at=intent.created_at.astimezone(UTC)
            )

    def delivery_intent(self, execution_id: str) -> DeliveryIntent | None:
        with self._lock:
            return self._intents.get(execution_id)

    def delivered_executions(self) -> list[Execution]:
        with self._lock:
            return [e for e in self._executions.values() if e.delivery is not None]

    def running_executions(self) -> list[Execution]:
        with self._lock:
            return [e for e in self._executions.values() if e.status == TaskState.RUNNING]


def _id(task: Task) -> str:
    return task.id


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - _TASK_FIELDS
    if unknown:
        raise ValueError(f"not fields of a task: {sorted(unknown)}")


if TYPE_CHECKING:
    from claudomator.store.base import Store

    def _implements(store: MemoryStore) -> Store:
        return store  # mypy checks here that MemoryStore is a Store
