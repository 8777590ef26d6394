"""The sandboxes under one root, behind one object: :class:`Sandboxes` (see the package docstring).

Each step is a module of its own; this class holds what they share (the root, the warm-pool
size and its lock, the project guard) and takes a tree back from its agent before any
bookkeeping in it: :mod:`~claudomator.sandbox.creation` (a fresh sandbox),
:mod:`~claudomator.sandbox.reopening` (records, reclaiming, reopening),
:mod:`~claudomator.sandbox.collection` (autocommit, commits, stats, diff),
:mod:`~claudomator.sandbox.delivery` (push or branch) and :mod:`~claudomator.sandbox.recycling`
(release into the warm pool).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from claudomator.models import Commit, Delivery
from claudomator.sandbox import collection, creation, recycling, reopening
from claudomator.sandbox import delivery as delivering
from claudomator.sandbox.build import Wrap
from claudomator.sandbox.collection import AUTOCOMMIT_MESSAGE, MAX_DIFF_BYTES, Collected
from claudomator.sandbox.project import (
    Guard,
    Location,
    prepare,
    prepare_scratch,
    ready,
    uncommitted_changes,
)
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)


class Sandboxes:
    """Creates, collects, delivers and recycles the sandboxes under ``root``.

    ``data_dir`` and ``projects`` (a callable listing the configured and registered project
    folders) tell :meth:`prepare_project` which folders a plain project folder must not be or
    contain; ``max_init_files``/``max_init_bytes`` cap what an automatic ``git init`` commits.
    """

    def __init__(
        self,
        root: Path,
        *,
        warm_per_project: int = 2,
        data_dir: Path | None = None,
        projects: Callable[[], Iterable[Path]] | None = None,
        max_init_files: int | None = None,
        max_init_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.warm_per_project = warm_per_project
        self.guard = Guard(
            data_dir=data_dir,
            sandboxes_root=root,
            projects=projects or (lambda: ()),
            **({"max_files": max_init_files} if max_init_files is not None else {}),
            **({"max_bytes": max_init_bytes} if max_init_bytes is not None else {}),
        )
        self._pool_lock = threading.Lock()

    def with_pool(self, warm_per_project: int) -> Sandboxes:
        """The same sandboxes with another warm-pool size."""
        other = Sandboxes(self.root, warm_per_project=warm_per_project)
        other.guard = self.guard
        return other

    # --- projects ---

    def prepare_project(self, project_dir: Path) -> None:
        """Make ``project_dir`` a git repository with at least one commit.

        A plain directory is initialised and everything in it committed, unless it is or holds
        a folder no project may be (``/``, the home or temp directory, the data directory), holds
        another project or a git repository, or is bigger than the init limits (then
        :class:`SandboxError`, and no ``.git`` is left behind). A repository without commits gets
        an empty initial commit (whatever is staged stays staged). A folder inside another
        repository gets a repository of its own only if that repository ignores it; otherwise
        it is a package of that repository (see :meth:`locate`) and must be in its HEAD. Raises
        :class:`SandboxError` if the directory is missing, is a bare repository, is a folder of
        another repository that is in none of its commits yet, or if git fails in any way other
        than saying it is not a repository.
        """
        prepare(project_dir, self.guard)

    def prepare_scratch(self, scratch_dir: Path, workspace: Path) -> None:
        """Make a project-less task's folder ``scratch_dir`` (directly in ``workspace``) a
        repository of its own with at least one commit, whatever repository contains it."""
        prepare_scratch(scratch_dir, workspace)

    def uncommitted(self, project_dir: Path) -> int | None:
        """How many paths of the user's checkout have uncommitted changes (they are not in a
        sandbox); None if git cannot tell. Reads only: the user's index is not refreshed."""
        project = project_dir.expanduser().resolve()
        return uncommitted_changes(project) if project.is_dir() else None

    # --- creating ---

    def create(self, project_dir: Path, execution_id: str) -> Sandbox:
        """A fresh sandbox of the project's current HEAD at ``<root>/<execution_id>``.

        Takes a warm tree of the project if there is one, else clones. The user's uncommitted
        changes are not in the sandbox. Raises :class:`SandboxError` if git fails (nothing is
        left at ``<root>/<execution_id>`` then).
        """
        creation.check_execution_id(execution_id)
        return creation.create(self.root, self.locate(project_dir), execution_id)

    def locate(self, project_dir: Path) -> Location:
        """The ready project of ``project_dir``: its repository, subdirectory and HEAD.

        A subdirectory committed in a repository is located in that repository (the sandbox
        copies the whole repository and the agent works in the subdirectory). A folder that is
        not ready is prepared first (see :meth:`prepare_project`). Raises :class:`SandboxError`
        for a folder that cannot be a project, or one inside Claudomator's sandboxes.
        """
        return ready(project_dir, self.guard)

    def reopen(self, sandbox_dir: Path, project_dir: Path) -> Sandbox | None:
        """Re-open a preserved sandbox (to resume); None if it is missing, not a sandbox of
        this root, or tampered with."""
        return reopening.reopen(self.root, sandbox_dir, project_dir)

    def _take_back(self, box: Sandbox) -> None:
        """Take the tree back from its agent before any bookkeeping in it (see tree.reclaim)."""
        reopening.take_back(self.root, box)

    # --- collecting ---

    def collect(
        self,
        sandbox: Sandbox,
        *,
        build_command: Sequence[str] = (),
        build_dir: str | None = None,
        since: str = "",
        message: str = AUTOCOMMIT_MESSAGE,
        wrap: Wrap | None = None,
    ) -> Collected:
        """Autocommit leftover changes (after the build check passes); list commits and stats.

        The commits and stats are those after ``since`` (a commit id: the head an earlier
        execution in this sandbox already delivered, when a review round resumes it), else
        after the sandbox's start commit. If the tree is dirty (tracked changes or untracked,
        non-ignored files) the build check runs first (``build_command`` in ``build_dir``, by
        default the agent's subdirectory; else the one detected nearest that subdirectory); if
        it fails :class:`BuildFailed` is raised and nothing is committed. The autocommit passes
        ``--no-verify`` (no pre-commit or commit-msg hook runs) and uses the fallback identity
        only where git has none configured. ``message`` is its message (see
        :func:`claudomator.naming.commit_message`), given to git on its standard input, never
        through a shell. The build check's commands start through ``wrap`` (the execution's
        confinement; :data:`claudomator.sandbox.build.Wrap`).
        """
        self._take_back(sandbox)
        return collection.collect(
            sandbox,
            build_command=build_command,
            build_dir=build_dir,
            since=since,
            message=message,
            wrap=wrap,
        )

    def write_diff(
        self, sandbox: Sandbox, dest: Path, *, limit: int = MAX_DIFF_BYTES, since: str = ""
    ) -> int:
        """Write the unified diff of the agent's work (start commit, or ``since`` as in
        :meth:`collect`, to HEAD) to ``dest``.

        At most ``limit`` bytes are kept (a note says when it was cut). ``dest`` is replaced,
        never followed if it is a link (the log folder is one the agent can write to). Returns
        the size written.
        """
        self._take_back(sandbox)
        return collection.write_diff(sandbox, dest, limit=limit, since=since)

    # --- delivering ---

    def deliver(
        self,
        sandbox: Sandbox,
        *,
        task_id: str,
        delivery: Delivery = Delivery.AUTO,
        task_name: str = "",
        branch: str = "",
    ) -> delivering.Delivered:
        """Deliver the sandbox's new commits; what was done, as a :class:`Delivered`.

        AUTO pushes when the project has a ``local`` remote or a local-path ``origin`` (and is on a
        branch), else keeps a branch; PUSH requires such a remote; BRANCH keeps the task's branch
        (``branch``, the one recorded for it, else ``claudomator/<short-id>-<slug of task_name>``,
        see :mod:`claudomator.naming`) in the project without touching the user's checkout.
        Pushes to one target are serialised on this machine and rebased and retried while
        rejected; a true conflict keeps the branch and raises :class:`DeliveryConflict`.
        """
        self._take_back(sandbox)
        names = delivering.Naming(task_id, task_name, branch)
        return delivering.deliver(self.root, sandbox, names, delivery)

    def on_target(self, sandbox: Sandbox, commits: Sequence[str]) -> bool:
        """Whether ``commits`` (hashes) are all on the branch the sandbox delivers to by push:
        a recovery after a crash during a push finishes the record instead of re-running."""
        self._take_back(sandbox)
        return delivering.on_target(self.root, sandbox, commits)

    def head_commits(self, sandbox: Sandbox, count: int) -> tuple[Commit, ...]:
        """The last ``count`` commits of the sandbox, oldest first (after a rebase, the hashes
        that were actually delivered)."""
        self._take_back(sandbox)
        return collection.head_commits(sandbox, count)

    # --- releasing ---

    def release(self, sandbox: Sandbox) -> None:
        """Retire a finished sandbox: its directory disappears, into the warm pool if it can."""
        recycling.release(self.root, sandbox, self.warm_per_project, self._pool_lock)
