"""The build check that runs before an autocommit: the project's command, else a detected one."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from claudomator import process
from claudomator.errors import BuildFailed
from claudomator.sandbox.git import clean_env

logger = logging.getLogger(__name__)

BUILD_TIMEOUT = 30 * 60.0  # seconds for the build check
LEFTOVER_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for what the build left running
_MAKE_TARGETS = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)", re.MULTILINE)

Wrap = Callable[[Sequence[str], Path, Mapping[str, str]], tuple[list[str], dict[str, str]]]
"""How the build check starts a command that reads or runs what the agent wrote: (argv, cwd,
env) -> the argv and environment to really start. The execution's launcher confines them as it
confined the agent (:func:`claudomator.execution.delivery.build_wrap`); None: as they are."""

# the command a confined build runs under: a system shell that execs the build's own argv
# (given as its positional arguments, never as shell text), so the launcher only ever sees a
# system program and never binds the folder of a program the agent could have planted or linked
_EXEC = ("/bin/sh", "-c", 'exec "$0" "$@"')


def run_in_tree(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    wrap: Wrap | None,
) -> process.CommandResult:
    """Run ``argv`` (a build tool working on the agent's tree) through ``wrap`` when given."""
    if wrap is None:
        return process.run(list(argv), cwd=cwd, env=dict(env), timeout=timeout)
    wrapped, wrapped_env = wrap([*_EXEC, *argv], cwd, env)
    return process.run(wrapped, cwd=cwd, env=wrapped_env, timeout=timeout)


def _has_make_build(tree: Path, makefile: Path, wrap: Wrap | None) -> bool:
    """Whether make has a ``build`` rule: a ``build:`` line, else ask ``make -n build`` (which
    can run the Makefile's ``$(shell ...)``: it starts through ``wrap`` like the build)."""
    text = makefile.read_text(encoding="utf-8", errors="replace")
    if any("build" in m.group(1).split() for m in _MAKE_TARGETS.finditer(text)):
        return True
    dry_run = run_in_tree(["make", "-n", "build"], tree, clean_env(), 60, wrap)
    return dry_run.ok


def detect_build_command(tree: Path, wrap: Wrap | None = None) -> tuple[str, ...]:
    """The build check for ``tree``: make build, ./gradlew build, go build ./... or none."""
    makefiles = [tree / n for n in ("GNUmakefile", "makefile", "Makefile") if (tree / n).is_file()]
    if makefiles and _has_make_build(tree, makefiles[0], wrap):  # the one make reads
        return ("make", "build")
    gradlew = tree / "gradlew"
    if gradlew.is_file():
        return ("./gradlew", "build") if os.access(gradlew, os.X_OK) else ("sh", "gradlew", "build")
    if (tree / "go.mod").is_file():
        return ("go", "build", "./...")
    return ()


def find_build(tree: Path, subdir: str, wrap: Wrap | None = None) -> tuple[Path, tuple[str, ...]]:
    """The detected build check of the folder ``subdir`` of ``tree``: (where it runs, argv).

    The nearest folder with a build definition wins, from ``subdir`` up to ``tree``: a
    monorepo package's own Makefile, else its parents', else the repository's. ``subdir`` must
    have been checked (:func:`~claudomator.sandbox.tree.inner_dir`). ``(tree, ())`` if none.
    """
    parts = subdir.split("/") if subdir else []
    for depth in range(len(parts), -1, -1):
        folder = tree.joinpath(*parts[:depth])
        argv = detect_build_command(folder, wrap)
        if argv:
            return folder, argv
    return tree, ()


def build_check(
    tree: Path, build_command: Sequence[str], subdir: str = "", wrap: Wrap | None = None
) -> None:
    """Run the build check of the sandbox ``tree``; raise :class:`BuildFailed` if it fails.

    A given ``build_command`` runs in ``subdir`` (the folder of the project that configures
    it); otherwise the detected one runs where :func:`find_build` finds it. The build runs
    what the agent wrote (its Makefile, its scripts), so it starts through ``wrap``: under a
    confining launcher it gets the agent's confinement, never the orchestrator's rights.
    """
    folder, argv = (tree / subdir if subdir else tree), tuple(build_command)
    if not argv:
        folder, argv = find_build(tree, subdir, wrap)
    if not argv:
        return
    logger.info("build check %s in %s", argv, folder, extra={"action": "sandbox_build"})
    # the sandbox's name is its execution id: the execution's mark lets the tree kill find
    # whatever the project's build leaves running
    env = {**clean_env(), process.MARK_VARIABLE: tree.name}
    result = run_in_tree(argv, folder, env, BUILD_TIMEOUT, wrap)
    left = process.kill_marked_sync(tree.name, LEFTOVER_GRACE)  # before we commit the tree
    if left:
        logger.info(
            "killed %d process(es) the build check left running in %s",
            left,
            tree,
            extra={"action": "sandbox_build"},
        )
    if not result.ok:
        raise BuildFailed(argv, result.tail(40), str(tree))
