"""The only place with SQL. One :class:`Store` owns every database access.

State changes go through :meth:`Store.transition`, which asks the state machine in
:mod:`claudomator.models`, updates the row only if it is still in the state that was read
(optimistic, so two processes cannot both win), and records an event row — all in one
transaction. Nothing here is SQLite-specific except the connection set-up in :func:`_engine`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from claudomator.errors import InvalidTransition, NotFound, ProjectExists, StoreError
from claudomator.models import (
    AgentConfig,
    AgentStatus,
    ChangeStats,
    Commit,
    Delivery,
    DeliveryRecord,
    Execution,
    Interaction,
    Priority,
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
from claudomator.store.tables import (
    agent_status,
    delivery_intents,
    executions,
    intake_keys,
    interactions,
    projects,
    push_subscriptions,
    stories,
    task_events,
    task_tags,
    tasks,
)

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_MAX_RACE_RETRIES = 5

INTAKE_RESERVATION_SECONDS = 60.0
"""How long a reserved intake key counts while its task does not exist (yet): past this, the
process that reserved it died before storing the task, and the key is free again."""


DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process's lock before the database refuses it."""


def _engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    parsed = sa.make_url(url)
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    # Enough pooled connections for the API's worker threads: past the pool size, every
    # request would open (and set up) a new connection and close it again.
    pooling: dict[str, Any] = {} if in_memory else {"pool_size": 20, "max_overflow": 20}
    engine = sa.create_engine(url, **pooling)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def _task_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "agent": task.agent.model_dump(mode="json"),
        "timeout": task.timeout,
        "priority": task.priority.value,
        "priority_rank": task.priority.rank,
        "tags": list(task.tags),
        "depends_on": list(task.depends_on),
        "parent_task_id": task.parent_task_id,
        "story_id": task.story_id,
        "state": task.state.value,
        "summary": task.summary,
        "question": task.question,
        "cancel_requested": task.cancel_requested,
        "acceptance_criteria": task.acceptance_criteria,
        "checker_for_task_id": task.checker_for_task_id,
        "check_verdict": task.check_verdict,
        "check_report": task.check_report,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "project_dir": task.agent.project_dir,
    }


def _event_row(
    task_id: str, source: TaskState | None, target: TaskState, reason: str, at: datetime
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "at": at,
        "from_state": source.value if source else None,
        "to_state": target.value,
        "reason": reason,
    }


def _tag_rows(task: Task) -> list[dict[str, str]]:
    return [{"task_id": task.id, "tag": tag} for tag in sorted(set(task.tags))]


def _task_from(row: RowMapping) -> Task:
    return Task(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        agent=AgentConfig.model_validate(row["agent"]),
        timeout=row["timeout"],
        priority=Priority(row["priority"]),
        tags=tuple(row["tags"]),
        depends_on=tuple(row["depends_on"]),
        parent_task_id=row["parent_task_id"],
        story_id=row["story_id"],
        state=TaskState(row["state"]),
        summary=row["summary"],
        question=row["question"],
        cancel_requested=bool(row["cancel_requested"]),
        acceptance_criteria=row["acceptance_criteria"],
        checker_for_task_id=row["checker_for_task_id"],
        check_verdict=row["check_verdict"],
        check_report=row["check_report"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _project_from(row: RowMapping) -> Project:
    return Project(
        name=row["name"],
        dir=row["dir"],
        build_command=tuple(row["build_command"]),
        delivery=Delivery(row["delivery"]),
        review=bool(row["review"]),
    )


def _event_from(row: RowMapping) -> TaskEvent:
    return TaskEvent(
        id=row["id"],
        task_id=row["task_id"],
        at=row["at"],
        from_state=TaskState(row["from_state"]) if row["from_state"] else None,
        to_state=TaskState(row["to_state"]),
        reason=row["reason"],
    )


def _execution_row(execution: Execution) -> dict[str, Any]:
    row = execution.model_dump(mode="python", exclude={"commits", "changestats", "delivery"})
    row["status"] = execution.status.value
    row["commits"] = [c.model_dump() for c in execution.commits]
    row["changestats"] = execution.changestats.model_dump()
    row["delivery"] = execution.delivery.model_dump() if execution.delivery else None
    return row


def _execution_from(row: RowMapping) -> Execution:
    data = dict(row)
    data["start_time"] = data["start_time"]
    data["end_time"] = data["end_time"]
    data["commits"] = tuple(Commit.model_validate(c) for c in data["commits"])
    data["changestats"] = ChangeStats.model_validate(data["changestats"])
    data["cost_estimated"] = bool(data["cost_estimated"])
    data["cost_known"] = bool(data["cost_known"])
    if data["delivery"] is not None:
        data["delivery"] = DeliveryRecord.model_validate(data["delivery"])
    return Execution.model_validate(data)


def _database_error(what: str, exc: sa.exc.SQLAlchemyError, engine: Engine) -> StoreError:
    """A :class:`StoreError` naming the database file and, where the file system says so, the
    cause: a full disk or a read-only file system ("disk I/O error" alone says neither)."""
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database:
        return StoreError(f"{what} {engine.url.render_as_string()}: {detail}")
    folder = Path(database).parent
    with contextlib.suppress(OSError):
        fs = os.statvfs(folder)
        if fs.f_flag & os.ST_RDONLY:
            detail = f"{detail} (the database is read-only: {folder} is on a read-only file system)"
        elif fs.f_bavail * fs.f_frsize < 1024 * 1024:
            detail = f"{detail} (no space left on device writing {folder})"
        elif not os.access(folder, os.W_OK):
            detail = f"{detail} (the database is read-only: no write permission on {folder})"
    return StoreError(f"{what} {database}: {detail}")


def newest_revision() -> str:
    """The newest migration's revision: its file's name (``NNNN_name``, numbered in order)."""
    names = [p.stem for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(names)


class Store:
    """Tasks, executions and their event history in one SQL database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Writers of this process queue here, in order, rather than in SQLite's busy handler,
        # which sleeps in growing steps (up to 100 ms) and so caps concurrent writes at a few
        # hundred a second. Other processes still meet through the busy timeout.
        self._write_lock = threading.RLock()
        self.backlog = WriteBacklog()  # writes refused by the database and being retried

    @classmethod
    def open(cls, url_or_path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (creating and migrating as needed) a database by URL or SQLite file path.

        ``busy_timeout``: seconds a statement waits for another process's lock (SQLite).
        """
        url = str(url_or_path)
        if "://" not in url:
            path = Path(url).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            store = cls(_engine(f"sqlite:///{path}", busy_timeout))
            # processes starting together on a new file must not both create the schema
            with path.with_name(path.name + ".migrate.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                store.migrate()
            return store
        store = cls(_engine(url, busy_timeout))
        store.migrate()
        return store

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied.

        A database already at the newest revision is recognised with one query, without
        loading Alembic (which costs a command-line call a tenth of a second).
        """
        if self._revision() == newest_revision():
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self._engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise _database_error("cannot migrate database", exc, self._engine) from exc

    def _revision(self) -> str | None:
        """The database's Alembic revision (None for a new or unversioned database)."""
        try:
            with self._engine.connect() as conn:
                if not sa.inspect(conn).has_table("alembic_version"):
                    return None
                found = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                rows = [str(r[0]) for r in found]
        except sa.exc.SQLAlchemyError as exc:
            raise _database_error("cannot read database", exc, self._engine) from exc
        return rows[0] if len(rows) == 1 else None

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise _database_error("cannot read database", exc, self._engine) from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._write_lock, self._engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise _database_error("cannot write database", exc, self._engine) from exc

    # -- tasks -------------------------------------------------------------------------------

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
            task_rows.append(_task_row(task))
            tag_rows += _tag_rows(task)
            event_rows.append(_event_row(task.id, None, TaskState.PENDING, "created", now))
            if submit:
                pending, queued = TaskState.PENDING, TaskState.QUEUED
                event_rows.append(_event_row(task.id, pending, queued, "submitted", now))
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
        return _task_from(row)

    def find_tasks(self, prefix: str) -> list[Task]:
        """Tasks whose id starts with ``prefix`` (for short ids typed by people)."""
        query = sa.select(tasks).where(tasks.c.id.startswith(prefix, autoescape=True)).limit(2)
        with self._read() as conn:
            return [_task_from(r) for r in conn.execute(query).mappings()]

    def tasks_named(self, name: str, limit: int = 20) -> list[Task]:
        """Tasks called exactly ``name``, newest first (names are not unique)."""
        query = (
            sa.select(tasks)
            .where(tasks.c.name == name)
            .order_by(tasks.c.created_at.desc(), tasks.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_task_from(r) for r in conn.execute(query).mappings()]

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
            return [_task_from(r) for r in conn.execute(query).mappings()]

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
            return [_task_from(r) for r in conn.execute(query).mappings()]

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
            return [_task_from(r) for r in conn.execute(query).mappings()]

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
        for _ in range(_MAX_RACE_RETRIES):
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
                        conn.execute(executions.insert().values(_execution_row(execution)))
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
        row = _task_row(task.model_copy(update={"updated_at": utcnow()}))
        for key in ("id", "state", "created_at", "summary", "question", "cancel_requested"):
            row.pop(key)
        with self._tx() as conn:
            count = conn.execute(
                tasks.update().where(tasks.c.id == task.id, tasks.c.state.in_(allowed)).values(row)
            ).rowcount
            if count:
                conn.execute(task_tags.delete().where(task_tags.c.task_id == task.id))
                if task.tags:
                    conn.execute(task_tags.insert(), _tag_rows(task))
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
            return [_event_from(r) for r in conn.execute(query).mappings()]

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
            return [_event_from(r) for r in conn.execute(query).mappings()]

    @staticmethod
    def _event(
        conn: Connection,
        task_id: str,
        source: TaskState | None,
        target: TaskState,
        reason: str,
        at: datetime,
    ) -> None:
        conn.execute(task_events.insert(), _event_row(task_id, source, target, reason, at))

    # -- executions --------------------------------------------------------------------------

    def add_execution(self, execution: Execution) -> Execution:
        with self._tx() as conn:
            conn.execute(executions.insert().values(_execution_row(execution)))
        return execution

    def save_execution(self, execution: Execution) -> Execution:
        """Write every field of ``execution`` over its row."""
        row = _execution_row(execution)
        del row["id"]
        with self._tx() as conn:
            count = conn.execute(
                executions.update().where(executions.c.id == execution.id).values(row)
            ).rowcount
        if count == 0:
            raise NotFound("execution", execution.id)
        return execution

    def get_execution(self, execution_id: str) -> Execution:
        query = sa.select(executions).where(executions.c.id == execution_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("execution", execution_id)
        return _execution_from(row)

    def executions_of(self, task_id: str) -> list[Execution]:
        """A task's executions, oldest first."""
        query = (
            sa.select(executions)
            .where(executions.c.task_id == task_id)
            .order_by(executions.c.start_time, executions.c.id)
        )
        with self._read() as conn:
            return [_execution_from(r) for r in conn.execute(query).mappings()]

    def latest_executions(self, task_ids: Iterable[str]) -> dict[str, Execution]:
        """The newest execution of each task that has one."""
        ids = list(task_ids)
        if not ids:
            return {}
        query = (
            sa.select(executions)
            .where(executions.c.task_id.in_(ids))
            .order_by(executions.c.start_time, executions.c.id)
        )
        with self._read() as conn:
            return {r["task_id"]: _execution_from(r) for r in conn.execute(query).mappings()}

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
        """End an execution that is still RUNNING (False if someone already ended it);
        ``commits`` and ``delivery``, if given, are recorded as its delivered commits and
        where they went; ``cost_known`` False when its agent ran but never said what it cost
        (its orchestrator died)."""
        values: dict[str, Any] = {"status": status.value, "end_time": utcnow(), "error_msg": error}
        if not cost_known:
            values["cost_known"] = False
        if commits is not None:
            values["commits"] = [c.model_dump(mode="json") for c in commits]
        if delivery is not None:
            values["delivery"] = delivery.model_dump()
        with self._tx() as conn:
            count = conn.execute(
                executions.update()
                .where(
                    executions.c.id == execution_id,
                    executions.c.status == TaskState.RUNNING.value,
                )
                .values(values)
            ).rowcount
        return count == 1

    def record_delivery_intent(self, intent: DeliveryIntent) -> None:
        """Write (or overwrite) the delivery intent of ``intent.execution_id``."""
        row = dataclasses.asdict(intent)
        with self._tx() as conn:
            conn.execute(
                delivery_intents.delete().where(
                    delivery_intents.c.execution_id == intent.execution_id
                )
            )
            conn.execute(delivery_intents.insert().values(row))

    def delivery_intent(self, execution_id: str) -> DeliveryIntent | None:
        query = sa.select(delivery_intents).where(delivery_intents.c.execution_id == execution_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return DeliveryIntent(**dict(row)) if row is not None else None

    def delivered_executions(self) -> list[Execution]:
        """Every execution with a recorded delivery (for retention: whose branch is whose)."""
        query = sa.select(executions).where(executions.c.delivery.is_not(None))
        with self._read() as conn:
            found = [_execution_from(r) for r in conn.execute(query).mappings()]
        return [e for e in found if e.delivery is not None]  # a JSON null is not SQL NULL

    def running_executions(self) -> list[Execution]:
        query = sa.select(executions).where(executions.c.status == TaskState.RUNNING.value)
        with self._read() as conn:
            return [_execution_from(r) for r in conn.execute(query).mappings()]

    # -- questions and answers ---------------------------------------------------------------

    def add_interaction(self, interaction: Interaction) -> Interaction:
        row = interaction.model_dump(exclude={"id"})
        row["options"] = list(interaction.options)
        with self._tx() as conn:
            new_id = conn.execute(interactions.insert().values(row)).inserted_primary_key
        return interaction.model_copy(update={"id": new_id[0] if new_id else None})

    def interactions_of(self, task_id: str) -> list[Interaction]:
        """A task's questions and answers, oldest first."""
        query = (
            sa.select(interactions)
            .where(interactions.c.task_id == task_id)
            .order_by(interactions.c.id)
        )
        with self._read() as conn:
            return [
                Interaction.model_validate({**r, "options": tuple(r["options"])})
                for r in conn.execute(query).mappings()
            ]

    def answer_interaction(self, interaction_id: int, answer: str) -> bool:
        """Record the answer unless the question was already answered."""
        with self._tx() as conn:
            count = conn.execute(
                interactions.update()
                .where(interactions.c.id == interaction_id, interactions.c.answered_at.is_(None))
                .values(answer=answer, answered_at=utcnow())
            ).rowcount
        return count == 1

    # -- agent health ------------------------------------------------------------------------

    def agent_statuses(self) -> dict[str, AgentStatus]:
        with self._read() as conn:
            return {
                r["agent"]: AgentStatus.model_validate(dict(r))
                for r in conn.execute(sa.select(agent_status)).mappings()
            }

    def agent_status(self, agent: str) -> AgentStatus:
        query = sa.select(agent_status).where(agent_status.c.agent == agent)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return AgentStatus.model_validate(dict(row)) if row else AgentStatus(agent=agent)

    def save_agent_status(self, status: AgentStatus) -> None:
        """Insert or replace an agent's status (portable: update, then insert if absent)."""
        row = status.model_dump()
        with self._tx() as conn:
            updated = conn.execute(
                agent_status.update().where(agent_status.c.agent == status.agent).values(row)
            ).rowcount
            if updated == 0:
                conn.execute(agent_status.insert().values(row))

    # -- intake keys: one task per external event --------------------------------------------

    def intake_holder(
        self, key: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None:
        """The id of the task that event ``key`` created (or is about to), or None if it is free.

        A key is free when nobody reserved it, or when its task does not exist and the
        reservation is older than ``stale_after`` seconds (the task was deleted, or the process
        that reserved the key died before storing it).
        """
        with self._read() as conn:
            row = conn.execute(sa.select(intake_keys).where(intake_keys.c.key == key)).first()
            if row is None or not self._holds(conn, row, utcnow(), stale_after):
                return None
            return str(row.task_id)

    def reserve_intake_key(
        self, key: str, task_id: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None:
        """Reserve ``key`` for ``task_id``, which the caller stores next; None when reserved.

        Otherwise the id of the task that holds the key. The primary key decides a race: of two
        callers reserving the same key at once, exactly one gets None. A caller that then fails
        to store its task gives the key back with :meth:`release_intake_key`.
        """
        for _ in range(_MAX_RACE_RETRIES):
            now = utcnow()
            try:
                with self._tx() as conn:
                    conn.execute(
                        intake_keys.insert().values(key=key, task_id=task_id, created_at=now)
                    )
                return None
            except sa.exc.IntegrityError:
                pass  # taken: by a live task, or by a stale reservation we may take over
            with self._tx() as conn:
                query = sa.select(intake_keys).where(intake_keys.c.key == key)
                row = conn.execute(query).first()
                if row is None:
                    continue  # given back meanwhile: try again
                if self._holds(conn, row, now, stale_after):
                    return str(row.task_id)
                taken = conn.execute(
                    intake_keys.update()
                    .where(intake_keys.c.key == key, intake_keys.c.task_id == row.task_id)
                    .values(task_id=task_id, created_at=now)
                ).rowcount
            if taken == 1:
                logger.info(
                    "intake key %s: taken over from task %s, which does not exist",
                    key,
                    row.task_id,
                    extra={"action": "intake_key"},
                )
                return None
        raise StoreError(f"intake key {key!r} kept changing under us; gave up")

    def release_intake_key(self, key: str, task_id: str) -> None:
        """Give back ``key`` if ``task_id`` still holds it (its task could not be stored)."""
        with self._tx() as conn:
            conn.execute(
                intake_keys.delete().where(
                    intake_keys.c.key == key, intake_keys.c.task_id == task_id
                )
            )

    @staticmethod
    def _holds(conn: Connection, row: sa.Row[Any], now: datetime, stale_after: float) -> bool:
        """Whether an intake key row still counts: its task exists or it was reserved lately."""
        if now - row.created_at < timedelta(seconds=stale_after):
            return True
        query = sa.select(tasks.c.id).where(tasks.c.id == row.task_id)
        return conn.execute(query).first() is not None

    # -- projects (those managed through the API; the config file holds the others) ---------

    def projects(self) -> list[Project]:
        query = sa.select(projects).order_by(projects.c.name)
        with self._read() as conn:
            return [_project_from(r) for r in conn.execute(query).mappings()]

    def save_project(self, project: Project, *, create: bool) -> Project:
        """Insert (``create``) or replace a project; NotFound / StoreError on a clash."""
        row = {
            "dir": project.dir,
            "build_command": list(project.build_command),
            "delivery": project.delivery.value,
            "review": project.review,
        }
        if create:
            try:
                with self._tx() as conn:
                    conn.execute(
                        projects.insert().values(name=project.name, created_at=utcnow(), **row)
                    )
            except sa.exc.IntegrityError as exc:
                raise ProjectExists(project.name) from exc
        else:
            with self._tx() as conn:
                count = conn.execute(
                    projects.update().where(projects.c.name == project.name).values(row)
                ).rowcount
            if count == 0:
                raise NotFound("project", project.name)
        return project

    def delete_project(self, name: str) -> None:
        with self._tx() as conn:
            count = conn.execute(projects.delete().where(projects.c.name == name)).rowcount
        if count == 0:
            raise NotFound("project", name)

    # -- stories -----------------------------------------------------------------------------

    def add_story(self, story: Story) -> Story:
        with self._tx() as conn:
            conn.execute(stories.insert().values(story.model_dump()))
        return story

    def stories(self) -> list[Story]:
        query = sa.select(stories).order_by(stories.c.created_at.desc(), stories.c.id)
        with self._read() as conn:
            return [Story.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def get_story(self, story_id: str) -> Story:
        query = sa.select(stories).where(stories.c.id == story_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("story", story_id)
        return Story.model_validate(dict(row))

    def story_progress(self, story_id: str) -> dict[TaskState, int]:
        """How many of the story's tasks are in each state."""
        query = (
            sa.select(tasks.c.state, sa.func.count())
            .where(tasks.c.story_id == story_id)
            .group_by(tasks.c.state)
        )
        with self._read() as conn:
            return {TaskState(state): int(n) for state, n in conn.execute(query)}

    def update_story(self, story_id: str, **fields: str) -> Story:
        """Change a story's ``name`` and/or ``description``."""
        if fields:
            with self._tx() as conn:
                count = conn.execute(
                    stories.update().where(stories.c.id == story_id).values(**fields)
                ).rowcount
            if count == 0:
                raise NotFound("story", story_id)
        return self.get_story(story_id)

    def delete_story(self, story_id: str) -> None:
        """Delete a story; its tasks stay, without a story."""
        with self._tx() as conn:
            conn.execute(tasks.update().where(tasks.c.story_id == story_id).values(story_id=None))
            count = conn.execute(stories.delete().where(stories.c.id == story_id)).rowcount
        if count == 0:
            raise NotFound("story", story_id)

    # -- web push ----------------------------------------------------------------------------

    def save_push_subscription(self, subscription: PushSubscription) -> None:
        """Remember a browser's subscription (a known endpoint gets its new keys)."""
        with self._tx() as conn:
            conn.execute(
                push_subscriptions.delete().where(
                    push_subscriptions.c.endpoint == subscription.endpoint
                )
            )
            conn.execute(push_subscriptions.insert().values(subscription.model_dump()))

    def push_subscriptions(self) -> list[PushSubscription]:
        query = sa.select(push_subscriptions).order_by(push_subscriptions.c.created_at)
        with self._read() as conn:
            rows = conn.execute(query).mappings()
            return [PushSubscription.model_validate(dict(r)) for r in rows]

    def delete_push_subscription(self, endpoint: str) -> bool:
        """Forget a subscription; False if it was unknown."""
        with self._tx() as conn:
            count = conn.execute(
                push_subscriptions.delete().where(push_subscriptions.c.endpoint == endpoint)
            ).rowcount
        return bool(count)
