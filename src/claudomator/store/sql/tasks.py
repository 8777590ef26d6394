"""Tasks and their event history: adding, reading, listing, and the one guarded transition."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from claudomator.errors import InvalidTransition, NotFound, StoreError
from claudomator.models import Execution, Task, TaskEvent, TaskState, check_transition, utcnow
from claudomator.store.sql import rows as conv
from claudomator.store.sql.base import MAX_RACE_RETRIES, SqlBase
from claudomator.store.tables import executions, interactions, task_events, task_tags, tasks

logger = logging.getLogger(__name__)


class TaskQueries(SqlBase):
    """The :class:`~claudomator.store.base.TaskStore` part of the SQL store."""

    def add_tasks(self, new_tasks: Sequence[Task], *, submit: bool = True) -> list[Task]:
        """Store ``new_tasks`` in one transaction (all or nothing); QUEUED if ``submit``."""
        stored: list[Task] = []
        now = utcnow()
        state = TaskState.QUEUED if submit else TaskState.PENDING
        task_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, str]] = []
        event_rows: list[dict[str, Any]] = []
        for offset, new in enumerate(new_tasks):
            # one microsecond apart, so tasks of one batch are claimed in file order
            created = now + timedelta(microseconds=offset)
            stamp = {"state": state, "created_at": created, "updated_at": created}
            task = new.model_copy(update=stamp)
            task_rows.append(conv.task_row(task))
            tag_rows += conv.tag_rows(task)
            event_rows.append(conv.event_row(task.id, None, TaskState.PENDING, "created", now))
            if submit:
                pending, queued = TaskState.PENDING, TaskState.QUEUED
                event_rows.append(conv.event_row(task.id, pending, queued, "submitted", now))
            stored.append(task)
        if not stored:
            return stored
        with self._tx() as conn:  # one statement per table, whatever the batch size
            conn.execute(tasks.insert(), task_rows)
            if tag_rows:
                conn.execute(task_tags.insert(), tag_rows)
            conn.execute(task_events.insert(), event_rows)
        return stored

    def get_task(self, task_id: str) -> Task:
        with self._read() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None:
            raise NotFound("task", task_id)
        return conv.task_from(row)

    def find_tasks(self, prefix: str) -> list[Task]:
        """Tasks whose id starts with ``prefix`` (for short ids typed by people)."""
        query = sa.select(tasks).where(tasks.c.id.startswith(prefix, autoescape=True)).limit(2)
        with self._read() as conn:
            return [conv.task_from(r) for r in conn.execute(query).mappings()]

    def tasks_named(self, name: str, limit: int = 20) -> list[Task]:
        """Tasks called exactly ``name``, newest first (names are not unique)."""
        query = (
            sa.select(tasks)
            .where(tasks.c.name == name)
            .order_by(tasks.c.created_at.desc(), tasks.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [conv.task_from(r) for r in conn.execute(query).mappings()]

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
        """Tasks, newest first, optionally filtered; paginated.

        Filters combine with AND: state (any of ``states``), id, parent, story, project
        directory ("" for tasks without a project) and every one of ``tags``.
        """
        query = sa.select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.id)
        if states is not None:
            query = query.where(tasks.c.state.in_([s.value for s in states]))
        if ids is not None:
            query = query.where(tasks.c.id.in_(list(ids)))
        if parent is not None:
            query = query.where(tasks.c.parent_task_id == parent)
        if story is not None:
            query = query.where(tasks.c.story_id == story)
        if project_dir is not None:
            query = query.where(tasks.c.project_dir == project_dir)
        for tag in set(tags):
            tagged = sa.select(task_tags.c.task_id).where(task_tags.c.tag == tag)
            query = query.where(tasks.c.id.in_(tagged))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self._read() as conn:
            return [conv.task_from(r) for r in conn.execute(query).mappings()]

    def children_of(self, task_ids: Iterable[str]) -> list[Task]:
        """Subtasks and checkers of the given tasks (one level)."""
        ids = list(task_ids)
        if not ids:
            return []
        query = (
            sa.select(tasks)
            .where(sa.or_(tasks.c.parent_task_id.in_(ids), tasks.c.checker_for_task_id.in_(ids)))
            .order_by(tasks.c.created_at)
        )
        with self._read() as conn:
            return [conv.task_from(r) for r in conn.execute(query).mappings()]

    def queued_tasks(self, *, limit: int | None = None, offset: int = 0) -> list[Task]:
        """QUEUED tasks in claim order: highest priority first, then oldest; paginated."""
        query = (
            sa.select(tasks)
            .where(tasks.c.state == TaskState.QUEUED.value)
            .order_by(tasks.c.priority_rank.desc(), tasks.c.created_at, tasks.c.id)
            .limit(limit)
            .offset(offset or None)
        )
        with self._read() as conn:
            return [conv.task_from(r) for r in conn.execute(query).mappings()]

    def states_of(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        ids = list(task_ids)
        if not ids:
            return {}
        query = sa.select(tasks.c.id, tasks.c.state).where(tasks.c.id.in_(ids))
        with self._read() as conn:
            return {r.id: TaskState(r.state) for r in conn.execute(query)}

    def count_by_state(self) -> dict[TaskState, int]:
        query = sa.select(tasks.c.state, sa.func.count()).group_by(tasks.c.state)
        with self._read() as conn:
            return {TaskState(state): int(n) for state, n in conn.execute(query)}

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
        """Move a task to ``target``, recording why; also sets ``fields`` (summary, question...).

        With ``expected``, the change only happens from that state (raises InvalidTransition
        otherwise): this is how a claim or a cancel wins a race against another process.
        An ``execution`` is inserted in the same transaction (a claim and its execution row
        exist together or not at all, so a crash cannot leave a RUNNING task without one).
        """
        for _ in range(MAX_RACE_RETRIES):
            current = self.get_task(task_id)
            source = current.state
            if expected is not None and source != expected:
                raise InvalidTransition(task_id, source.value, target.value)
            check_transition(task_id, source, target)
            now = utcnow()
            changes = dict(fields)
            if target == TaskState.QUEUED or target.is_terminal:
                changes.setdefault("cancel_requested", False)
            values = {"state": target.value, "updated_at": now, **changes}
            with self._tx() as conn:
                updated = conn.execute(
                    tasks.update()
                    .where(tasks.c.id == task_id, tasks.c.state == source.value)
                    .values(values)
                ).rowcount
                if updated == 1:
                    self._event(conn, task_id, source, target, reason, now)
                    if execution is not None:
                        conn.execute(executions.insert().values(conv.execution_row(execution)))
                    logger.info(
                        "task %s: %s -> %s (%s)",
                        task_id,
                        source.value,
                        target.value,
                        reason,
                        extra={"action": "transition"},
                    )
                    return current.model_copy(
                        update={"state": target, "updated_at": now, **changes}
                    )
            if expected is not None:
                raise InvalidTransition(task_id, self.get_task(task_id).state.value, target.value)
        raise StoreError(f"task {task_id}: state kept changing under us; gave up")

    def update_task(self, task_id: str, **fields: Any) -> None:
        """Set fields that are not the state (use :meth:`transition` for the state)."""
        if "state" in fields:
            raise ValueError("use transition() to change a task's state")
        with self._tx() as conn:
            count = conn.execute(
                tasks.update().where(tasks.c.id == task_id).values(updated_at=utcnow(), **fields)
            ).rowcount
        if count == 0:
            raise NotFound("task", task_id)

    def request_cancel(self, task_id: str) -> bool:
        """Flag a RUNNING task for its pool to stop; False if it is no longer RUNNING."""
        with self._tx() as conn:
            count = conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.state == TaskState.RUNNING.value)
                .values(cancel_requested=True, updated_at=utcnow())
            ).rowcount
        return count == 1

    def cancel_requested(self, task_ids: Iterable[str]) -> set[str]:
        """Which of ``task_ids`` have a cancel request (a cheap check for a pool's running)."""
        ids = list(task_ids)
        if not ids:
            return set()
        query = sa.select(tasks.c.id).where(tasks.c.id.in_(ids), tasks.c.cancel_requested)
        with self._read() as conn:
            return {str(r.id) for r in conn.execute(query)}

    def replace_task(self, task: Task, *, only_in: Iterable[TaskState]) -> Task:
        """Overwrite a task's definition, only while it is in one of ``only_in``."""
        allowed = [s.value for s in only_in]
        row = conv.task_row(task.model_copy(update={"updated_at": utcnow()}))
        for key in ("id", "state", "created_at", "summary", "question", "cancel_requested"):
            row.pop(key)
        with self._tx() as conn:
            count = conn.execute(
                tasks.update().where(tasks.c.id == task.id, tasks.c.state.in_(allowed)).values(row)
            ).rowcount
            if count:
                conn.execute(task_tags.delete().where(task_tags.c.task_id == task.id))
                if task.tags:
                    conn.execute(task_tags.insert(), conv.tag_rows(task))
        if count == 0:
            current = self.get_task(task.id)
            raise InvalidTransition(task.id, current.state.value, "edited")
        return self.get_task(task.id)

    def delete_task(self, task_id: str, *, not_in: Iterable[TaskState]) -> None:
        """Delete a task with its history, executions and questions (not in ``not_in``)."""
        refused = [s.value for s in not_in]
        with self._tx() as conn:
            state = conn.execute(sa.select(tasks.c.state).where(tasks.c.id == task_id)).scalar()
            if state is None:
                raise NotFound("task", task_id)
            if state in refused:
                raise InvalidTransition(task_id, state, "deleted")
            for table in (task_events, interactions, executions, task_tags):
                conn.execute(table.delete().where(table.c.task_id == task_id))
            conn.execute(tasks.delete().where(tasks.c.id == task_id))

    def events(self, task_id: str) -> list[TaskEvent]:
        query = (
            sa.select(task_events)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.id)
        )
        with self._read() as conn:
            return [conv.event_from(r) for r in conn.execute(query).mappings()]

    def last_event_id(self) -> int:
        """The id of the newest state change of any task (0 before any)."""
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(task_events.c.id))).scalar() or 0)

    def events_since(self, after_id: int, limit: int = 500) -> list[TaskEvent]:
        """State changes of every task with an id above ``after_id``, oldest first."""
        query = (
            sa.select(task_events)
            .where(task_events.c.id > after_id)
            .order_by(task_events.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [conv.event_from(r) for r in conn.execute(query).mappings()]

    @staticmethod
    def _event(
        conn: Connection,
        task_id: str,
        source: TaskState | None,
        target: TaskState,
        reason: str,
        at: datetime,
    ) -> None:
        conn.execute(task_events.insert(), conv.event_row(task_id, source, target, reason, at))
