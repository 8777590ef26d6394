"""The in-memory store's other aggregates: questions, agent health, intake keys, the catalog
(projects, stories) and Web Push subscriptions (see :mod:`claudomator.store.memory`)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from claudomator.errors import IntegrityViolation, NotFound, ProjectExists
from claudomator.models import (
    AgentStatus,
    Interaction,
    Project,
    PushSubscription,
    Story,
    Task,
    TaskState,
    utcnow,
)
from claudomator.store.base import INTAKE_RESERVATION_SECONDS

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def utc(model: M) -> M:
    """``model`` with every datetime in UTC (a naive one is refused, as by the SQL store)."""
    changes: dict[str, datetime] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: store aware datetimes only")
            changes[name] = value.astimezone(UTC)
    return model.model_copy(update=changes) if changes else model


class MemoryRecords:
    """Interactions, health, intake keys, projects, stories and push subscriptions in dicts."""

    _lock: threading.RLock
    _tasks: dict[str, Task]
    _interactions: dict[int, Interaction]
    _next_interaction: int
    _statuses: dict[str, AgentStatus]
    _intake: dict[str, tuple[str, datetime]]
    _projects: dict[str, Project]
    _stories: dict[str, Story]
    _push: dict[str, PushSubscription]

    # -- questions and answers ---------------------------------------------------------------

    def add_interaction(self, interaction: Interaction) -> Interaction:
        with self._lock:
            if interaction.task_id not in self._tasks:
                raise IntegrityViolation(f"interaction: no task {interaction.task_id}")
            self._next_interaction += 1
            stored = utc(interaction.model_copy(update={"id": self._next_interaction}))
            self._interactions[self._next_interaction] = stored
        return interaction.model_copy(update={"id": stored.id})

    def interactions_of(self, task_id: str) -> list[Interaction]:
        with self._lock:
            found = [q for q in self._interactions.values() if q.task_id == task_id]
        return sorted(found, key=lambda q: q.id or 0)

    def answer_interaction(self, interaction_id: int, answer: str) -> bool:
        with self._lock:
            current = self._interactions.get(interaction_id)
            if current is None or current.answered_at is not None:
                return False
            update = {"answer": answer, "answered_at": utcnow()}
            self._interactions[interaction_id] = current.model_copy(update=update)
            return True

    # -- agent health ------------------------------------------------------------------------

    def agent_statuses(self) -> dict[str, AgentStatus]:
        with self._lock:
            return dict(self._statuses)

    def agent_status(self, agent: str) -> AgentStatus:
        with self._lock:
            return self._statuses.get(agent) or AgentStatus(agent=agent)

    def save_agent_status(self, status: AgentStatus) -> None:
        with self._lock:
            self._statuses[status.agent] = utc(status)

    # -- intake keys -------------------------------------------------------------------------

    def _holds(self, key: str, now: datetime, stale_after: float) -> str | None:
        held = self._intake.get(key)
        if held is None:
            return None
        task_id, since = held
        if now - since < timedelta(seconds=stale_after) or task_id in self._tasks:
            return task_id
        return None

    def intake_holder(
        self, key: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None:
        with self._lock:
            return self._holds(key, utcnow(), stale_after)

    def reserve_intake_key(
        self, key: str, task_id: str, *, stale_after: float = INTAKE_RESERVATION_SECONDS
    ) -> str | None:
        now = utcnow()
        with self._lock:
            holder = self._holds(key, now, stale_after)
            if holder is not None:
                return holder
            if key in self._intake:
                logger.info(
                    "intake key %s: taken over from task %s, which does not exist",
                    key,
                    self._intake[key][0],
                    extra={"action": "intake_key"},
                )
            self._intake[key] = (task_id, now)
            return None

    def release_intake_key(self, key: str, task_id: str) -> None:
        with self._lock:
            held = self._intake.get(key)
            if held is not None and held[0] == task_id:
                del self._intake[key]

    # -- projects and stories ----------------------------------------------------------------

    def projects(self) -> list[Project]:
        with self._lock:
            return [self._projects[name] for name in sorted(self._projects)]

    def save_project(self, project: Project, *, create: bool) -> Project:
        with self._lock:
            if create and project.name in self._projects:
                raise ProjectExists(project.name)
            if not create and project.name not in self._projects:
                raise NotFound("project", project.name)
            self._projects[project.name] = project
        return project

    def delete_project(self, name: str) -> None:
        with self._lock:
            if self._projects.pop(name, None) is None:
                raise NotFound("project", name)

    def add_story(self, story: Story) -> Story:
        with self._lock:
            if story.id in self._stories:
                raise IntegrityViolation(f"story {story.id} is already stored")
            self._stories[story.id] = utc(story)
        return story

    def stories(self) -> list[Story]:
        with self._lock:
            found = sorted(self._stories.values(), key=lambda s: s.id)
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def get_story(self, story_id: str) -> Story:
        with self._lock:
            if story_id not in self._stories:
                raise NotFound("story", story_id)
            return self._stories[story_id]

    def story_progress(self, story_id: str) -> dict[TaskState, int]:
        counts: dict[TaskState, int] = {}
        with self._lock:
            for task in self._tasks.values():
                if task.story_id == story_id:
                    counts[task.state] = counts.get(task.state, 0) + 1
        return counts

    def update_story(self, story_id: str, **fields: str) -> Story:
        unknown = set(fields) - {"name", "description"}
        if unknown:
            raise ValueError(f"not fields of a story: {sorted(unknown)}")
        with self._lock:
            current = self.get_story(story_id)
            if fields:
                self._stories[story_id] = Story.model_validate({**current.model_dump(), **fields})
            return self._stories[story_id]

    def delete_story(self, story_id: str) -> None:
        with self._lock:
            if story_id not in self._stories:
                raise NotFound("story", story_id)
            for task in list(self._tasks.values()):
                if task.story_id == story_id:
                    self._tasks[task.id] = task.model_copy(update={"story_id": None})
            del self._stories[story_id]

    # -- web push ----------------------------------------------------------------------------

    def save_push_subscription(self, subscription: PushSubscription) -> None:
        with self._lock:
            self._push.pop(subscription.endpoint, None)
            self._push[subscription.endpoint] = utc(subscription)

    def push_subscriptions(self) -> list[PushSubscription]:
        with self._lock:
            return sorted(self._push.values(), key=lambda s: s.created_at)

    def delete_push_subscription(self, endpoint: str) -> bool:
        with self._lock:
            return self._push.pop(endpoint, None) is not None
