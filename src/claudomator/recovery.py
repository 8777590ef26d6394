"""After a kill -9 during a delivery: is the interrupted execution's work on its target?

:meth:`claudomator.dispatch.local.Pool.reconcile` asks :func:`landed` for every execution of a dead
orchestrator that recorded a :class:`~claudomator.store.intents.DeliveryIntent`. If the
commit it was delivering is on a target (the branch of the project's ``local`` remote or
local-path ``origin``, or one of the task's kept branches: the one recorded for it, its
``claudomator/<short-id>-<slug>`` names and the old ``claudomator/<task-id>``, see
:func:`claudomator.naming.task_branches`), the push (or branch) completed in git's own process
after ours died: the record is finished, with where the work went, and the agent is not run
(and paid) again.

Git runs only in repositories we trust (the user's project and its local remotes), with
hooks and fsmonitor off; the sandbox (agent-written) is only read as files, never followed
through symlinks, and what it says is believed only if the target has that commit on top of
the recorded base.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator import naming, process
from claudomator.models import Commit, DeliveryRecord
from claudomator.store.intents import DeliveryIntent

logger = logging.getLogger(__name__)

GIT_TIMEOUT = 30.0
_HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_MAX_REF_FILE = 64 * 1024 * 1024  # packed-refs larger than this are not read
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


@dataclass(frozen=True)
class Landed:
    """The interrupted delivery completed: where, and the commits it delivered."""

    target: str  # e.g. "local/main" or "branch claudomator/1a2b3c4d-fix-login"
    commits: tuple[Commit, ...]
    delivery: DeliveryRecord  # the same, as recorded on the execution


def landed(intent: DeliveryIntent, branches: Sequence[str] = ()) -> Landed | None:
    """Where ``intent``'s work already is, or None (not delivered, or not verifiable).

    ``branches`` are the task's possible kept branches (:func:`naming.task_branches`); the
    project's branches named for the task's short id are looked at too (the task may have
    been renamed since), and the old ``claudomator/<task-id>``.
    """
    head = intent.head or _sandbox_head(Path(intent.sandbox_dir))
    if head is None or not _HASH.fullmatch(head) or not _HASH.fullmatch(intent.base_commit):
        return None
    if head == intent.base_commit:
        return None
    for repo, ref, record in _targets(intent, branches):
        if _ancestor(repo, head, ref) and _ancestor(repo, intent.base_commit, head):
            commits = _commits(repo, intent.base_commit, head)
            if commits:
                label = (
                    f"{record.remote}/{record.branch}"
                    if record.how == "pushed"
                    else f"branch {record.branch}"
                )
                return Landed(label, commits, record)
    return None


# -- the targets (trusted repositories) ------------------------------------------------------


def _git(repo: Path | str, *args: str) -> process.CommandResult:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env |= {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
    config = ["-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false"]
    return process.run(["git", *config, "-C", str(repo), *args], env=env, timeout=GIT_TIMEOUT)


def _is_local_path(url: str) -> bool:
    if url.startswith("file://"):
        return True
    return "://" not in url and ":" not in url.split("/", 1)[0]  # host:path is ssh


def _targets(
    intent: DeliveryIntent, branches: Sequence[str]
) -> list[tuple[str, str, DeliveryRecord]]:
    """(repository, ref, delivery) the work may have been delivered to."""
    project = Path(intent.project_dir)
    found: list[tuple[str, str, DeliveryRecord]] = []
    if intent.branch and intent.branch != "HEAD":
        listing = _git(project, "config", "--get-regexp", r"^remote\.(local|origin)\.url$")
        urls = {}
        for line in listing.stdout.splitlines():
            key, _, url = line.partition(" ")
            urls[key.removeprefix("remote.").removesuffix(".url")] = url
        for name in ("local", "origin"):
            url = urls.get(name, "")
            if url and _is_local_path(url):
                path = url.removeprefix("file://")
                repo = path if os.path.isabs(path) else str((project / path).resolve())
                record = DeliveryRecord(
                    how="pushed",
                    project_dir=str(project),
                    remote=name,
                    url=url,
                    branch=intent.branch,
                )
                found.append((repo, f"refs/heads/{intent.branch}", record))
                break
    kept = [*branches, *naming.task_branches(intent.task_id, ""), *_named_for(project, intent)]
    for branch in dict.fromkeys(kept):
        if branch.startswith("-") or not branch.startswith(naming.BRANCH_PREFIX):
            continue  # never an option to git, never a branch that is not ours
        record = DeliveryRecord(how="branch", project_dir=str(project), branch=branch)
        found.append((str(project), f"refs/heads/{branch}", record))
    return found


def _named_for(project: Path, intent: DeliveryIntent) -> list[str]:
    """The project's branches named for the task's short id, whatever slug the name gave."""
    short = naming.task_branch(intent.task_id, "")
    pattern = f"refs/heads/{short}-*"
    listing = _git(project, "for-each-ref", "--format=%(refname:lstrip=2)", pattern)
    return listing.stdout.split() if listing.ok else []


def _ancestor(repo: str, older: str, newer: str) -> bool:
    """Whether ``older`` is ``newer`` or an ancestor of it in ``repo`` (both must exist)."""
    return _git(repo, "merge-base", "--is-ancestor", older, newer).returncode == 0


def _commits(repo: str, base: str, head: str) -> tuple[Commit, ...]:
    """The commits ``base..head`` in ``repo``, oldest first, each with its subject."""
    listing = _git(repo, "log", "--reverse", "--format=%H%x1f%s", f"{base}..{head}")
    if not listing.ok:
        return ()
    commits = []
    for line in listing.stdout.splitlines():
        sha, _, subject = line.partition("\x1f")
        commits.append(Commit(hash=sha, message=subject))
    return tuple(commits)


# -- the sandbox (agent-written: read as plain files, no symlinks) ---------------------------


def _read(path: Path, limit: int = 4096) -> str | None:
    """A small regular file's text, not following symlinks; None if it is anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return os.read(fd, limit).decode("ascii", errors="replace")
    finally:
        os.close(fd)


def _sandbox_head(tree: Path) -> str | None:
    """The commit the sandbox's HEAD names (a hash or one loose/packed branch), or None."""
    git_dir = tree / ".git"
    if git_dir.is_symlink() or not git_dir.is_dir():
        return None
    head = _read(git_dir / "HEAD")
    if head is None:
        return None
    head = head.strip()
    if _HASH.fullmatch(head):
        return head
    ref = head.removeprefix("ref: ").strip()
    if not ref.startswith("refs/heads/") or ".." in ref.split("/"):
        return None
    loose = _read(git_dir / ref)
    if loose is not None and _HASH.fullmatch(loose.strip()):
        return loose.strip()
    packed = _read(git_dir / "packed-refs", _MAX_REF_FILE) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _HASH.fullmatch(sha):
            return sha
    return None
