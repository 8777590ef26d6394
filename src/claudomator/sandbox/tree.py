"""One sandbox's tree: what we know about it (kept outside it) and how we take it back.

Everything inside ``<tree>`` (its ``.git`` included) is written by the agent. What bookkeeping
needs from the sandbox is therefore kept outside it, in ``<root>/.state/<name>.json``: the
commit and branch it started from, the project, and the repository config as git wrote it at the
clone, before any agent ran. :func:`reclaim` is the first step of all bookkeeping in a tree the
agent had: it refuses a tree whose layout would make git act elsewhere (a ``.git`` that is a
link or a gitfile, a ``commondir``, a link anywhere inside ``.git``), rebuilds ``.git/config``
from the pristine copy, and asks git itself where the tree and its git directory are.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from claudomator.errors import SandboxError, SandboxTampered
from claudomator.sandbox import git

logger = logging.getLogger(__name__)

STATE_DIR = ".state"
LEGACY_META = "claudomator.json"  # written into .git by older versions (read, never trusted)
_MAX_GIT_ENTRIES = 200_000  # a .git with more entries than this is not walked: it is refused


@dataclass(frozen=True)
class Sandbox:
    """One execution's git working tree."""

    dir: Path  # the agent's working tree: <root>/<execution_id>
    project_dir: Path  # the user's repository
    base_commit: str  # the commit the sandbox started from
    branch: str  # the project's branch at creation, checked out here; "HEAD" if detached
    subdir: str = ""  # where the agent works, relative to ``dir`` (a monorepo package), or ""

    def describe(self) -> str:
        """The project as a person reads it: ``<repo>`` or ``<repo> (subdirectory <sub>)``."""
        where = str(self.project_dir)
        return f"{where} (subdirectory {self.subdir})" if self.subdir else where


def state_file(root: Path, tree: Path) -> Path:
    return root / STATE_DIR / f"{tree.name}.json"


def save_state(root: Path, box: Sandbox, config: str) -> None:
    """Record ``box`` and its pristine ``config`` outside the tree (atomically)."""
    path = state_file(root, box.dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "base_commit": box.base_commit,
        "branch": box.branch,
        "project": str(box.project_dir),
        "config": config,
        "subdir": box.subdir,
    }
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(temp, path)


def load_state(root: Path, tree: Path) -> dict[str, str] | None:
    try:
        data = json.loads(state_file(root, tree).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("base_commit", "branch", "project", "config")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
        return None
    subdir = data.get("subdir", "")  # absent in the records of older versions
    if not isinstance(subdir, str):
        return None
    return {**{k: data[k] for k in keys}, "subdir": subdir}


def drop_state(root: Path, tree: Path) -> None:
    state_file(root, tree).unlink(missing_ok=True)


def read_config(tree: Path) -> str:
    """The config file of a tree we just made (never called on a tree an agent had)."""
    return (tree / ".git" / "config").read_text(encoding="utf-8")


def layout_problem(tree: Path) -> str:
    """Why git could act outside ``tree`` if run there, or "" if its layout is a plain clone's.

    Nothing is followed: ``tree`` and ``tree/.git`` must be real directories, ``.git`` must hold no
    ``commondir`` and no symbolic link anywhere (a linked ``refs`` or ``HEAD`` would make our
    commits move the user's refs).
    """
    try:
        if not stat.S_ISDIR(os.lstat(tree).st_mode):
            return f"{tree} is not a directory"
        mode = os.lstat(tree / ".git").st_mode
    except FileNotFoundError:
        return ".git is missing"
    if stat.S_ISLNK(mode):
        return ".git is a symbolic link"
    if not stat.S_ISDIR(mode):
        return ".git is not a directory (a gitfile?)"
    git_dir = tree / ".git"
    if os.path.lexists(git_dir / "commondir"):
        return ".git/commondir points git at another repository"
    seen = 0
    for parent, dirs, files in os.walk(git_dir):  # never follows links
        for name in (*dirs, *files):
            seen += 1
            path = os.path.join(parent, name)
            if os.path.islink(path):
                return f"{os.path.relpath(path, tree)} is a symbolic link"
        if seen > _MAX_GIT_ENTRIES:
            return f".git holds more than {_MAX_GIT_ENTRIES} entries"
    return ""


def write_config(tree: Path, config: str) -> None:
    """Replace ``.git/config`` by ``config`` (a rename: a link or hard link is never written
    through) and drop ``.git/config.worktree``."""
    git_dir = tree / ".git"
    temp = git_dir / f"config.claudomator-{uuid.uuid4().hex}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(config)
    os.replace(temp, git_dir / "config")
    worktree_config = git_dir / "config.worktree"
    if os.path.lexists(worktree_config):
        os.unlink(worktree_config)


def verify_location(tree: Path) -> str:
    """Why git does not see ``tree`` as its own top level with ``tree/.git``, or ""."""
    found = git.run(
        tree, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir", check=False
    )
    lines = found.stdout.splitlines()
    if not found.ok or len(lines) != 3:
        return f"git cannot read it: {found.tail(3)}"
    top, git_dir, common = (Path(line) for line in lines)
    if not common.is_absolute():
        common = tree / common
    real = tree.resolve()
    if top.resolve() != real:
        return f"git sees the work tree at {top}"
    if git_dir.resolve() != real / ".git" or common.resolve() != real / ".git":
        return f"git sees the repository at {git_dir} ({common})"
    return ""


def reclaim(tree: Path, config: str) -> None:
    """Take ``tree`` back from its agent: refuse a tampered layout, rebuild the config, verify.

    Raises :class:`SandboxTampered` (nothing is run in the tree then) or :class:`SandboxError`.
    """
    problem = layout_problem(tree)
    if problem:
        raise SandboxTampered(str(tree), problem)
    try:
        write_config(tree, config)
    except OSError as exc:
        raise SandboxError(f"cannot rebuild the git config of {tree}: {exc}", str(tree)) from exc
    problem = verify_location(tree)
    if problem:
        raise SandboxTampered(str(tree), problem)


def inner_dir(tree: Path, subdir: str) -> Path:
    """The directory ``subdir`` of ``tree``, checked without following any link.

    Every part of the path must be a real directory (the agent may have replaced one by a
    symbolic link to somewhere outside), and the resolved result must lie inside ``tree``.
    Raises :class:`SandboxTampered` for a link or non-directory, :class:`SandboxError` if it is
    missing.
    """
    if not subdir:
        return tree
    path = tree
    for part in subdir.split("/"):
        if part in ("", ".", ".."):
            raise SandboxError(f"invalid subdirectory {subdir!r} of sandbox {tree}", str(tree))
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise SandboxError(
                f"{subdir} is missing from sandbox {tree} (the agent's directory)", str(tree)
            ) from None
        except OSError as exc:
            raise SandboxError(f"cannot read {path}: {exc.strerror}", str(tree)) from exc
        if not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
            raise SandboxTampered(str(tree), f"{os.path.relpath(path, tree)} is {what}")
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(tree))):
        raise SandboxTampered(str(tree), f"{subdir} resolves to {real}, outside the sandbox")
    return path


def remove(path: Path) -> None:
    """Delete a tree, including read-only directories an agent or a build tool left behind.

    Links are removed, never followed (not even to change a directory's permissions).
    """
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        if not os.path.islink(path):
            os.chmod(path, 0o700)
        for parent, dirs, _ in os.walk(path):
            for name in dirs:
                child = os.path.join(parent, name)
                if not os.path.islink(child):
                    os.chmod(child, 0o700)
        shutil.rmtree(path)
