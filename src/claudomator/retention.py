"""Retention: which leftovers of ended tasks are removed, and when (the ``[retention]`` settings).

Every execution leaves a log folder (``<data_dir>/logs/<execution-id>``); one that failed,
was cancelled, timed out or waits for a human keeps its sandbox
(``<data_dir>/sandboxes/<execution-id>``); branch delivery leaves ``claudomator/...`` branches
in the project repositories. :func:`plan` decides what goes, as a value (:class:`Plan`);
:func:`apply` removes exactly that. ``N`` days below are the settings; ``0`` keeps forever.

* A log folder or a sandbox goes ``logs_days`` / ``sandboxes_days`` after its task ended (a
  terminal state: COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED, CANCELLED), or, when no
  stored execution or task owns it (the task was deleted), that long after it last changed.
  Leftovers in ``sandboxes/.trash`` (a crash during a clean-up) go after ``sandboxes_days``.
* A ``claudomator/*`` branch of a project repository (configured, registered, or the project
  of a stored task) goes ``branches_days`` after its task ended when its commits are all on
  another local branch (not ``claudomator/*``): nothing is lost. Its task is the one whose
  recorded delivery names the branch, else the task whose id (or unique id prefix) the name
  holds; with no such task, the age is that of its tip commit. A branch with commits found on
  no other branch is kept unless ``unmerged_branches_days`` is set (0 by default: unmerged work
  is never deleted).

Never removed: anything of a PENDING, QUEUED, RUNNING, BLOCKED or READY task (a BLOCKED or
READY task resumes in its sandbox; a READY task's branch is under review), a branch checked
out in any worktree, a branch that moved after the plan, names that are not execution ids,
task rows.

The agent is hostile: folders are looked at with ``lstat`` only, sizes are counted without
following links, only direct children of the logs and sandboxes folders are removed, a
symbolic link is removed as a link (never followed) and ``shutil.rmtree`` removes a real
folder without following the links inside it. Branches are deleted by the controlled git
runner (:mod:`claudomator.sandbox.git`: no hooks) with ``update-ref -d <ref> <planned tip>``.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, NotFound, SandboxError
from claudomator.models import TERMINAL_STATES, Execution, Task, TaskState, utcnow
from claudomator.sandbox import git
from claudomator.sandbox import tree as trees
from claudomator.sandbox.delivery import BRANCH_PREFIX
from claudomator.sandbox.warm import TRASH_DIR

if TYPE_CHECKING:  # the store (SQLAlchemy) is passed in by whoever opened it
    from claudomator.store import Store

logger = logging.getLogger(__name__)

DAY = 86400.0
_EXECUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_PREFIX = re.compile(r"[0-9a-f]{8,}")
_HEADS = "refs/heads/"


class Kind(StrEnum):
    LOG = "log"  # an execution's log folder
    SANDBOX = "sandbox"  # a kept sandbox (or a leftover in sandboxes/.trash)
    BRANCH = "branch"  # a claudomator/* branch in a project repository


class Why(StrEnum):
    ENDED = "ended"  # its task is in a terminal state
    DELETED = "deleted"  # no stored task (or execution) owns it
    TRASH = "trash"  # left in sandboxes/.trash by an interrupted clean-up


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
        text = (
            f"removed {counts[Kind.LOG]} log folders, {counts[Kind.SANDBOX]} sandboxes, "
            f"{counts[Kind.BRANCH]} branches ({human_size(self.size)} freed)"
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


# -- deciding --------------------------------------------------------------------------------


class _Owners:
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


def plan(settings: Settings, store: Store, *, now: datetime | None = None) -> Plan:
    """What the ``[retention]`` policy removes now (see the module docstring)."""
    now = now or utcnow()
    policy = settings.retention
    owners = _Owners(store)
    removals: list[Removal] = []
    problems: list[str] = []
    if policy.logs_days:
        removals += _folders(Kind.LOG, settings.logs_dir, policy.logs_days, owners, now)
    if policy.sandboxes_days:
        root = settings.sandboxes_dir
        removals += _folders(Kind.SANDBOX, root, policy.sandboxes_days, owners, now)
        removals += _trash(root / TRASH_DIR, policy.sandboxes_days, now)
    if policy.branches_days or policy.unmerged_branches_days:
        for repo, owned in _repositories(settings, store).items():
            try:
                removals += _branches(repo, owned, settings, owners, now)
            except SandboxError as exc:
                problems.append(f"{repo}: {exc}")
    return Plan(tuple(removals), tuple(problems))


def _entries(root: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(root) as listing:
            yield from sorted(listing, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return


def _folders(kind: Kind, root: Path, days: int, owners: _Owners, now: datetime) -> list[Removal]:
    """The folders ``<root>/<execution-id>`` whose task ended (or is gone) ``days`` ago."""
    found: list[Removal] = []
    for entry in _entries(root):
        if not _EXECUTION_ID.fullmatch(entry.name):  # .state, .warm, cli-errors.log, ...
            continue
        execution = owners.execution(entry.name)
        task = owners.task(execution.task_id) if execution is not None else None
        if task is None or execution is None:
            why, age = Why.DELETED, _changed_days(entry, now)
        elif task.state not in TERMINAL_STATES or execution.end_time is None:
            continue  # resumable, under review, waiting or running: never touched
        else:
            why, age = Why.ENDED, _days(now, max(task.updated_at, execution.end_time))
        if age is None or age < days:
            continue
        found.append(
            Removal(
                kind,
                entry.path,
                why,
                age,
                task_id=task.id if task else "",
                task_state=task.state if task else None,
                size=disk_size(Path(entry.path)),
            )
        )
    return found


def _trash(root: Path, days: int, now: datetime) -> list[Removal]:
    found: list[Removal] = []
    for entry in _entries(root):
        age = _changed_days(entry, now)
        if age is not None and age >= days:
            found.append(
                Removal(Kind.SANDBOX, entry.path, Why.TRASH, age, size=disk_size(Path(entry.path)))
            )
    return found


def _days(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds() / DAY)


def _changed_days(entry: os.DirEntry[str], now: datetime) -> float | None:
    try:
        changed = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return None
    return max(0.0, (now.timestamp() - changed) / DAY)


def disk_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links counted as links, never followed)."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_size
    total = 0
    for parent, dirs, files in os.walk(path):  # never descends into a linked folder
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def _repositories(settings: Settings, store: Store) -> dict[Path, dict[str, str]]:
    """Every project repository to look at, with the branches recorded deliveries left there
    (branch name -> task id)."""
    found: dict[Path, dict[str, str]] = {}

    def add(folder: str) -> dict[str, str] | None:
        if not folder:
            return None
        path = Path(folder).expanduser().resolve()
        if not os.path.lexists(path / ".git"):  # never a repository git would find above it
            return None
        return found.setdefault(path, {})

    for project in (*settings.projects, *store.projects()):
        add(project.dir)
    for task in store.list_tasks():
        add(task.agent.project_dir)
    for execution in store.delivered_executions():
        record = execution.delivery
        if record is None or not record.branch.startswith(BRANCH_PREFIX):
            continue
        owned = add(record.project_dir)
        if owned is not None:
            owned[record.branch] = execution.task_id
    return found


def checked_out(repo: Path) -> set[str]:
    """The branches (``refs/heads/...``) checked out in any worktree of ``repo``."""
    listed = git.run(repo, "worktree", "list", "--porcelain")
    branches = {line[7:] for line in listed.stdout.splitlines() if line.startswith("branch ")}
    head = git.run(repo, "symbolic-ref", "-q", "HEAD", check=False)
    if head.ok and head.stdout.strip():
        branches.add(head.stdout.strip())
    return branches


def _branches(
    repo: Path, owned: dict[str, str], settings: Settings, owners: _Owners, now: datetime
) -> list[Removal]:
    policy = settings.retention
    fmt = "--format=%(refname)%00%(objectname)%00%(committerdate:unix)"
    listed = git.run(repo, "for-each-ref", fmt, f"{_HEADS}{BRANCH_PREFIX}")
    busy = checked_out(repo)
    found: list[Removal] = []
    for line in listed.stdout.splitlines():
        ref, oid, stamp = [*line.split("\0"), "", ""][:3]
        name = ref.removeprefix(_HEADS)
        if ref in busy or not oid:
            continue
        task_id = owned.get(name)
        task = owners.task(task_id) if task_id else None
        if task is None:
            task = owners.task_named_by(name.removeprefix(BRANCH_PREFIX))
        if task is not None and task.state not in TERMINAL_STATES:
            continue  # READY: under review; BLOCKED, active: its work goes on
        if task is not None:
            why, age = Why.ENDED, _days(now, task.updated_at)
        else:
            committed = float(stamp) if stamp.isdigit() else now.timestamp()
            why, age = Why.DELETED, max(0.0, (now.timestamp() - committed) / DAY)
        merged_into = _merged_into(repo, oid)
        days = policy.branches_days if merged_into else policy.unmerged_branches_days
        if not days or age < days:
            continue
        found.append(
            Removal(
                Kind.BRANCH,
                name,
                why,
                age,
                task_id=task.id if task else "",
                task_state=task.state if task else None,
                repo=str(repo),
                oid=oid,
                merged_into=merged_into,
            )
        )
    return found


def _merged_into(repo: Path, oid: str) -> str:
    """A local branch other than ``claudomator/*`` that holds ``oid``, or ""."""
    listed = git.run(repo, "for-each-ref", "--format=%(refname)", "--contains", oid, _HEADS)
    for ref in listed.stdout.splitlines():
        if not ref.startswith(f"{_HEADS}{BRANCH_PREFIX}"):
            return ref.removeprefix(_HEADS)
    return ""


# -- removing --------------------------------------------------------------------------------


def apply(settings: Settings, planned: Plan) -> Applied:
    """Remove what ``planned`` lists; each removal is checked again first (see
    :func:`remove_folder` and :func:`delete_branch`)."""
    removed: list[Removal] = []
    failed: list[Failure] = []
    for removal in planned.removals:
        try:
            if removal.kind is Kind.BRANCH:
                delete_branch(Path(removal.repo), removal.target, removal.oid)
            elif removal.kind is Kind.LOG:
                remove_folder(settings.logs_dir, Path(removal.target))
            elif removal.why is Why.TRASH:
                remove_folder(settings.sandboxes_dir / TRASH_DIR, Path(removal.target))
            else:
                remove_folder(settings.sandboxes_dir, Path(removal.target))
                trees.drop_state(settings.sandboxes_dir, Path(removal.target))
        except (OSError, ClaudomatorError) as exc:
            logger.warning(
                "retention: cannot remove %s %s: %s",
                removal.kind.value,
                removal.target,
                exc,
                extra={"action": "retention"},
            )
            failed.append(Failure(removal, str(exc)))
        else:
            removed.append(removal)
    return Applied(tuple(removed), tuple(failed), planned.problems)


def remove_folder(root: Path, path: Path) -> None:
    """Remove ``path``, a direct child of ``root``, without following any link: a link is
    unlinked (its target is left alone), a folder is removed with the links inside it."""
    parent = os.path.abspath(root)
    target = os.path.abspath(path)
    if os.path.dirname(target) != parent or os.path.basename(target) in ("", ".", ".."):
        raise RetentionRefused(f"{path} is not directly inside {root}; not removed")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        trees.remove(Path(target))  # shutil.rmtree: never follows the links inside
    else:
        os.unlink(target)  # a planted link, or a file: only the entry goes


def delete_branch(repo: Path, branch: str, oid: str) -> None:
    """Delete ``branch`` of ``repo`` if it is still at ``oid`` and checked out nowhere."""
    ref = f"{_HEADS}{branch}"
    if not branch.startswith(BRANCH_PREFIX):
        raise RetentionRefused(f"{branch} is not a {BRANCH_PREFIX}* branch; not deleted")
    if ref in checked_out(repo):
        raise RetentionRefused(f"{branch} is checked out in {repo}; not deleted")
    git.run(repo, "update-ref", "-d", ref, oid)
    logger.info("deleted branch %s of %s", branch, repo, extra={"action": "retention"})


def collect_garbage(settings: Settings, store: Store) -> Applied:
    """Plan and apply in one go (what a running orchestrator does every ``every`` seconds)."""
    return apply(settings, plan(settings, store))
