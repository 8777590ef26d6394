"""The values of retention: what goes (:class:`Removal`), the plan, what was done; the owners."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from claudomator.errors import ClaudomatorError, NotFound
from claudomator.models import Execution, Task, TaskState

if TYPE_CHECKING:  # the store (SQLAlchemy) is passed in by whoever opened it
    from claudomator.store.base import Store

DAY = 86400.0
_ID_PREFIX = re.compile(r"[0-9a-f]{8,}")


class Kind(StrEnum):
    LOG = "log"  # an execution's log folder
    SANDBOX = "sandbox"  # a kept sandbox (or a leftover in sandboxes/.trash)
    BRANCH = "branch"  # a claudomator/* branch in a project repository
    SCRATCH = "scratch"  # the repository of a project-less task (``<scratch_dir>/<task-id>``)
    HOME = "home"  # a confined agent's private home (``<data_dir>/homes/<task-id>``)


class Why(StrEnum):
    ENDED = "ended"  # its task is in a terminal state
    DELETED = "deleted"  # no stored task (or execution) owns it
    TRASH = "trash"  # left in sandboxes/.trash by an interrupted clean-up
    IDLE = "idle"  # a warm tree (sandboxes/.warm) no sandbox has taken for that long


class RetentionRefused(ClaudomatorError):
    """A planned removal that is not safe any more (or never was); nothing was touched."""


@dataclass(frozen=True)
class Removal:
    """One thing the policy removes, and why."""

    kind: Kind
    target: str  # the folder (absolute), or the branch's name ("claudomator/...")
    why: Why
    age_days: float  # since the task ended (or the folder changed, or the tip was committed)
    task_id: str = ""  # "" when no stored task owns it
    task_state: TaskState | None = None
    size: int | None = None  # bytes on disk (folders); None for a branch
    repo: str = ""  # branches: the repository
    oid: str = ""  # branches: the tip when planned (deleted only if still there)
    merged_into: str = ""  # branches: a local branch holding every commit; "" if unmerged

    @property
    def reason(self) -> str:
        """Why, for people."""
        if self.why is Why.TRASH:
            text = "left over by an interrupted clean-up"
        elif self.why is Why.IDLE:
            text = "warm tree unused"
        elif self.why is Why.DELETED:
            text = "no stored task"
        else:
            state = self.task_state.value if self.task_state else "ended"
            text = f"task {state}"
        text = f"{text}, {self.age_days:.0f} days ago"
        if self.kind is Kind.BRANCH:
            text += f"; merged into {self.merged_into}" if self.merged_into else "; UNMERGED"
        return text


@dataclass(frozen=True)
class Plan:
    """What :func:`apply` will remove; ``problems``: what could not be looked at."""

    removals: tuple[Removal, ...]
    problems: tuple[str, ...] = ()

    def of(self, kind: Kind) -> tuple[Removal, ...]:
        return tuple(r for r in self.removals if r.kind is kind)

    @property
    def size(self) -> int:
        return sum(r.size or 0 for r in self.removals)


@dataclass(frozen=True)
class Failure:
    removal: Removal
    error: str


@dataclass(frozen=True)
class Applied:
    """What :func:`apply` did."""

    removed: tuple[Removal, ...]
    failed: tuple[Failure, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        return sum(r.size or 0 for r in self.removed)

    def summary(self) -> str:
        """One line for the log."""
        counts = {k: sum(1 for r in self.removed if r.kind is k) for k in Kind}
        scratch, homes = counts[Kind.SCRATCH], counts[Kind.HOME]
        text = (
            f"removed {counts[Kind.LOG]} log folders, {counts[Kind.SANDBOX]} sandboxes, "
            f"{counts[Kind.BRANCH]} branches"
            + (f", {scratch} scratch repositories" if scratch else "")
            + (f", {homes} agent homes" if homes else "")
            + f" ({human_size(self.size)} freed)"
        )
        if self.failed:
            text += f"; {len(self.failed)} failed (first: {self.failed[0].error})"
        if self.problems:
            text += f"; {len(self.problems)} problems (first: {self.problems[0]})"
        return text


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def days_between(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds() / DAY)


class Owners:
    """Stored tasks and executions, looked up once each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tasks: dict[str, Task | None] = {}
        self._executions: dict[str, Execution | None] = {}

    def task(self, task_id: str) -> Task | None:
        if task_id not in self._tasks:
            try:
                self._tasks[task_id] = self.store.get_task(task_id)
            except NotFound:
                self._tasks[task_id] = None
        return self._tasks[task_id]

    def execution(self, execution_id: str) -> Execution | None:
        if execution_id not in self._executions:
            try:
                self._executions[execution_id] = self.store.get_execution(execution_id)
            except NotFound:
                self._executions[execution_id] = None
        return self._executions[execution_id]

    def task_named_by(self, name: str) -> Task | None:
        """The task whose id, or unique id prefix, begins the branch name after the prefix."""
        found = self.task(name)
        if found is not None:
            return found
        prefix = _ID_PREFIX.match(name)
        if prefix is None:
            return None
        matches = self.store.find_tasks(prefix.group())
        return matches[0] if len(matches) == 1 else None
