"""Delivering a sandbox's commits: push to the project's local remote, or keep a branch.

Deliveries to one target (remote URL and branch) are serialised across the processes of this
machine by an ``fcntl`` lock file under ``<root>/.locks``. A push rejected as non-fast-forward
(someone else pushed meanwhile) is fetched, rebased and pushed again, up to
:data:`MAX_PUSH_ATTEMPTS` times; a rebase that truly conflicts keeps the work as branch
``claudomator/<task-id>`` in the project and raises :class:`DeliveryConflict` naming the branch
and the files.

Pushes run with hooks turned off like all bookkeeping (the sandbox's hooks are the agent's); the
receiving repository's own hooks run there as for any push.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from claudomator.errors import DeliveryConflict, SandboxError
from claudomator.models import Delivery
from claudomator.sandbox import git
from claudomator.sandbox.project import push_target, remotes
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)

BRANCH_PREFIX = "claudomator/"
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


def deliver(root: Path, box: Sandbox, task_id: str, delivery: Delivery) -> Delivered:
    """Deliver ``box``'s new commits (see :meth:`Sandboxes.deliver`)."""
    tree = box.dir
    count = git.tree_git(tree, "rev-list", "--count", f"{box.base_commit}..HEAD").stdout.strip()
    if count == "0":
        return Delivered(DeliveryKind.NOTHING)
    if delivery is Delivery.BRANCH:
        return keep_branch(box, task_id)
    found = remotes(box.project_dir)
    target = push_target(box.project_dir, found)
    if target is not None and box.branch != "HEAD":
        name, url = target
        with target_lock(root, url, box.branch):
            return _push(box, task_id, name, url)
    if delivery is Delivery.PUSH:
        listed = ", ".join(f"{n} ({u})" for n, u in sorted(found.items())) or "none"
        why = "the project is on a detached HEAD" if target else f"remotes found: {listed}"
        raise SandboxError(
            f"push delivery needs a `local` remote or a local-path `origin` in "
            f"{box.project_dir} ({why})",
            str(tree),
        )
    return keep_branch(box, task_id)


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


def _push(box: Sandbox, task_id: str, name: str, url: str) -> Delivered:
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
            return Delivered(DeliveryKind.PUSHED, name, box.branch, rebased)
        if _REJECTED not in pushed.stdout:  # not a non-fast-forward: nothing to rebase onto
            raise SandboxError(f"`git push` to {url} failed:\n{pushed.tail()}", str(tree))
        logger.info(
            "push of %s rejected (attempt %d); rebasing",
            tree,
            attempt,
            extra={"action": "deliver_rebase"},
        )
        _rebase_on_target(box, task_id, url)
        rebased = True
    raise SandboxError(
        f"`git push` to {url} {box.branch} was still rejected after {MAX_PUSH_ATTEMPTS} "
        f"fetch-rebase-push rounds:\n{pushed.tail()}",
        str(tree),
    )


def _rebase_on_target(box: Sandbox, task_id: str, url: str) -> None:
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
    kept = keep_branch(box, task_id)  # the work is never left only in the sandbox
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


def keep_branch(box: Sandbox, task_id: str) -> Delivered:
    """Keep the sandbox's HEAD as ``claudomator/<task_id>`` in the project (checkout untouched)."""
    branch = f"{BRANCH_PREFIX}{task_id}"
    ref = f"refs/heads/{branch}"
    if not git.run(box.project_dir, "check-ref-format", ref, check=False).ok:
        raise SandboxError(f"task id {task_id!r} does not make a valid branch name", str(box.dir))
    source = str(box.dir / ".git")
    fetch = ["fetch", "-q", "--no-tags", "--no-write-fetch-head", source, f"+HEAD:{ref}"]
    git.run(box.project_dir, *fetch, sandbox=box.dir)
    logger.info("kept %s as %s", box.dir, ref, extra={"action": "deliver_branch"})
    return Delivered(DeliveryKind.BRANCH, branch=branch)


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
