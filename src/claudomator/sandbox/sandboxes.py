"""The sandboxes under one root: create, collect, deliver, recycle (see the package docstring)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.models import ChangeStats, Commit, Delivery
from claudomator.sandbox import delivery as delivering
from claudomator.sandbox import git, warm
from claudomator.sandbox import tree as trees
from claudomator.sandbox.build import build_check
from claudomator.sandbox.project import (
    Guard,
    Location,
    prepare,
    prepare_scratch,
    project_head,
    ready,
    uncommitted_changes,
)
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)

MAX_DIFF_BYTES = 4 * 1024 * 1024  # of the diff kept per execution
AUTOCOMMIT_MESSAGE = "chore: autocommit uncommitted changes"
_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHORTSTAT = re.compile(r"(\d+) (file|insertion|deletion)")


@dataclass(frozen=True)
class Collected:
    """What the agent produced in a sandbox."""

    commits: tuple[Commit, ...]  # new since the start (or ``since``), oldest first; subjects
    changestats: ChangeStats  # git diff --shortstat <start>..HEAD


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
        if not execution_id or "/" in execution_id or execution_id.startswith("."):
            raise SandboxError(f"invalid execution id {execution_id!r}")
        where = self.locate(project_dir)
        project, head, branch = where.root, where.head, where.branch
        dest = self.root / execution_id
        if dest.exists():
            raise SandboxError(f"sandbox directory {dest} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        box = Sandbox(dest, project, head, branch, where.subdir)
        how = "warm tree"
        if not (warm.take(self.root, project, branch, dest) and self._refresh(box)):
            how = "clone"
            self._clone(box)
        try:
            trees.inner_dir(dest, box.subdir)  # a fresh checkout: a committed folder is there
            trees.save_state(self.root, box, trees.read_config(dest))
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

    def locate(self, project_dir: Path) -> Location:
        """The ready project of ``project_dir``: its repository, subdirectory and HEAD.

        A subdirectory committed in a repository is located in that repository (the sandbox
        copies the whole repository and the agent works in the subdirectory). A folder that is
        not ready is prepared first (see :meth:`prepare_project`). Raises :class:`SandboxError`
        for a folder that cannot be a project, or one inside Claudomator's sandboxes.
        """
        return ready(project_dir, self.guard)

    def _clone(self, box: Sandbox) -> None:
        try:
            warm.clone(box.project_dir, box.branch, box.dir)
            _point_at(box.dir, box.base_commit, box.branch, clean=False)
        except (SandboxError, OSError) as exc:
            trees.remove(box.dir)
            raise SandboxError(f"cannot create sandbox of {box.project_dir}: {exc}") from exc

    def _refresh(self, box: Sandbox) -> bool:
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

    def open(self, sandbox_dir: Path, project_dir: Path) -> Sandbox | None:
        """Re-open a preserved sandbox (to resume); None if it is missing, not a sandbox of
        this root, or tampered with."""
        if sandbox_dir.parent.resolve() != self.root.resolve():
            return None
        wanted = project_dir.expanduser().resolve()
        state = self._state(sandbox_dir, wanted)
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

    def _state(self, tree: Path, project: Path) -> dict[str, str] | None:
        """The record of ``tree``; a sandbox made by an older version gets one now."""
        state = trees.load_state(self.root, tree)
        return state if state is not None else self._adopt(tree, project)

    def _adopt(self, tree: Path, project: Path) -> dict[str, str] | None:
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
        if not (_COMMIT_ID.fullmatch(base) and named and project.is_dir()):
            return None
        try:
            config = warm.fresh_config(self.root, project, branch)
        except (SandboxError, OSError) as exc:
            logger.warning("cannot adopt %s: %s", tree, exc, extra={"action": "resume"})
            return None
        box = Sandbox(tree, project, base, branch)
        trees.save_state(self.root, box, config)
        return trees.load_state(self.root, tree)

    def _reclaim(self, box: Sandbox) -> None:
        """Take the tree back from its agent before any bookkeeping in it (see tree.reclaim)."""
        state = self._state(box.dir, box.project_dir)
        if state is None:
            raise SandboxError(f"no record of sandbox {box.dir} under {self.root}", str(box.dir))
        trees.reclaim(box.dir, state["config"])

    # --- collecting ---

    def collect(
        self,
        sandbox: Sandbox,
        *,
        build_command: Sequence[str] = (),
        build_dir: str | None = None,
        since: str = "",
        message: str = AUTOCOMMIT_MESSAGE,
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
        through a shell.
        """
        self._reclaim(sandbox)
        tree = sandbox.dir
        status = git.tree_git(tree, "status", "--porcelain", "--untracked-files=normal")
        if status.stdout.strip():
            subdir = sandbox.subdir if build_dir is None else build_dir
            trees.inner_dir(tree, subdir)  # never a build in a folder the agent linked elsewhere
            build_check(tree, build_command, subdir)
            git.tree_git(tree, "add", "-A")
            if not git.tree_git(tree, "diff", "--cached", "--quiet", check=False).ok:
                commit = ["commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", "-"]
                who = git.identity(tree, tree=tree)
                git.tree_git(tree, *who, *commit, input_text=message or AUTOCOMMIT_MESSAGE)
                logger.info("autocommitted in %s", tree, extra={"action": "sandbox_autocommit"})
        start = self._start(sandbox, since)
        span = f"{start}..HEAD"
        log = git.tree_git(tree, "log", "--reverse", "--no-show-signature", "--format=%H %s", span)
        commits = tuple(
            Commit(hash=line[:40], message=line[41:]) for line in log.stdout.splitlines() if line
        )
        stat = ["diff", "--no-ext-diff", "--no-textconv", "--shortstat", start]
        shortstat = git.tree_git(tree, *stat, "HEAD")
        return Collected(commits, _parse_shortstat(shortstat.stdout))

    def _start(self, sandbox: Sandbox, since: str) -> str:
        """The commit the agent's new work is counted from: ``since`` if it is a commit of
        the sandbox (the head an earlier execution delivered), else the start commit."""
        if not since or since == sandbox.base_commit:
            return sandbox.base_commit
        if _COMMIT_ID.fullmatch(since):
            found = git.tree_git(sandbox.dir, "cat-file", "-e", f"{since}^{{commit}}", check=False)
            if found.ok:
                return since
        logger.warning(
            "%s: the earlier head %s is not in the sandbox; counting from its start commit",
            sandbox.dir,
            since[:12],
            extra={"action": "sandbox_collect"},
        )
        return sandbox.base_commit

    def write_diff(
        self, sandbox: Sandbox, dest: Path, *, limit: int = MAX_DIFF_BYTES, since: str = ""
    ) -> int:
        """Write the unified diff of the agent's work (start commit, or ``since`` as in
        :meth:`collect`, to HEAD) to ``dest``.

        At most ``limit`` bytes are kept (a note says when it was cut). ``dest`` is replaced,
        never followed if it is a link (the log folder is one the agent can write to). Returns
        the size written.
        """
        self._reclaim(sandbox)
        start = self._start(sandbox, since)
        dest.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(dest, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", start]
            result = subprocess.run(
                git.argv(*args, "HEAD", tree=sandbox.dir),
                cwd=sandbox.dir,
                env=git.git_env(),
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=git.GIT_TIMEOUT,
                check=False,
            )
            if result.returncode != 0:
                tail = result.stderr.decode("utf-8", "replace")[-500:]
                raise SandboxError(f"`git diff` failed in {sandbox.dir}: {tail}", str(sandbox.dir))
            size = out.tell()
            if size > limit:
                out.truncate(limit)
                out.seek(limit)
                out.write(f"\n[diff cut at {limit} of {size} bytes]\n".encode())
                size = out.tell()
        return size

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
        self._reclaim(sandbox)
        names = delivering.Naming(task_id, task_name, branch)
        return delivering.deliver(self.root, sandbox, names, delivery)

    def on_target(self, sandbox: Sandbox, commits: Sequence[str]) -> bool:
        """Whether ``commits`` (hashes) are all on the branch the sandbox delivers to by push:
        a recovery after a crash during a push finishes the record instead of re-running."""
        self._reclaim(sandbox)
        return delivering.on_target(self.root, sandbox, commits)

    def head_commits(self, sandbox: Sandbox, count: int) -> tuple[Commit, ...]:
        """The last ``count`` commits of the sandbox, oldest first (after a rebase, the hashes
        that were actually delivered)."""
        self._reclaim(sandbox)
        args = ["log", "--reverse", "--no-show-signature", f"-n{count}", "--format=%H %s", "HEAD"]
        log = git.tree_git(sandbox.dir, *args).stdout
        return tuple(Commit(hash=line[:40], message=line[41:]) for line in log.splitlines() if line)

    # --- releasing ---

    def release(self, sandbox: Sandbox) -> None:
        """Retire a finished sandbox: its directory disappears, into the warm pool if it can."""
        tree = sandbox.dir
        trees.drop_state(self.root, tree)
        if not os.path.lexists(tree):
            return
        if self.warm_per_project > 0 and self._recycle(sandbox):
            return
        self._discard(tree)

    def _recycle(self, box: Sandbox) -> bool:
        state = project_head(box.project_dir) if box.project_dir.is_dir() else None
        if state is None:
            return False
        head, branch = state
        pool = warm.pool_dir(self.root, box.project_dir, branch)  # trees cloned of that branch
        with self._pool_lock:
            if pool.is_dir() and sum(1 for _ in pool.iterdir()) >= self.warm_per_project:
                return False
        reason = warm.rebuild(self.root, box.dir, box.project_dir, head, branch)
        if reason:
            logger.info(
                "not recycling %s: %s", box.dir, reason, extra={"action": "sandbox_release"}
            )
            return False
        with self._pool_lock:
            try:
                pool.mkdir(parents=True, exist_ok=True)
                if sum(1 for _ in pool.iterdir()) >= self.warm_per_project:
                    return False
                os.rename(box.dir, pool / uuid.uuid4().hex)
            except OSError as exc:
                logger.warning(
                    "cannot recycle %s: %s", box.dir, exc, extra={"action": "sandbox_release"}
                )
                return False
        logger.info("recycled %s into %s", box.dir, pool, extra={"action": "sandbox_release"})
        return True

    def _discard(self, tree: Path) -> None:
        trash = self.root / warm.TRASH_DIR
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


def _parse_shortstat(text: str) -> ChangeStats:
    found: Mapping[str, int] = {kind: int(n) for n, kind in _SHORTSTAT.findall(text)}
    return ChangeStats(
        files=found.get("file", 0),
        insertions=found.get("insertion", 0),
        deletions=found.get("deletion", 0),
    )
