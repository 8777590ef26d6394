"""Retiring a finished sandbox: recycled into the warm pool of its project and branch if there
is room and it can be rebuilt, else discarded (see the package docstring)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.sandbox import tree as trees
from claudomator.sandbox import warm
from claudomator.sandbox.project import project_head
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)


def release(root: Path, sandbox: Sandbox, warm_per_project: int, pool_lock: threading.Lock) -> None:
    """Retire ``sandbox``: its directory disappears, into the warm pool (at most
    ``warm_per_project`` trees per project and branch, counted under ``pool_lock``) if it can."""
    tree = sandbox.dir
    trees.drop_state(root, tree)
    if not os.path.lexists(tree):
        return
    if warm_per_project > 0 and _recycle(root, sandbox, warm_per_project, pool_lock):
        return
    _discard(root, tree)


def _recycle(root: Path, box: Sandbox, warm_per_project: int, pool_lock: threading.Lock) -> bool:
    state = project_head(box.project_dir) if box.project_dir.is_dir() else None
    if state is None:
        return False
    head, branch = state
    pool = warm.pool_dir(root, box.project_dir, branch)  # trees cloned of that branch
    with pool_lock:
        if pool.is_dir() and sum(1 for _ in pool.iterdir()) >= warm_per_project:
            return False
    reason = warm.rebuild(root, box.dir, box.project_dir, head, branch)
    if reason:
        logger.info("not recycling %s: %s", box.dir, reason, extra={"action": "sandbox_release"})
        return False
    with pool_lock:
        try:
            pool.mkdir(parents=True, exist_ok=True)
            if sum(1 for _ in pool.iterdir()) >= warm_per_project:
                return False
            os.rename(box.dir, pool / uuid.uuid4().hex)
        except OSError as exc:
            logger.warning(
                "cannot recycle %s: %s", box.dir, exc, extra={"action": "sandbox_release"}
            )
            return False
    logger.info("recycled %s into %s", box.dir, pool, extra={"action": "sandbox_release"})
    return True


def _discard(root: Path, tree: Path) -> None:
    trash = root / warm.TRASH_DIR
    trash.mkdir(parents=True, exist_ok=True)
    doomed = trash / uuid.uuid4().hex
    try:
        os.rename(tree, doomed)  # renames a link itself, never what it points at
    except OSError as exc:
        raise SandboxError(f"cannot remove sandbox {tree}: {exc}", str(tree)) from exc
    if os.path.islink(doomed):
        os.unlink(doomed)
    else:
        trees.remove(doomed)
    logger.info("removed sandbox %s", tree, extra={"action": "sandbox_release"})
