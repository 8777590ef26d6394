"""Log folders and kept sandboxes: which go, how big they are, and removing one safely."""

from __future__ import annotations

import os
import re
import stat
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

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
from claudomator.sandbox import tree as trees

_EXECUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _entries(root: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(root) as listing:
            yield from sorted(listing, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return


def folders(kind: Kind, root: Path, days: int, owners: Owners, now: datetime) -> list[Removal]:
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
            why, age = Why.ENDED, days_between(now, max(task.updated_at, execution.end_time))
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


def agent_homes(root: Path, days: int, owners: Owners, now: datetime) -> list[Removal]:
    """The private homes of confined agents (``<root>/<task-id>``: a CLI's settings and its
    session store) whose task ended ``days`` ago, or whose task is gone and which have not
    changed for that long. A task that may still resume (BLOCKED, READY, ...) keeps its home."""
    found: list[Removal] = []
    for entry in _entries(root):  # all ours: every folder is a task's (ids may be chosen)
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        task = owners.task(entry.name)
        if task is None:
            why, age = Why.DELETED, _changed_days(entry, now)
        elif task.state not in TERMINAL_STATES:
            continue
        else:
            why, age = Why.ENDED, days_between(now, task.updated_at)
        if age is None or age < days:
            continue
        found.append(
            Removal(
                Kind.HOME,
                entry.path,
                why,
                age,
                task_id=task.id if task else "",
                task_state=task.state if task else None,
                size=disk_size(Path(entry.path)),
            )
        )
    return found


def warm_trees(warm_root: Path, days: int, now: datetime) -> list[Removal]:
    """The trees of the warm pool (``<warm_root>/<pool>/<tree>``) untouched for ``days``: a
    project no task ran in for that long (or one that is gone) needs no tree kept ready."""
    found: list[Removal] = []
    for pool in _entries(warm_root):
        if not pool.is_dir(follow_symlinks=False):
            continue
        for tree in _entries(Path(pool.path)):
            age = _changed_days(tree, now)
            if age is not None and age >= days:
                size = disk_size(Path(tree.path))
                found.append(Removal(Kind.SANDBOX, tree.path, Why.IDLE, age, size=size))
    return found


def scratch_repositories(root: Path, days: int, owners: Owners, now: datetime) -> list[Removal]:
    """The repositories of project-less tasks (``<root>/<task-id>``, with a ``.git`` folder)
    whose task was deleted and which have not changed for ``days``. A stored task's scratch
    repository holds its delivered work: it stays as long as the task does."""
    found: list[Removal] = []
    for entry in _entries(root):
        if not _EXECUTION_ID.fullmatch(entry.name) or owners.task(entry.name) is not None:
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        dot_git = Path(entry.path) / ".git"
        try:
            git_changed = os.lstat(dot_git)
        except OSError:
            continue  # not a repository we made: not ours to remove
        if not stat.S_ISDIR(git_changed.st_mode):
            continue
        age = _changed_days(entry, now)
        if age is None:
            continue
        age = min(age, max(0.0, (now.timestamp() - git_changed.st_mtime) / DAY))
        if age >= days:
            size = disk_size(Path(entry.path))
            found.append(Removal(Kind.SCRATCH, entry.path, Why.DELETED, age, size=size))
    return found


def trash(root: Path, days: int, now: datetime) -> list[Removal]:
    found: list[Removal] = []
    for entry in _entries(root):
        age = _changed_days(entry, now)
        if age is not None and age >= days:
            found.append(
                Removal(Kind.SANDBOX, entry.path, Why.TRASH, age, size=disk_size(Path(entry.path)))
            )
    return found


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


def remove_warm_tree(warm_root: Path, tree: Path, trash_root: Path) -> None:
    """Remove the warm tree ``tree`` (``<warm_root>/<pool>/<tree>``): first moved into
    ``trash_root`` in one rename, so a sandbox taking it at the same moment (also a rename)
    gets either the whole tree or none, then removed there."""
    pool = tree.parent
    if os.path.abspath(pool.parent) != os.path.abspath(warm_root):
        raise RetentionRefused(f"{tree} is not a warm tree of {warm_root}; not removed")
    trash_root.mkdir(parents=True, exist_ok=True)
    moved = trash_root / f"warm-{tree.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(tree, moved)
    except FileNotFoundError:
        return  # taken by a sandbox meanwhile, or already gone
    remove_folder(trash_root, moved)


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
