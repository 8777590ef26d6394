"""The catalog: projects managed through the API, and stories (groups of tasks)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from claudomator.errors import NotFound, ProjectExists
from claudomator.models import Project, Story, TaskState, utcnow
from claudomator.store.sql import rows as conv
from claudomator.store.sql.base import SqlBase
from claudomator.store.tables import projects, stories, tasks

logger = logging.getLogger(__name__)


class CatalogQueries(SqlBase):
    """The :class:`~claudomator.store.base.CatalogStore` part of the SQL store."""

    # -- projects (those managed through the API; the config file holds the others) ---------

    def projects(self) -> list[Project]:
        query = sa.select(projects).order_by(projects.c.name)
        with self._read() as conn:
            return [conv.project_from(r) for r in conn.execute(query).mappings()]

    def save_project(self, project: Project, *, create: bool) -> Project:
        """Insert (``create``) or replace a project; NotFound / StoreError on a clash."""
        row = conv.project_row(project)
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
