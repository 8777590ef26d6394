"""Delivering a sandbox's commits: push to the project's local remote, or keep a branch.

Deliveries to one target (remote URL and branch) are serialised across the processes of this
machine by an ``fcntl`` lock file under ``<root>/.locks``. A push rejected as non-fast-forward
(someone else pushed meanwhile) is fetched, rebased and pushed again, up to
:data:`MAX_PUSH_ATTEMPTS` times; a rebase that truly conflicts keeps the work as the task's
branch (``claudomator/<short-id>-<slug>``, see :mod:`claudomator.naming`) in the project and
raises :class:`DeliveryConflict` naming the branch and the files.

A kept branch never overwrites another task's: a later delivery of the same task reuses the
branch recorded for it (or the old-style ``claudomator/<task-id>`` if that exists); a new name
is taken only if it does not exist yet, holds a commit naming this task in its
``Claudomator-Task`` trailer, or is an ancestor of the work (else a longer id is tried).

Pushes run with hooks turned off like all bookkeeping (the sandbox's hooks are the agent's); the
receiving repository's own hooks run there as for any push.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from claudomator import naming
from claudomator.errors import DeliveryConflict, SandboxError
from claudomator.models import Delivery
from claudomator.sandbox import git
from claudomator.sandbox.project import push_target, remotes
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)

BRANCH_PREFIX = naming.BRANCH_PREFIX
MAX_PUSH_ATTEMPTS = 10
LOCK_DIR = ".locks"
_UPSTREAM = "refs/claudomator/upstream"  # the target's branch as fetched into the sandbox
_REJECTED = "\t[rejected] ("  # a --porcelain status line: (fetch first), (non-fast-forward)


class DeliveryKind(enum.StrEnum):
    PUSHED = "pushed"  # pushed to the project's remote
    BRANCH = "branch"  # kept as a branch in the project
    NOTHING = "nothing"  # no new commits


@dataclass(frozen=True)
class Delivered:
    """What a delivery did."""

    how: DeliveryKind
    remote: str = ""  # the remote's name (pushed)
    branch: str = ""  # the branch pushed to, or the branch kept in the project
    rebased: bool = False  # rebased onto new upstream work first: the commits have new hashes
    url: str = field(default="", compare=False)  # the remote's URL or path (pushed)

    @property
    def description(self) -> str:
        """One line for people: messages, summaries, the checker's prompt."""
        if self.how is DeliveryKind.NOTHING:
            return "no new commits; nothing delivered"
        if self.how is DeliveryKind.BRANCH:
            return f"branch {self.branch}"
        suffix = " (rebased onto new upstream work)" if self.rebased else ""
        return f"pushed to {self.remote}/{self.branch}{suffix}"

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class Naming:
    """What names a task's kept branch: its id, its name, the branch recorded for it."""

    task_id: str
    task_name: str = ""
    recorded: str = ""  # the branch an earlier delivery of the task kept ("" if none)


def deliver(root: Path, box: Sandbox, names: Naming, delivery: Delivery) -> Delivered:
    """Deliver ``box``'s new commits (see :meth:`Sandboxes.deliver`)."""
    tree = box.dir
    count = git.tree_git(tree, "rev-list", "--count", f"{box.base_commit}..HEAD").stdout.strip()
    if count == "0":
        return Delivered(DeliveryKind.NOTHING)
    if delivery is Delivery.BRANCH:
        return keep_branch(box, names)
    found = remotes(box.project_dir)
    target = push_target(box.project_dir, found)
    if target is not None and box.branch != "HEAD":
        name, url = target
        with target_lock(root, url, box.branch):
            return _push(box, names, name, url)
    if delivery is Delivery.PUSH:
        listed = ", ".join(f"{n} ({u})" for n, u in sorted(found.items())) or "none"
        why = "the project is on a detached HEAD" if target else f"remotes found: {listed}"
        raise SandboxError(
            f"push delivery needs a `local` remote or a local-path `origin` in "
            f"{box.project_dir} ({why})",
            str(tree),
        )
    return keep_branch(box, names)


@contextlib.contextmanager
def target_lock(root: Path, url: str, branch: str) -> Iterator[None]:
    """Hold the machine-wide lock of one delivery target (blocks until it is free)."""
    locks = root / LOCK_DIR
    locks.mkdir(parents=True, exist_ok=True)
    key = sha256(f"{url}\0{branch}".encode()).hexdigest()[:32]
    with open(locks / f"{key}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _push(box: Sandbox, names: Naming, name: str, url: str) -> Delivered:
    tree = box.dir
    refspec = f"HEAD:refs/heads/{box.branch}"
    rebased = False
    for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
        pushed = git.tree_git(tree, "push", "--porcelain", "--no-verify", url, refspec, check=False)
        if pushed.ok:
            logger.info(
                "pushed %s to %s %s (attempt %d)",
                tree,
                url,
                box.branch,
                attempt,
                extra={"action": "deliver_push"},
            )
            return Delivered(DeliveryKind.PUSHED, name, box.branch, rebased, url)
        if _REJECTED not in pushed.stdout:  # not a non-fast-forward: nothing to rebase onto
            raise SandboxError(f"`git push` to {url} failed:\n{pushed.tail()}", str(tree))
        logger.info(
            "push of %s rejected (attempt %d); rebasing",
            tree,
            attempt,
            extra={"action": "deliver_rebase"},
        )
        _rebase_on_target(box, names, url)
        rebased = True
    raise SandboxError(
        f"`git push` to {url} {box.branch} was still rejected after {MAX_PUSH_ATTEMPTS} "
        f"fetch-rebase-push rounds:\n{pushed.tail()}",
        str(tree),
    )


def _rebase_on_target(box: Sandbox, names: Naming, url: str) -> None:
    tree = box.dir
    refspec = f"+refs/heads/{box.branch}:{_UPSTREAM}"
    git.tree_git(tree, "fetch", "-q", "--no-tags", "--no-write-fetch-head", url, refspec)
    rebase = git.tree_git(
        tree, *git.identity(tree, tree=tree), "rebase", "-q", _UPSTREAM, check=False
    )
    if rebase.ok:
        return
    files = _conflicted(tree)
    git.tree_git(tree, "rebase", "--abort", check=False)
    kept = keep_branch(box, names)  # the work is never left only in the sandbox
    if not files and "conflict" not in rebase.tail().lower():
        raise SandboxError(
            f"rebase onto {url} {box.branch} failed (the work was kept as branch "
            f"{kept.branch} in the project):\n{rebase.tail()}",
            str(tree),
        )
    raise DeliveryConflict(f"{url} {box.branch}", kept.branch, files, str(tree))


def _conflicted(tree: Path) -> list[str]:
    listed = git.tree_git(tree, "diff", "--name-only", "--diff-filter=U", "-z", check=False)
    return [name for name in listed.stdout.split("\0") if name]


def keep_branch(box: Sandbox, names: Naming) -> Delivered:
    """Keep the sandbox's HEAD as the task's branch in the project (checkout untouched)."""
    branch, force = _branch_for(box, names)
    ref = f"refs/heads/{branch}"
    source = str(box.dir / ".git")
    spec = f"+HEAD:{ref}" if force else f"HEAD:{ref}"  # unforced: a fast-forward or a new ref
    fetch = ["fetch", "-q", "--no-tags", "--no-write-fetch-head", source, spec]
    git.run(box.project_dir, *fetch, sandbox=box.dir)
    logger.info("kept %s as %s", box.dir, ref, extra={"action": "deliver_branch"})
    return Delivered(DeliveryKind.BRANCH, branch=branch)


def _branch_for(box: Sandbox, names: Naming) -> tuple[str, bool]:
    """The branch to keep the work on, and whether it may be overwritten (it is this task's)."""
    project = box.project_dir
    if names.recorded and _valid(project, names.recorded):
        return names.recorded, True
    legacy = naming.legacy_branch(names.task_id)
    if _valid(project, legacy) and _tip(project, legacy):
        return legacy, True  # delivered by an earlier version: keep using its branch
    for branch in naming.branch_candidates(names.task_id, names.task_name):
        if not _valid(project, branch):
            continue
        tip = _tip(project, branch)
        if not tip:
            return branch, False
        trailer = f"%(trailers:key={naming.TASK_TRAILER},valueonly,separator=%x00)"
        owners = git.run(project, "log", "-1", f"--format={trailer}", tip, check=False)
        if names.task_id in owners.stdout.strip().split("\0"):
            return branch, True
        ancestry = ["merge-base", "--is-ancestor", tip, "HEAD"]  # the project's objects are
        if git.tree_git(box.dir, *ancestry, check=False).ok:  # shared with the sandbox
            return branch, False
        logger.info(
            "branch %s belongs to another task; trying a longer name",
            branch,
            extra={"action": "deliver_branch"},
        )
    raise SandboxError(
        f"task {names.task_id!r}: no free branch name to keep its work under in {project}",
        str(box.dir),
    )


def _valid(project: Path, branch: str) -> bool:
    return git.run(project, "check-ref-format", f"refs/heads/{branch}", check=False).ok


def _tip(project: Path, branch: str) -> str:
    """The commit ``branch`` points at in ``project`` ("" if there is no such branch)."""
    found = git.run(
        project, "rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}", check=False
    )
    return found.stdout.strip() if found.ok else ""


def on_target(root: Path, box: Sandbox, commits: Sequence[str]) -> bool:
    """Whether every commit of ``commits`` is already on the branch ``box`` delivers to by push.

    For recovery after a crash during a push (the push may have landed in git's own process):
    the target's branch is fetched into the sandbox (under the target's lock) and each commit
    must be an ancestor of it. False when the project has no push target, the sandbox is on a
    detached HEAD, ``commits`` is empty, the branch does not exist there, or a commit is unknown.
    Commits are compared by hash: a rebase before the push gives new hashes (see
    :meth:`Sandboxes.head_commits`).
    """
    target = push_target(box.project_dir, remotes(box.project_dir))
    if target is None or box.branch == "HEAD" or not commits:
        return False
    _, url = target
    tree = box.dir
    with target_lock(root, url, box.branch):
        refspec = f"+refs/heads/{box.branch}:{_UPSTREAM}"
        fetch = ["fetch", "-q", "--no-tags", "--no-write-fetch-head", url, refspec]
        fetched = git.tree_git(tree, *fetch, check=False)
        if not fetched.ok:
            if "couldn't find remote ref" in fetched.stderr:
                return False
            raise SandboxError(
                f"cannot fetch {url} {box.branch} to check a delivery:\n{fetched.tail()}", str(tree)
            )
        for commit in commits:
            ancestry = ["merge-base", "--is-ancestor", commit, _UPSTREAM]
            found = git.tree_git(tree, *ancestry, check=False)
            if found.returncode == 1 or (not found.ok and "Not a valid" in found.stderr):
                return False
            if not found.ok:
                raise SandboxError(
                    f"cannot tell whether {commit} is on {url} {box.branch}:\n{found.tail()}",
                    str(tree),
                )
    return True
