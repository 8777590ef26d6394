"""Executions and the delivery intents written before their work is delivered."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from claudomator.errors import NotFound
from claudomator.models import Commit, DeliveryRecord, Execution, TaskState, utcnow
from claudomator.store.intents import DeliveryIntent
from claudomator.store.sql import rows as conv
from claudomator.store.sql.base import SqlBase
from claudomator.store.tables import delivery_intents, executions

logger = logging.getLogger(__name__)


class ExecutionQueries(SqlBase):
    """The :class:`~claudomator.store.base.ExecutionStore` part of the SQL store."""

    def add_execution(self, execution: Execution) -> Execution:
        with self._tx() as conn:
            conn.execute(executions.insert().values(conv.execution_row(execution)))
        return execution

    def save_execution(self, execution: Execution) -> Execution:
        """Write every field of ``execution`` over its row."""
        row = conv.execution_row(execution)
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
        return conv.execution_from(row)

    def executions_of(self, task_id: str) -> list[Execution]:
        """A task's executions, oldest first."""
        query = (
            sa.select(executions)
            .where(executions.c.task_id == task_id)
            .order_by(executions.c.start_time, executions.c.id)
        )
        with self._read() as conn:
            return [conv.execution_from(r) for r in conn.execute(query).mappings()]

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
            return {r["task_id"]: conv.execution_from(r) for r in conn.execute(query).mappings()}

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
            found = [conv.execution_from(r) for r in conn.execute(query).mappings()]
        return [e for e in found if e.delivery is not None]  # a JSON null is not SQL NULL

    def running_executions(self) -> list[Execution]:
        query = sa.select(executions).where(executions.c.status == TaskState.RUNNING.value)
        with self._read() as conn:
            return [conv.execution_from(r) for r in conn.execute(query).mappings()]
