"""The warm pool: finished trees, made indistinguishable from a fresh clone, kept for reuse.

A finished tree's ``.git`` is the agent's, so none of it is kept: :func:`rebuild` checks the
tree's layout without following anything, clones the project afresh (``--shared --no-checkout``:
nearly free), moves the fresh ``.git`` into the tree in place of the old one, builds a new index
from the fresh HEAD and lets git compare it with the files by content (``update-index
--refresh`` hashes them, so no stat data the agent forged survives), then checks out and cleans.
Config, ``info/`` (exclude, attributes, sparse-checkout), hooks, refs, packed-refs, alternates,
shallow and worktrees are all the fresh clone's. Only the work tree's files are reused, and only
where their content equals the checked-out commit's.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from hashlib import sha256
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.sandbox import git
from claudomator.sandbox.tree import layout_problem, remove, verify_location

logger = logging.getLogger(__name__)

WARM_DIR = ".warm"
TRASH_DIR = ".trash"


def pool_dir(root: Path, project: Path, branch: str) -> Path:
    """The pool of trees cloned of ``project``'s ``branch`` (a clone's config names its branch)."""
    digest = sha256(f"{project}\0{branch}".encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", project.name)[:40]
    return root / WARM_DIR / f"{name}-{digest}"


def take(root: Path, project: Path, branch: str, dest: Path) -> bool:
    """Move one warm tree of ``project``'s ``branch`` to ``dest``; False if there is none."""
    pool = pool_dir(root, project, branch)
    try:
        candidates = sorted(pool.iterdir())
    except FileNotFoundError:
        return False
    for candidate in candidates:
        try:
            os.rename(candidate, dest)  # atomic: of racing creators exactly one succeeds
        except FileNotFoundError:
            continue
        return True
    return False


def clone(project: Path, branch: str, dest: Path) -> None:
    """A ``--shared --no-checkout`` clone of ``project``'s ``branch`` ("HEAD": its HEAD)."""
    single = ["--single-branch"] + (["--branch", branch] if branch != "HEAD" else [])
    args = ["clone", "-q", "--shared", "--no-checkout", "--no-tags", "--template=", *single]
    git.run(project, *args, str(project), str(dest))


def rebuild(root: Path, tree: Path, project: Path, head: str, branch: str) -> str:
    """Make the finished ``tree`` a fresh clone of ``project`` at ``head``; why not, or "".

    Nothing in the tree's old ``.git`` is read by git: it is checked with ``lstat`` only and
    thrown away whole.
    """
    problem = layout_problem(tree)
    if problem:
        return f"tampered with: {problem}"
    trash = root / TRASH_DIR
    trash.mkdir(parents=True, exist_ok=True)
    fresh = trash / f"fresh-{uuid.uuid4().hex}"
    old = trash / uuid.uuid4().hex
    try:
        clone(project, branch, fresh)
        os.rename(tree / ".git", old)
        os.rename(fresh / ".git", tree / ".git")
    except (SandboxError, OSError) as exc:
        return f"cannot clone afresh: {exc}"
    finally:
        remove(fresh)
        remove(old)
    problem = verify_location(tree)  # git itself must see exactly this tree and its .git
    if problem:
        return f"after the fresh clone: {problem}"
    try:
        git.tree_git(tree, "read-tree", head)
        git.tree_git(tree, "update-index", "-q", "--refresh", check=False)  # exit 1: changes
        target = ["--detach"] if branch == "HEAD" else ["-B", branch]
        git.tree_git(tree, "checkout", "-q", "-f", *target, head)
        git.tree_git(tree, "clean", "-q", "-ffdx")
    except SandboxError as exc:
        return str(exc)
    return ""


def fresh_config(root: Path, project: Path, branch: str) -> str:
    """The ``.git/config`` a fresh sandbox clone of ``project``'s ``branch`` has."""
    trash = root / TRASH_DIR
    trash.mkdir(parents=True, exist_ok=True)
    probe = trash / f"probe-{uuid.uuid4().hex}"
    try:
        clone(project, branch, probe)
        return (probe / ".git" / "config").read_text(encoding="utf-8")
    finally:
        remove(probe)
