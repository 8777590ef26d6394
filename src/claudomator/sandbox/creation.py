"""Making a fresh sandbox: a warm tree of the project taken back from the pool, else a clone,
hard-reset to the project's HEAD and recorded outside the tree (see the package docstring)."""

from __future__ import annotations

import logging
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.sandbox import git, warm
from claudomator.sandbox import tree as trees
from claudomator.sandbox.project import Location
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)


def check_execution_id(execution_id: str) -> None:
    """Raise :class:`SandboxError` unless ``execution_id`` can name a folder of the root."""
    if not execution_id or "/" in execution_id or execution_id.startswith("."):
        raise SandboxError(f"invalid execution id {execution_id!r}")


def create(root: Path, where: Location, execution_id: str) -> Sandbox:
    """A fresh sandbox of the located project's HEAD at ``<root>/<execution_id>`` (see
    :meth:`claudomator.sandbox.Sandboxes.create`)."""
    check_execution_id(execution_id)
    project, head, branch = where.root, where.head, where.branch
    dest = root / execution_id
    if dest.exists():
        raise SandboxError(f"sandbox directory {dest} already exists")
    root.mkdir(parents=True, exist_ok=True)
    box = Sandbox(dest, project, head, branch, where.subdir)
    how = "warm tree"
    if not (warm.take(root, project, branch, dest) and _refresh(box)):
        how = "clone"
        _clone(box)
    try:
        trees.inner_dir(dest, box.subdir)  # a fresh checkout: a committed folder is there
        trees.save_state(root, box, trees.read_config(dest))
    except (OSError, SandboxError) as exc:
        trees.remove(dest)
        raise SandboxError(f"cannot record sandbox {dest}: {exc}") from exc
    logger.info(
        "sandbox %s for %s at %s (%s)",
        dest,
        box.describe(),
        head[:12],
        how,
        extra={"action": "sandbox_create"},
    )
    return box


def _clone(box: Sandbox) -> None:
    try:
        warm.clone(box.project_dir, box.branch, box.dir)
        _point_at(box.dir, box.base_commit, box.branch, clean=False)
    except (SandboxError, OSError) as exc:
        trees.remove(box.dir)
        raise SandboxError(f"cannot create sandbox of {box.project_dir}: {exc}") from exc


def _refresh(box: Sandbox) -> bool:
    """Bring a warm tree (already at ``box.dir``) to the project's HEAD; False if unusable.

    The tree was rebuilt from a fresh clone when it was released and no agent has had it
    since. This is a fetch without the fetch: the objects are already there (the object
    store is shared), so only the tracking ref moves.
    """
    try:
        if box.branch != "HEAD":
            tracking = f"refs/remotes/origin/{box.branch}"
            git.tree_git(box.dir, "update-ref", tracking, box.base_commit)
        _point_at(box.dir, box.base_commit, box.branch, clean=True)
    except SandboxError as exc:
        logger.warning(
            "warm tree unusable, cloning instead: %s", exc, extra={"action": "sandbox_warm"}
        )
        trees.remove(box.dir)
        return False
    return True


def _point_at(tree: Path, head: str, branch: str, *, clean: bool) -> None:
    """Hard-reset ``tree`` (one we made, or rebuilt) to ``head`` on ``branch`` (or detached).

    ``checkout -f -B`` is ``symbolic-ref`` plus ``reset --hard`` in one command (and measurably
    faster): it compares the index with the target tree, so a recycled tree only gets the files
    that differ rewritten. ``clean`` also removes untracked files.
    """
    target = ["--detach"] if branch == "HEAD" else ["-B", branch]
    git.tree_git(tree, "checkout", "-q", "-f", *target, head)
    if clean:
        git.tree_git(tree, "clean", "-q", "-ffdx")
