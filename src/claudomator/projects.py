"""Projects come from two places: the config file (read-only here) and the API (the store).

The config file wins when both name or point at the same project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.config import Settings
from claudomator.models import Project
from claudomator.store.base import Store

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


_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def in_repository(project_dir: str) -> str:
    """``in <repo> (subdirectory <sub>)`` for a task's folder inside a repository, else "".

    For people (``show``, ``run``), so without the sandbox package: two read-only git calls in
    the user's folder; "" too when git cannot tell, never an error.
    """
    from claudomator import process  # `show` only; `list` starts without it

    if not project_dir:
        return ""
    try:
        folder = Path(project_dir).expanduser().resolve()
        if not folder.is_dir():
            return ""
        env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
        env |= {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
        top = process.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, env=env, timeout=10)
        if not top.ok or not top.stdout.strip():
            return ""
        root = Path(top.stdout.strip()).resolve()
        if root == folder or not folder.is_relative_to(root):
            return ""
        ignored = process.run(["git", "check-ignore", "-q", "."], cwd=folder, env=env, timeout=10)
        if ignored.ok:
            return ""  # an ignored folder: a repository of its own once it is a project
        return f"in {root} (subdirectory {folder.relative_to(root).as_posix()})"
    except (OSError, RuntimeError, ValueError):
        return ""


def described(project_dir: str) -> str:
    """A task's folder for people: as given, then where it is in its repository, if inside one;
    ``(scratch)`` without a folder."""
    if not project_dir:
        return "(scratch)"
    where = in_repository(project_dir)
    return f"{project_dir} {where}" if where else project_dir
