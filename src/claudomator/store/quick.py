"""The SQLite store's quick path: the standard library's ``sqlite3`` for the short commands.

``claudomator list``, ``show`` and ``answer`` must answer in well under half a second, and
importing SQLAlchemy alone takes about 0.3 s on a small machine. :class:`QuickStore` runs the
reads those commands make, and the guarded transition an answer makes, itself, with the same
SQL and the same row conversions (:mod:`claudomator.store.sql.rows`) as the SQL store. Every
other method goes to a full :class:`~claudomator.store.sql.store.SqlStore` on the same file,
opened the first time one is needed; so a :class:`QuickStore` is a whole
:class:`~claudomator.store.base.Store`, and the store contract suite (``tests/contract``) runs
unchanged against it.

It opens only a database file already at the newest schema revision: for any other,
:func:`open_quick` returns None and the caller opens the full store, which migrates. The
column layout it decodes (JSON, timestamps) is
:data:`claudomator.store.sqlite_codec.COLUMNS`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from claudomator.errors import InvalidTransition, NotFound, StoreError
from claudomator.models import (
    AgentStatus,
    Execution,
    Interaction,
    Task,
    TaskCost,
    TaskEvent,
    TaskState,
    check_transition,
    utcnow,
)
from claudomator.store.refusals import refused
from claudomator.store.revisions import newest_revision
from claudomator.store.sql import rows as conv
from claudomator.store.sqlite_codec import decoded, encoded, stored_time

if TYPE_CHECKING:
    from claudomator.store.base import Store

logger = logging.getLogger(__name__)

BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process's lock, as the SQL store's SQLite engine does."""
CHUNK = 500  # task ids per query, as the SQL store sends them
MAX_RACE_RETRIES = 5


def _in(ids: list[str]) -> str:
    """Placeholders for an ``IN (...)`` of ``ids`` (the values themselves are bound)."""
    return ", ".join("?" * len(ids))


# Every statement here is built from fixed fragments, placeholders (``_in``) and column names
# checked against the table (``_task_columns``); values are only ever bound: hence the noqa.


class QuickStore:
    """A migrated SQLite file through ``sqlite3``; what it does not do itself, the full store
    does (see the module's docstring)."""

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        # one connection, used by one thread at a time (the lock), autocommitting reads
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        # the pragmas the SQL store's SQLite engine sets on each connection (store/sqlite.py)
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._full: Store | None = None
        self._columns: frozenset[str] | None = None

    # -- the full store, for everything else -------------------------------------------------

    def full(self) -> Store:
        """The SQL store on the same file (opened, with SQLAlchemy, on first use)."""
        with self._lock:
            if self._full is None:
                from claudomator.store.sqlite import open_sqlite

                logger.debug("quick store %s: opening the full store", self.path)
                self._full = open_sqlite(self.path, busy_timeout=self._busy_timeout)
            return self._full

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never for private names (pickling, copy, half-built)
            raise AttributeError(name)
        return getattr(self.full(), name)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._full is not None:
                self._full.close()
                self._full = None

    def migrate(self) -> None:
        """Nothing to do: a quick store opens only a database at the newest revision."""

    # -- plumbing ----------------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:
            raise refused("cannot read database", str(exc), str(self.path)) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise refused("cannot write database", str(exc), str(self.path)) from exc

    def _task_columns(self) -> frozenset[str]:
        """The tasks table's columns, as the database has them."""
        if self._columns is None:
            rows = self._rows("SELECT name FROM pragma_table_info('tasks')")
            self._columns = frozenset(str(r["name"]) for r in rows)
        return self._columns

    def _tasks(self, where: str, params: Iterable[Any] = (), tail: str = "") -> list[Task]:
        sql = f"SELECT * FROM tasks WHERE {where} {tail}"  # noqa: S608
        return [conv.task_from(decoded("tasks", r)) for r in self._rows(sql, params)]

    def _executions(self, where: str, params: Iterable[Any]) -> list[Execution]:
        sql = f"SELECT * FROM executions WHERE {where} ORDER BY start_time, id"  # noqa: S608
        return [conv.execution_from(decoded("executions", r)) for r in self._rows(sql, params)]

    # -- tasks -------------------------------------------------------------------------------

    def get_task(self, task_id: str) -> Task:
        found = self._tasks("id = ?", [task_id])
        if not found:
            raise NotFound("task", task_id)
        return found[0]

    def find_tasks(self, prefix: str) -> list[Task]:
        """Tasks whose id starts with ``prefix`` (at most two: one, or "ambiguous")."""
        escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return self._tasks("id LIKE ? ESCAPE '/'", [f"{escaped}%"], "LIMIT 2")

    def tasks_named(self, name: str, limit: int = 20) -> list[Task]:
        return self._tasks("name = ?", [name, limit], "ORDER BY created_at DESC, id LIMIT ?")

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
        where, params = ["1"], list[Any]()
        if states is not None:
            values = [s.value for s in states]
            where.append(f"state IN ({_in(values)})")
            params += values
        if ids is not None:
            wanted = list(ids)
            where.append(f"id IN ({_in(wanted)})")
            params += wanted
        for column, value in (
            ("parent_task_id", parent),
            ("story_id", story),
            ("project_dir", project_dir),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        for tag in set(tags):
            where.append("id IN (SELECT task_id FROM task_tags WHERE tag = ?)")
            params.append(tag)
        tail = "ORDER BY created_at DESC, id"
        if limit is not None or offset:
            tail += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else limit, offset]
        return self._tasks(" AND ".join(where), params, tail)

    def children_of(self, task_ids: Iterable[str]) -> list[Task]:
        ids = list(task_ids)
        if not ids:
            return []
        where = f"parent_task_id IN ({_in(ids)}) OR checker_for_task_id IN ({_in(ids)})"
        return self._tasks(where, ids + ids, "ORDER BY created_at")

    def states_of(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        ids = list(task_ids)
        if not ids:
            return {}
        query = f"SELECT id, state FROM tasks WHERE id IN ({_in(ids)})"  # noqa: S608
        rows = self._rows(query, ids)
        return {r["id"]: TaskState(r["state"]) for r in rows}

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
        """The guarded state change with its event row, as the SQL store makes it; a claim
        (with its ``execution``) is the full store's."""
        if execution is not None:
            return self.full().transition(
                task_id, target, reason, expected=expected, execution=execution, **fields
            )
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
            unknown = set(values) - self._task_columns()
            if unknown:
                raise ValueError(f"task {task_id}: no such task field(s) {sorted(unknown)}")
            columns = ", ".join(f"{name} = ?" for name in values)
            params = [encoded("tasks", k, v) for k, v in values.items()]
            with self._tx() as conn:
                updated = conn.execute(
                    f"UPDATE tasks SET {columns} WHERE id = ? AND state = ?",  # noqa: S608
                    [*params, task_id, source.value],
                ).rowcount
                if updated == 1:
                    conn.execute(
                        "INSERT INTO task_events (task_id, at, from_state, to_state, reason)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (task_id, stored_time(now), source.value, target.value, reason),
                    )
            if updated == 1:
                logger.info(
                    "task %s: %s -> %s (%s)",
                    task_id,
                    source.value,
                    target.value,
                    reason,
                    extra={"action": "transition"},
                )
                return current.model_copy(update={"state": target, "updated_at": now, **changes})
            if expected is not None:
                raise InvalidTransition(task_id, self.get_task(task_id).state.value, target.value)
        raise StoreError(f"task {task_id}: state kept changing under us; gave up")

    def request_cancel(self, task_id: str) -> bool:
        """Flag a RUNNING task for its pool to stop; False if it is no longer RUNNING."""
        with self._tx() as conn:
            count = conn.execute(
                "UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state = ?",
                (stored_time(utcnow()), task_id, TaskState.RUNNING.value),
            ).rowcount
        return bool(count == 1)

    def events(self, task_id: str) -> list[TaskEvent]:
        rows = self._rows("SELECT * FROM task_events WHERE task_id = ? ORDER BY id", [task_id])
        return [conv.event_from(decoded("task_events", r)) for r in rows]

    # -- executions and costs ----------------------------------------------------------------

    def get_execution(self, execution_id: str) -> Execution:
        found = self._executions("id = ?", [execution_id])
        if not found:
            raise NotFound("execution", execution_id)
        return found[0]

    def executions_of(self, task_id: str) -> list[Execution]:
        return self._executions("task_id = ?", [task_id])

    def latest_executions(self, task_ids: Iterable[str]) -> dict[str, Execution]:
        ids = list(task_ids)
        latest: dict[str, Execution] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for execution in self._executions(f"task_id IN ({_in(chunk)})", chunk):
                latest[execution.task_id] = execution  # oldest first: the last one stays
        return latest

    def task_costs(self, task_ids: Iterable[str]) -> dict[str, TaskCost]:
        ids = list(dict.fromkeys(task_ids))
        costs = {task_id: TaskCost() for task_id in ids}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            query = (
                "SELECT task_id, coalesce(sum(cost_usd), 0),"
                " sum(CASE WHEN cost_known THEN 0 ELSE 1 END),"
                " sum(CASE WHEN cost_estimated THEN 1 ELSE 0 END), count(*), count(end_time)"
                " FROM executions WHERE task_id IN ({}) GROUP BY task_id"
            )
            rows = self._rows(query.format(_in(chunk)), chunk)
            costs.update(conv.task_cost_from(row) for row in rows)
        return costs

    # -- questions and agent health ----------------------------------------------------------

    def interactions_of(self, task_id: str) -> list[Interaction]:
        rows = self._rows("SELECT * FROM interactions WHERE task_id = ? ORDER BY id", [task_id])
        found = [decoded("interactions", r) for r in rows]
        return [Interaction.model_validate({**d, "options": tuple(d["options"])}) for d in found]

    def answer_interaction(self, interaction_id: int, answer: str) -> bool:
        with self._tx() as conn:
            count = conn.execute(
                "UPDATE interactions SET answer = ?, answered_at = ?"
                " WHERE id = ? AND answered_at IS NULL",
                (answer, stored_time(utcnow()), interaction_id),
            ).rowcount
        return bool(count == 1)

    def agent_statuses(self) -> dict[str, AgentStatus]:
        rows = self._rows("SELECT * FROM agent_status")
        return {r["agent"]: AgentStatus.model_validate(decoded("agent_status", r)) for r in rows}


def revision_of(path: Path) -> str | None:
    """The Alembic revision of the SQLite file at ``path`` (None: no file, none recorded, or
    not a database this can read)."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        try:
            found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(found[0][0]) if len(found) == 1 else None


def open_quick(path: Path) -> Store | None:
    """A :class:`QuickStore` on the SQLite file ``path`` if it is at the newest revision;
    None otherwise (the full store must open it, and migrate it)."""
    if revision_of(path) != newest_revision():
        return None
    return cast("Store", QuickStore(path))
