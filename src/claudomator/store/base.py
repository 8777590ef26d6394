"""The store's ports: one small protocol per aggregate, and :class:`Store`, all of them.

Callers type against these; a backend implements all of :class:`Store`:
:class:`claudomator.store.sql.store.SqlStore` (SQLite now, through :mod:`claudomator.store.sqlite`)
and :class:`claudomator.store.memory.MemoryStore`. Every backend passes the contract suite in
``tests/contract/``. Rules every backend keeps:

* A state change goes through :meth:`TaskStore.transition`: checked against
  :data:`claudomator.models.TRANSITIONS` (:class:`~claudomator.errors.InvalidTransition`
  otherwise), guarded by the state that was read, and stored together with its event (and the
  claim's execution) or not at all.
* A missing record raises :class:`~claudomator.errors.NotFound` (kind, id) where a method
  promises one; a refused write raises :class:`~claudomator.errors.StoreError`.
* Lists keep their documented order (newest first, claim order, oldest first...).

This module imports no database library, so code that only types against the store stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

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
    TaskCost,
    TaskEvent,
    TaskState,
)
from claudomator.store.backlog import WriteBacklog
from claudomator.store.intents import DeliveryIntent
from claudomator.store.stats import ExecutionGroup, RunTime

INTAKE_RESERVATION_SECONDS = 60.0
"""How long a reserved intake key counts while its task does not exist (yet): past this, the
process that reserved it died before storing the task, and the key is free again."""


class TaskStore(Protocol):
    """Tasks and their event history (every state change, with its reason)."""

    def add_tasks(self, new_tasks: Sequence[Task], *, submit: bool = True) -> list[Task]:
        """Store ``new_tasks`` together (all or nothing); QUEUED if ``submit``, else PENDING."""
        ...

    def get_task(self, task_id: str) -> Task: ...

    def find_tasks(self, prefix: str) -> list[Task]:
        """Up to two tasks whose id starts with ``prefix`` (literally: no wildcards)."""
        ...

    def tasks_named(self, name: str, limit: int = 20) -> list[Task]:
        """Tasks called exactly ``name``, newest first."""
        ...

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
        """Tasks, newest first (then by id), filtered (AND) and paginated."""
        ...

    def children_of(self, task_ids: Iterable[str]) -> list[Task]:
        """Subtasks and checkers of the given tasks (one level), oldest first."""
        ...

    def queued_tasks(self, *, limit: int | None = None, offset: int = 0) -> list[Task]:
        """QUEUED tasks in claim order: highest priority first, then oldest, then id."""
        ...

    def states_of(self, task_ids: Iterable[str]) -> dict[str, TaskState]: ...

    def count_by_state(self) -> dict[TaskState, int]: ...

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
        """Move a task to ``target`` (with its event, ``fields`` and ``execution``, atomically)."""
        ...

    def update_task(self, task_id: str, **fields: Any) -> None:
        """Set fields that are not the state (ValueError for ``state``)."""
        ...

    def request_cancel(self, task_id: str) -> bool: ...

    def cancel_requested(self, task_ids: Iterable[str]) -> set[str]: ...

    def replace_task(self, task: Task, *, only_in: Iterable[TaskState]) -> Task: ...

    def delete_task(self, task_id: str, *, not_in: Iterable[TaskState]) -> None: ...

    def events(self, task_id: str) -> list[TaskEvent]:
        """A task's events, oldest first."""
        ...

    def last_event_id(self) -> int: ...

    def events_since(self, after_id: int, limit: int = 500) -> list[TaskEvent]: ...


class ExecutionStore(Protocol):
    """Executions (one run of an agent on a task) and their delivery intents."""

    def add_execution(self, execution: Execution) -> Execution: ...

    def save_execution(self, execution: Execution) -> Execution: ...

    def get_execution(self, execution_id: str) -> Execution: ...

    def executions_of(self, task_id: str) -> list[Execution]:
        """A task's executions, oldest first (by start time, then id)."""
        ...

    def latest_executions(self, task_ids: Iterable[str]) -> dict[str, Execution]: ...

    def close_running_execution(
        self,
        execution_id: str,
        status: TaskState,
        error: str,
        *,
        commits: Sequence[Commit] | None = None,
        cost_known: bool = True,
        delivery: DeliveryRecord | None = None,
    ) -> bool: ...

    def record_delivery_intent(self, intent: DeliveryIntent) -> None: ...

    def delivery_intent(self, execution_id: str) -> DeliveryIntent | None: ...

    def delivered_executions(self) -> list[Execution]: ...

    def running_executions(self) -> list[Execution]: ...


class InteractionStore(Protocol):
    """Questions agents asked, and their answers."""

    def add_interaction(self, interaction: Interaction) -> Interaction: ...

    def interactions_of(self, task_id: str) -> list[Interaction]: ...

    def answer_interaction(self, interaction_id: int, answer: str) -> bool: ...


class HealthStore(Protocol):
    """Each agent's health: rate limits and quotas seen, until when."""

    def agent_statuses(self) -> dict[str, AgentStatus]: ...

    def agent_status(self, agent: str) -> AgentStatus: ...

    def save_agent_status(self, status: AgentStatus) -> None: ...


class IntakeStore(Protocol):
    """Intake keys: one task per external event, whoever sees the event first."""

    def intake_holder(
        self, key: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None: ...

    def reserve_intake_key(
        self, key: str, task_id: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None: ...

    def release_intake_key(self, key: str, task_id: str) -> None: ...


class CatalogStore(Protocol):
    """Projects managed through the API, and stories."""

    def projects(self) -> list[Project]: ...

    def save_project(self, project: Project, *, create: bool) -> Project: ...

    def delete_project(self, name: str) -> None: ...

    def add_story(self, story: Story) -> Story: ...

    def stories(self) -> list[Story]: ...

    def get_story(self, story_id: str) -> Story: ...

    def story_progress(self, story_id: str) -> dict[TaskState, int]: ...

    def update_story(self, story_id: str, **fields: str) -> Story: ...

    def delete_story(self, story_id: str) -> None: ...


class PushStore(Protocol):
    """Browsers subscribed to Web Push notifications."""

    def save_push_subscription(self, subscription: PushSubscription) -> None: ...

    def push_subscriptions(self) -> list[PushSubscription]: ...

    def delete_push_subscription(self, endpoint: str) -> bool: ...


class StatsStore(Protocol):
    """Aggregates over many records (the SQL store computes each in one grouped query)."""

    def task_costs(self, task_ids: Iterable[str]) -> dict[str, TaskCost]: ...

    def execution_groups(self) -> list[ExecutionGroup]: ...

    def run_times(self) -> list[RunTime]: ...

    def queue_waits(self) -> list[float]: ...


class Store(
    TaskStore,
    ExecutionStore,
    InteractionStore,
    HealthStore,
    IntakeStore,
    CatalogStore,
    PushStore,
    StatsStore,
    Protocol,
):
    """Everything the rest of Claudomator asks of its store."""

    backlog: WriteBacklog  # writes refused by the database and being retried (this process)

    def close(self) -> None: ...
