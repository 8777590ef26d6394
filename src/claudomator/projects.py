"""Projects come from two places: the config file (read-only here) and the API (the store).

The config file wins when both name or point at the same project.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.config import Settings
from claudomator.models import Project
from claudomator.store import Store

if TYPE_CHECKING:
    from claudomator.sandbox import Sandbox


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


def of_sandbox(
    settings: Settings, store: Store, sandbox: Sandbox
) -> tuple[Project | None, str | None]:
    """The project whose settings apply to ``sandbox``'s work, and where its build command runs.

    A task in a subdirectory of a repository (a monorepo package) uses the project registered
    with that subdirectory, else the one registered with the repository, whose build command
    then runs at the repository root (``""``). None: in the agent's directory, where a detected
    build check also starts looking.
    """
    if sandbox.subdir:
        project = by_dir(settings, store, str(sandbox.project_dir / sandbox.subdir))
        if project is not None:
            return project, None
    project = by_dir(settings, store, str(sandbox.project_dir))
    return project, ("" if project is not None and project.build_command else None)
