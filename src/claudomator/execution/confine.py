"""The confinement of one execution's agent: what its project and task ask for over the
operator's ``[isolation]`` (:mod:`claudomator.isolation.policy`), settled on this machine by the
orchestrator's launcher (:class:`~claudomator.isolation._select.SelectingLauncher`).

The attempt reads the projects in the store executor, then settles in the sandbox executor
(bubblewrap may be looked up: one ``bwrap`` run, once per process).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from claudomator.config import Settings
from claudomator.isolation import policy
from claudomator.isolation._select import Settled, as_selecting
from claudomator.isolation.base import Confinement, Launcher
from claudomator.models import Project, Task

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Wanted:
    """What a task's layers ask for, and who chose its launcher (for messages)."""

    confinement: Confinement
    origin: str


def wanted(settings: Settings, projects: Iterable[Project], task: Task) -> Wanted:
    """The confinement ``task`` asks for in its project (the nearest registered folder)."""
    project = policy.governing_project(list(projects), task.agent.project_dir)
    return Wanted(
        policy.confinement_for(settings, project, task.isolation),
        policy.launcher_origin(settings, project, task.isolation),
    )


def settle(asked: Wanted, launcher: Launcher | None) -> Settled:
    """``asked`` as it comes to here: through the orchestrator's selecting launcher, else (a
    pool built around one launcher: tests) only that launcher may be kept."""
    selecting = as_selecting(launcher)
    if selecting is not None:
        return selecting.settle(asked.confinement, origin=asked.origin)
    have = launcher.name if launcher is not None else ""
    wanted_launcher = asked.confinement.launcher
    if not wanted_launcher or wanted_launcher == have:
        kept = dataclasses.replace(asked.confinement, launcher="")
        return Settled(kept, policy.describe(have or "the runner's launcher", kept))
    refusal = (
        f"this orchestrator starts agents through one launcher only ({have or 'its own'}); "
        f'{asked.origin} = "{wanted_launcher}" cannot be honoured'
    )
    return Settled(asked.confinement, f"refused: {refusal}", refusal=refusal)
