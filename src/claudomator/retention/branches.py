"""``claudomator/*`` branches of project repositories: which go, and deleting one safely."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.config import Settings
from claudomator.models import TERMINAL_STATES
from claudomator.retention.model import (
    DAY,
    Kind,
    Owners,
    Removal,
    RetentionRefused,
    Why,
    days_between,
)
from claudomator.sandbox import git
from claudomator.sandbox.delivery import BRANCH_PREFIX

if TYPE_CHECKING:
    from claudomator.store.base import Store

logger = logging.getLogger(__name__)

_HEADS = "refs/heads/"


def repositories(settings: Settings, store: Store) -> dict[Path, dict[str, str]]:
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


def branches(
    repo: Path, owned: dict[str, str], settings: Settings, owners: Owners, now: datetime
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
            why, age = Why.ENDED, days_between(now, task.updated_at)
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


def delete_branch(repo: Path, branch: str, oid: str) -> None:
    """Delete ``branch`` of ``repo`` if it is still at ``oid`` and checked out nowhere."""
    ref = f"{_HEADS}{branch}"
    if not branch.startswith(BRANCH_PREFIX):
        raise RetentionRefused(f"{branch} is not a {BRANCH_PREFIX}* branch; not deleted")
    if ref in checked_out(repo):
        raise RetentionRefused(f"{branch} is checked out in {repo}; not deleted")
    git.run(repo, "update-ref", "-d", ref, oid)
    logger.info("deleted branch %s of %s", branch, repo, extra={"action": "retention"})
