"""The service's catalog: projects (from the config file or the API) and stories."""

from __future__ import annotations

import logging
from pathlib import Path

from claudomator import projects
from claudomator.errors import NotFound, ProjectExists, ValidationError
from claudomator.isolation.policy import project_loosening
from claudomator.models import Project, Story
from claudomator.service.core import ServiceCore

logger = logging.getLogger(__name__)


class Catalog(ServiceCore):
    """Projects and stories."""

    # -- projects ----------------------------------------------------------------------------

    def projects(self) -> list[tuple[Project, str]]:
        """Every project and where it is defined ("config" or "api")."""
        return projects.all_projects(self.settings, self.store)

    def project(self, name: str) -> tuple[Project, str]:
        for project, source in self.projects():
            if project.name == name:
                return project, source
        raise NotFound("project", name)

    def project_named(self, *names: str) -> Project | None:
        return projects.by_name(self.settings, self.store, *names)

    def project_dir_of(self, project: str) -> str:
        """The directory tasks of ``project`` (a name, or an absolute directory) record."""
        if Path(project).is_absolute():
            return str(Path(project).resolve())
        found, _ = self.project(project)  # NotFound names it
        return str(Path(found.dir).expanduser().resolve())

    def save_project(self, project: Project, *, create: bool) -> Project:
        """Create or replace a project managed through the API."""
        if any(p.name == project.name for p in self.settings.projects):
            if create:
                raise ProjectExists(project.name)
            raise ValidationError(
                f"project {project.name!r} is defined in the config file; change it there"
            )
        directory = Path(project.dir).expanduser()
        if not directory.is_absolute() or not directory.is_dir():
            raise ValidationError(f"dir: {project.dir!r} is not an absolute path to a directory")
        if self.settings.outside_workspace(project.dir):
            root = self.settings.workspace_root
            raise ValidationError(f"dir: {project.dir} is outside workspace_root {root}")
        if not self.settings.api_token:  # an open API: any local process, an agent too
            for field, problem in project_loosening(self.settings, project):
                raise ValidationError(f"{field}: {problem}")
        return self.store.save_project(project, create=create)

    def delete_project(self, name: str) -> None:
        if any(p.name == name for p in self.settings.projects):
            raise ValidationError(f"project {name!r} is defined in the config file")
        self.store.delete_project(name)

    # -- stories -----------------------------------------------------------------------------

    def create_story(self, story: Story) -> Story:
        return self.store.add_story(story)

    def stories(self) -> list[tuple[Story, dict[str, int]]]:
        """Every story with its progress (tasks per state)."""
        return [(s, self.story_progress(s.id)) for s in self.store.stories()]

    def story(self, story_id: str) -> tuple[Story, dict[str, int]]:
        story = self.store.get_story(story_id)
        return story, self.story_progress(story.id)

    def story_progress(self, story_id: str) -> dict[str, int]:
        return {state.value: n for state, n in self.store.story_progress(story_id).items()}

    def update_story(
        self, story_id: str, *, name: str | None = None, description: str | None = None
    ) -> tuple[Story, dict[str, int]]:
        """Rename a story or change its description; its progress with it."""
        fields = {"name": name, "description": description}
        self.store.update_story(story_id, **{k: v for k, v in fields.items() if v is not None})
        return self.story(story_id)

    def delete_story(self, story_id: str) -> None:
        self.store.delete_story(story_id)
