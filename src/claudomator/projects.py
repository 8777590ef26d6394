"""Projects come from two places: the config file (read-only here) and the API (the store).

The config file wins when both name or point at the same project.
"""

from __future__ import annotations

from pathlib import Path

from claudomator.config import Settings
from claudomator.models import Project
from claudomator.store import Store


def all_projects(settings: Settings, store: Store) -> list[tuple[Project, str]]:
    """Every project with where it is defined (``"config"`` or ``"api"``), config first."""
    configured = [(p, "config") for p in settings.projects]
    names = {p.name for p in settings.projects}
    return configured + [(p, "api") for p in store.projects() if p.name not in names]


def by_dir(settings: Settings, store: Store, project_dir: str) -> Project | None:
    """The project whose ``dir`` is ``project_dir`` (after resolving), if any."""
    if not project_dir:
        return None
    wanted = Path(project_dir).expanduser().resolve()
    for project, _ in all_projects(settings, store):
        if Path(project.dir).expanduser().resolve() == wanted:
            return project
    return None


def by_name(settings: Settings, store: Store, *names: str) -> Project | None:
    """The first project called any of ``names``."""
    for project, _ in all_projects(settings, store):
        if project.name in names:
            return project
    return None
