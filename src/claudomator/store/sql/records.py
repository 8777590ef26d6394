"""Questions and answers, agent health, intake keys and Web Push subscriptions."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from claudomator.errors import StoreError
from claudomator.models import AgentStatus, Interaction, PushSubscription, utcnow
from claudomator.store.base import INTAKE_RESERVATION_SECONDS
from claudomator.store.sql.base import MAX_RACE_RETRIES, SqlBase
from claudomator.store.tables import (
    agent_status,
    intake_keys,
    interactions,
    push_subscriptions,
    tasks,
)

logger = logging.getLogger(__name__)


class RecordQueries(SqlBase):
    """The interaction, health, intake and push parts of the SQL store."""

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
        for _ in range(MAX_RACE_RETRIES):
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
