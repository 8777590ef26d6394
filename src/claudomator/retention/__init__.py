"""Retention: which leftovers of ended tasks are removed, and when (the ``[retention]`` settings).

Every execution leaves a log folder (``<data_dir>/logs/<execution-id>``); one that failed,
was cancelled, timed out or waits for a human keeps its sandbox
(``<data_dir>/sandboxes/<execution-id>``); branch delivery leaves ``claudomator/...`` branches
in the project repositories. :func:`plan` decides what goes, as a value (:class:`Plan`);
:func:`apply` removes exactly that. ``N`` days below are the settings; ``0`` keeps forever.

* A log folder or a sandbox goes ``logs_days`` / ``sandboxes_days`` after its task ended (a
  terminal state: COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED, CANCELLED), or, when no
  stored execution or task owns it (the task was deleted), that long after it last changed.
  Leftovers in ``sandboxes/.trash`` (a crash during a clean-up) go after ``sandboxes_days``,
  and so do trees of the warm pool (``sandboxes/.warm``) no sandbox has taken for that long
  (their project has not run a task since, or is gone), and the private homes of confined
  agents (``homes/<task-id>``: a CLI's settings and session store) of ended or deleted tasks.
* The repository of a project-less task (``<scratch_dir>/<task-id>``, the task's delivered
  work) stays as long as its task; once the task is deleted it goes ``logs_days`` after it
  last changed.
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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, SandboxError
from claudomator.models import utcnow
from claudomator.retention.branches import branches, checked_out, delete_branch, repositories
from claudomator.retention.folders import (
    agent_homes,
    disk_size,
    folders,
    remove_folder,
    remove_warm_tree,
    scratch_repositories,
    trash,
    warm_trees,
)
from claudomator.retention.model import (
    Applied,
    Failure,
    Kind,
    Owners,
    Plan,
    Removal,
    RetentionRefused,
    Why,
    human_size,
)
from claudomator.sandbox import tree as trees
from claudomator.sandbox.warm import TRASH_DIR, WARM_DIR

if TYPE_CHECKING:  # the store (SQLAlchemy) is passed in by whoever opened it
    from claudomator.store.base import Store

__all__ = [
    "Applied",
    "Failure",
    "Kind",
    "Plan",
    "Removal",
    "RetentionRefused",
    "Why",
    "apply",
    "checked_out",
    "collect_garbage",
    "delete_branch",
    "disk_size",
    "human_size",
    "plan",
    "remove_folder",
]

logger = logging.getLogger(__name__)


def plan(settings: Settings, store: Store, *, now: datetime | None = None) -> Plan:
    """What the ``[retention]`` policy removes now (see the module docstring)."""
    now = now or utcnow()
    policy = settings.retention
    owners = Owners(store)
    removals: list[Removal] = []
    problems: list[str] = []
    if policy.logs_days:
        removals += folders(Kind.LOG, settings.logs_dir, policy.logs_days, owners, now)
        removals += scratch_repositories(settings.scratch_dir, policy.logs_days, owners, now)
    if policy.sandboxes_days:
        root = settings.sandboxes_dir
        removals += folders(Kind.SANDBOX, root, policy.sandboxes_days, owners, now)
        removals += trash(root / TRASH_DIR, policy.sandboxes_days, now)
        removals += warm_trees(root / WARM_DIR, policy.sandboxes_days, now)
        removals += agent_homes(settings.homes_dir, policy.sandboxes_days, owners, now)
    if policy.branches_days or policy.unmerged_branches_days:
        for repo, owned in repositories(settings, store).items():
            try:
                removals += branches(repo, owned, settings, owners, now)
            except SandboxError as exc:
                problems.append(f"{repo}: {exc}")
    return Plan(tuple(removals), tuple(problems))


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
            elif removal.kind is Kind.SCRATCH:
                remove_folder(settings.scratch_dir, Path(removal.target))
            elif removal.kind is Kind.HOME:
                remove_folder(settings.homes_dir, Path(removal.target))
            elif removal.why is Why.TRASH:
                remove_folder(settings.sandboxes_dir / TRASH_DIR, Path(removal.target))
            elif removal.why is Why.IDLE:
                root = settings.sandboxes_dir
                remove_warm_tree(root / WARM_DIR, Path(removal.target), root / TRASH_DIR)
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


def collect_garbage(settings: Settings, store: Store) -> Applied:
    """Plan and apply in one go (what a running orchestrator does every ``every`` seconds)."""
    return apply(settings, plan(settings, store))
