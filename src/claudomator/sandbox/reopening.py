"""Taking a sandbox back: its record outside the tree (one an older version made is adopted),
the tree reclaimed from its agent before any bookkeeping, and a preserved sandbox reopened to
resume its task."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.sandbox import git, warm
from claudomator.sandbox import tree as trees
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)


def reopen(root: Path, sandbox_dir: Path, project_dir: Path) -> Sandbox | None:
    """Re-open a preserved sandbox (to resume); None if it is missing, not a sandbox of
    ``root``, or tampered with."""
    if sandbox_dir.parent.resolve() != root.resolve():
        return None
    wanted = project_dir.expanduser().resolve()
    state = record_of(root, sandbox_dir, wanted)
    if state is None:
        return None
    project, subdir = Path(state["project"]), state["subdir"]
    if (project / subdir if subdir else project) != wanted:
        logger.warning(
            "cannot reopen %s: it is a sandbox of %s, not of %s",
            sandbox_dir,
            project / subdir,
            wanted,
            extra={"action": "resume"},
        )
        return None
    try:
        trees.reclaim(sandbox_dir, state["config"])
        trees.inner_dir(sandbox_dir, subdir)  # the agent may have replaced it by a link
    except SandboxError as exc:
        logger.warning("cannot reopen %s: %s", sandbox_dir, exc, extra={"action": "resume"})
        return None
    return Sandbox(sandbox_dir, project, state["base_commit"], state["branch"], subdir)


def record_of(root: Path, tree: Path, project: Path) -> dict[str, str] | None:
    """The record of ``tree``; a sandbox made by an older version gets one now."""
    state = trees.load_state(root, tree)
    return state if state is not None else _adopt(root, tree, project)


def _adopt(root: Path, tree: Path, project: Path) -> dict[str, str] | None:
    """Record a sandbox an older version made (its notes were kept inside its ``.git``).

    Only the start commit and branch are read from there, as data, and checked; the
    pristine config is that of a fresh clone, never the copy in the tree.
    """
    if trees.layout_problem(tree):
        return None
    try:
        meta = json.loads((tree / ".git" / trees.LEGACY_META).read_text(encoding="utf-8"))
        base, branch = str(meta["base_commit"]), str(meta["branch"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    named = (
        branch == "HEAD"
        or git.run(project, "check-ref-format", f"refs/heads/{branch}", check=False).ok
    )
    if not (git.COMMIT_ID.fullmatch(base) and named and project.is_dir()):
        return None
    try:
        config = warm.fresh_config(root, project, branch)
    except (SandboxError, OSError) as exc:
        logger.warning("cannot adopt %s: %s", tree, exc, extra={"action": "resume"})
        return None
    box = Sandbox(tree, project, base, branch)
    trees.save_state(root, box, config)
    return trees.load_state(root, tree)


def take_back(root: Path, box: Sandbox) -> None:
    """Take the tree back from its agent before any bookkeeping in it (see tree.reclaim)."""
    state = record_of(root, box.dir, box.project_dir)
    if state is None:
        raise SandboxError(f"no record of sandbox {box.dir} under {root}", str(box.dir))
    trees.reclaim(box.dir, state["config"])
