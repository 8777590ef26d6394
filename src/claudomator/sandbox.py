"""Per-execution git sandboxes: create, autocommit after a build check, collect, deliver, release.

Every execution works in its own git repository, ``<root>/<execution-id>``, so an agent can never
damage the user's working tree. The module is synchronous; the async pool calls it through
:func:`asyncio.to_thread`.

Cheap copies
    A sandbox is a ``git clone --shared --no-checkout`` of the project: the user's object store is
    borrowed through ``objects/info/alternates``, never copied, and only the project's current
    branch is cloned (no tags), so the clone itself is nearly free. The checkout that follows uses
    parallel workers (``checkout.workers``). Nothing is written into the user's repository: no
    worktree is registered there and no ref is written there, except by delivery in branch mode.
    The sandbox's own commits and refs live in the sandbox only.

Warm pool
    :meth:`Sandboxes.release` does not throw a finished tree away: it resets and cleans it and moves
    it (one atomic ``os.rename``) into ``<root>/.warm/<project-key>/``, keeping at most
    ``warm_per_project`` trees per project. :meth:`Sandboxes.create` takes one back with another
    atomic rename, so two racing creators never get the same tree, then hard-resets it to the
    project's current HEAD: git compares the index with the new tree and rewrites only the files
    that differ. The agent's refs and config changes are dropped on release. A tree that looks
    tampered with (an operation in progress, hooks, a worktree, a sparse checkout, a big private
    object store) is deleted rather than recycled.

Hooks
    Internal git commands run with ``core.hooksPath=/dev/null``, so no hook of the user or the agent
    runs during sandbox bookkeeping. The autocommit also passes ``--no-verify``. Pushes are the
    exception: they leave hooks alone so the receiving repository's hooks run as for any push.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from claudomator import process
from claudomator.errors import BuildFailed, SandboxError
from claudomator.models import ChangeStats, Commit, Delivery

logger = logging.getLogger(__name__)

GIT_TIMEOUT = 600.0  # seconds for one git command
MAX_DIFF_BYTES = 4 * 1024 * 1024  # of the diff kept per execution
BUILD_TIMEOUT = 30 * 60.0  # seconds for the build check
AUTOCOMMIT_MESSAGE = "chore: autocommit uncommitted changes"
INITIAL_MESSAGE = "chore: initial commit by claudomator"
FALLBACK_NAME = "Claudomator"
FALLBACK_EMAIL = "claudomator@localhost"
BRANCH_PREFIX = "claudomator/"
DELIVERY_REMOTE = "claudomator-delivery"
MAX_RECYCLED_OBJECTS_KIB = 256 * 1024  # a tree whose private object store grew past this is deleted

_WARM = ".warm"
_TRASH = ".trash"
_META = "claudomator.json"  # in the sandbox's .git: base commit, branch, project
_PRISTINE_CONFIG = "claudomator-config"  # in the sandbox's .git: its config as cloned
_IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "BISECT_LOG")
_IN_PROGRESS_DIRS = ("rebase-merge", "rebase-apply", "sequencer", "worktrees")
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first")
_SHORTSTAT = re.compile(r"(\d+) (file|insertion|deletion)")
_MAKE_TARGETS = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Sandbox:
    """One execution's git working tree."""

    dir: Path  # the agent's working tree: <root>/<execution_id>
    project_dir: Path  # the user's repository
    base_commit: str  # the commit the sandbox started from
    branch: str  # the project's branch at creation, checked out here; "HEAD" if detached


@dataclass(frozen=True)
class Collected:
    """What the agent produced in a sandbox."""

    commits: tuple[Commit, ...]  # new since base_commit, oldest first; message is the subject
    changestats: ChangeStats  # git diff --shortstat base_commit..HEAD


# --- running git -------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """The environment without variables that would point git at another repository."""
    return {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}


def _git_env() -> dict[str, str]:
    return {**_clean_env(), "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}  # C: parseable messages


def _internal_config() -> list[str]:
    workers = max(1, min(os.cpu_count() or 1, 8))
    settings = {
        "core.hooksPath": os.devnull,
        "core.fsmonitor": "false",
        "gc.auto": "0",
        "maintenance.auto": "false",
        "advice.detachedHead": "false",
        "checkout.workers": str(workers),
    }
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


def _git(
    cwd: Path,
    *args: str,
    sandbox: Path | None = None,
    hooks: bool = False,
    check: bool = True,
    input_text: str | None = None,
) -> process.CommandResult:
    """Run ``git args`` in ``cwd``; on failure raise :class:`SandboxError` naming command and tail.

    ``sandbox`` is the sandbox the error message points at; ``hooks`` lets hooks run (pushes).
    """
    config = [] if hooks else _internal_config()
    result = process.run(
        ["git", *config, *args],
        cwd=cwd,
        env=_git_env(),
        timeout=GIT_TIMEOUT,
        input_text=input_text,
    )
    if check and not result.ok:
        raise SandboxError(
            f"`git {' '.join(args)}` failed in {cwd} (exit {result.returncode}):\n{result.tail()}",
            str(sandbox) if sandbox else None,
        )
    return result


def _identity(cwd: Path) -> list[str]:
    """``-c user.name/-c user.email`` fallbacks for whatever identity git has no config for.

    The environment (``GIT_AUTHOR_*``, ``GIT_COMMITTER_*``) still wins over these, as always in git.
    """
    found = _git(cwd, "config", "--get-regexp", r"^user\.(name|email)$", check=False).stdout
    keys = {line.split(" ", 1)[0] for line in found.splitlines()}
    args: list[str] = []
    if "user.name" not in keys:
        args += ["-c", f"user.name={FALLBACK_NAME}"]
    if "user.email" not in keys:
        args += ["-c", f"user.email={FALLBACK_EMAIL}"]
    return args


# --- the project side ----------------------------------------------------------------------------


def _project_head(project: Path) -> tuple[str, str] | None:
    """The HEAD commit and branch ("HEAD" if detached) of a ready project, in one git call.

    None unless ``project`` is the top level of a non-bare repository with at least one commit.
    """
    argv = ["rev-parse", "--is-bare-repository", "--show-toplevel", "HEAD"]
    found = _git(project, *argv, "--symbolic-full-name", "HEAD", check=False)
    lines = found.stdout.splitlines()
    if not found.ok or len(lines) != 4 or lines[0] != "false":
        return None
    if Path(lines[1]).resolve() != project:
        return None
    return lines[2], lines[3].removeprefix("refs/heads/")


def _is_local_url(url: str) -> bool:
    if url.startswith("file://"):
        return True
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" not in head  # host:path is scp-like ssh


def _remotes(project: Path) -> dict[str, str]:
    """The project's remotes: name -> URL."""
    listing = _git(project, "config", "--get-regexp", r"^remote\..*\.url$", check=False).stdout
    urls = {}
    for line in listing.splitlines():
        key, _, url = line.partition(" ")
        urls[key.removeprefix("remote.").removesuffix(".url")] = url
    return urls


def _push_target(project: Path, remotes: Mapping[str, str]) -> tuple[str, str] | None:
    """(remote name, URL) to push to: ``local``, else a local-path ``origin``; None if neither."""
    for name in ("local", "origin"):
        url = remotes.get(name)
        if url and (name == "local" or _is_local_url(url)):
            if _is_local_url(url) and not url.startswith("file://"):
                url = str((project / url).resolve())
            return name, url
    return None


# --- the build check -----------------------------------------------------------------------------


def _has_make_build(tree: Path, makefile: Path) -> bool:
    """Whether make has a ``build`` rule: a ``build:`` line, else ask ``make -n build``."""
    text = makefile.read_text(encoding="utf-8", errors="replace")
    if any("build" in m.group(1).split() for m in _MAKE_TARGETS.finditer(text)):
        return True
    dry_run = process.run(["make", "-n", "build"], cwd=tree, env=_clean_env(), timeout=60)
    return dry_run.ok


def detect_build_command(tree: Path) -> tuple[str, ...]:
    """The build check for ``tree``: make build, ./gradlew build, go build ./... or none."""
    makefiles = [tree / n for n in ("GNUmakefile", "makefile", "Makefile") if (tree / n).is_file()]
    if makefiles and _has_make_build(tree, makefiles[0]):  # the one make reads
        return ("make", "build")
    gradlew = tree / "gradlew"
    if gradlew.is_file():
        return ("./gradlew", "build") if os.access(gradlew, os.X_OK) else ("sh", "gradlew", "build")
    if (tree / "go.mod").is_file():
        return ("go", "build", "./...")
    return ()


def _build_check(box: Sandbox, build_command: Sequence[str]) -> None:
    argv = tuple(build_command) or detect_build_command(box.dir)
    if not argv:
        return
    logger.info("build check %s in %s", argv, box.dir, extra={"action": "sandbox_build"})
    result = process.run(argv, cwd=box.dir, env=_clean_env(), timeout=BUILD_TIMEOUT)
    if not result.ok:
        raise BuildFailed(argv, result.tail(40), str(box.dir))


# --- the sandbox side ----------------------------------------------------------------------------


def _write_meta(box: Sandbox) -> None:
    meta = {"base_commit": box.base_commit, "branch": box.branch, "project": str(box.project_dir)}
    (box.dir / ".git" / _META).write_text(json.dumps(meta) + "\n", encoding="utf-8")


def _point_at(tree: Path, head: str, branch: str, *, clean: bool) -> None:
    """Hard-reset ``tree`` to ``head`` on ``branch`` (or detached); ``clean`` untracked files.

    ``checkout -f -B`` is ``symbolic-ref`` plus ``reset --hard`` in one command (and measurably
    faster): it compares the index with the target tree, so a recycled tree only gets the files
    that differ rewritten, and local changes are thrown away.
    """
    target = ["--detach"] if branch == "HEAD" else ["-B", branch]
    _git(tree, "checkout", "-q", "-f", *target, head, sandbox=tree)
    if clean:
        _git(tree, "clean", "-q", "-ffdx", sandbox=tree)


def _recyclable(tree: Path) -> str:
    """Why ``tree`` must not be recycled, or "" if it may be."""
    git_dir = tree / ".git"
    if not git_dir.is_dir() or not (git_dir / _PRISTINE_CONFIG).is_file():
        return "not a sandbox clone"
    busy = [n for n in _IN_PROGRESS if (git_dir / n).exists()]
    busy += [
        n for n in _IN_PROGRESS_DIRS if (git_dir / n).is_dir() and any((git_dir / n).iterdir())
    ]
    if busy:
        return f"operation in progress ({', '.join(busy)})"
    hooks = git_dir / "hooks"
    if hooks.is_dir() and any(hooks.iterdir()):
        return "hooks installed"
    if (git_dir / "info" / "sparse-checkout").exists():
        return "sparse checkout"
    counts = _git(tree, "count-objects", "-v", sandbox=tree).stdout
    sizes = dict(line.split(": ", 1) for line in counts.splitlines() if ": " in line)
    if int(sizes.get("size", "0")) + int(sizes.get("size-pack", "0")) > MAX_RECYCLED_OBJECTS_KIB:
        return "private object store too big"
    return ""


def _scrub(box: Sandbox) -> None:
    """Undo the agent's config changes, reset and clean a finished tree, drop the agent's refs."""
    tree = box.dir
    pristine = (tree / ".git" / _PRISTINE_CONFIG).read_bytes()
    (tree / ".git" / "config").write_bytes(pristine)
    _git(tree, "reset", "-q", "--hard", sandbox=tree)
    _git(tree, "clean", "-q", "-ffdx", sandbox=tree)
    keep = {_git(tree, "symbolic-ref", "-q", "HEAD", check=False, sandbox=tree).stdout.strip()}
    refs = _git(tree, "for-each-ref", "--format=%(refname)", sandbox=tree).stdout.split()
    doomed = [r for r in refs if r not in keep and not r.startswith("refs/remotes/origin/")]
    if doomed:
        batch = "".join(f"delete {ref}\n" for ref in doomed)
        _git(tree, "update-ref", "--stdin", input_text=batch, sandbox=tree)


class Sandboxes:
    """Creates, collects, delivers and recycles the sandboxes under ``root``."""

    def __init__(self, root: Path, *, warm_per_project: int = 2) -> None:
        self.root = root
        self.warm_per_project = warm_per_project
        self._pool_lock = threading.Lock()

    # --- projects ---

    def prepare_project(self, project_dir: Path) -> None:
        """Make ``project_dir`` a git repository with at least one commit.

        A plain directory is initialised and everything in it committed; a repository without
        commits gets an empty initial commit (whatever is staged stays staged). A folder inside
        another repository gets a repository of its own only if that repository ignores it. Raises
        :class:`SandboxError` if the directory is missing, is a bare repository, or is a tracked
        folder of another repository.
        """
        project = project_dir.expanduser()
        if not project.is_dir():
            raise SandboxError(f"project directory {project} does not exist")
        project = project.resolve()
        found = _git(project, "rev-parse", "--is-bare-repository", "--show-toplevel", check=False)
        bare, _, top = found.stdout.strip().partition("\n")
        if bare == "true":
            raise SandboxError(f"project directory {project} is a bare repository")
        if not found.ok or Path(top).resolve() != project:
            if found.ok and not _git(project, "check-ignore", "-q", ".", check=False).ok:
                raise SandboxError(
                    f"project directory {project} is inside the git repository {top}; "
                    "use that repository as the project directory"
                )
            self._init_project(project)  # not a repository, or an ignored folder of one
        elif not _git(project, "rev-parse", "-q", "--verify", "HEAD", check=False).ok:
            self._initial_commit(project)

    def _init_project(self, project: Path) -> None:
        logger.info("initialising git repository in %s", project, extra={"action": "project_init"})
        _git(project, "init", "-q")
        _git(project, "add", "-A")
        commit = ["commit", "-q", "--no-verify", "--allow-empty", "-m", INITIAL_MESSAGE]
        _git(project, *_identity(project), *commit)

    def _initial_commit(self, project: Path) -> None:
        logger.info(
            "empty repository %s: initial commit", project, extra={"action": "project_init"}
        )
        empty_tree = _git(project, "mktree", input_text="").stdout.strip()
        ident = _identity(project)
        commit = _git(project, *ident, "commit-tree", empty_tree, "-m", INITIAL_MESSAGE).stdout
        _git(project, "update-ref", "HEAD", commit.strip())

    # --- creating ---

    def create(self, project_dir: Path, execution_id: str) -> Sandbox:
        """A fresh sandbox of the project's current HEAD at ``<root>/<execution_id>``.

        Takes a warm tree of the project if there is one, else clones. The user's uncommitted
        changes are not in the sandbox. Raises :class:`SandboxError` if git fails (nothing is
        left at ``<root>/<execution_id>`` then).
        """
        if not execution_id or "/" in execution_id or execution_id.startswith("."):
            raise SandboxError(f"invalid execution id {execution_id!r}")
        project = project_dir.expanduser().resolve()
        state = _project_head(project) if project.is_dir() else None
        if state is None:
            self.prepare_project(project_dir)
            state = _project_head(project)
        if state is None:
            raise SandboxError(f"cannot read the HEAD of project {project}")
        head, branch = state
        dest = self.root / execution_id
        if dest.exists():
            raise SandboxError(f"sandbox directory {dest} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        box = Sandbox(dest, project, head, branch)
        how = "warm tree"
        if not (self._take_warm(project, dest) and self._refresh(box)):
            how = "clone"
            self._clone(box)
        _write_meta(box)
        logger.info(
            "sandbox %s for %s at %s (%s)",
            dest,
            project,
            head[:12],
            how,
            extra={"action": "sandbox_create"},
        )
        return box

    def _clone(self, box: Sandbox) -> None:
        single = ["--single-branch"] + (["--branch", box.branch] if box.branch != "HEAD" else [])
        args = ["clone", "-q", "--shared", "--no-checkout", "--no-tags", "--template=", *single]
        try:
            _git(box.project_dir, *args, str(box.project_dir), str(box.dir))
            git_dir = box.dir / ".git"
            shutil.copyfile(git_dir / "config", git_dir / _PRISTINE_CONFIG)
            _point_at(box.dir, box.base_commit, box.branch, clean=False)
        except (SandboxError, OSError) as exc:
            _remove(box.dir)
            raise SandboxError(f"cannot create sandbox of {box.project_dir}: {exc}") from exc

    def _refresh(self, box: Sandbox) -> bool:
        """Bring a warm tree (already at ``box.dir``) to the project's HEAD; False if unusable.

        This is a fetch of the project's branch without the fetch: the objects are already there
        (the object store is shared), so only the tracking ref moves, which ``update-ref`` does in
        a tenth of the time of a ``git fetch``.
        """
        try:
            if box.branch != "HEAD":
                tracking = f"refs/remotes/origin/{box.branch}"
                _git(box.dir, "update-ref", tracking, box.base_commit, sandbox=box.dir)
            _point_at(box.dir, box.base_commit, box.branch, clean=True)
        except SandboxError as exc:
            logger.warning(
                "warm tree unusable, cloning instead: %s", exc, extra={"action": "sandbox_warm"}
            )
            _remove(box.dir)
            return False
        return True

    def _pool(self, project: Path) -> Path:
        digest = sha256(str(project).encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", project.name)[:40]
        return self.root / _WARM / f"{name}-{digest}"

    def _take_warm(self, project: Path, dest: Path) -> bool:
        pool = self._pool(project)
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

    def open(self, sandbox_dir: Path, project_dir: Path) -> Sandbox | None:
        """Re-open a preserved sandbox (to resume); None if it is missing or not a sandbox."""
        try:
            meta = json.loads((sandbox_dir / ".git" / _META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        check = _git(sandbox_dir, "rev-parse", "--show-toplevel", check=False)
        if not check.ok or Path(check.stdout.strip()).resolve() != sandbox_dir.resolve():
            return None
        project = project_dir.expanduser().resolve()
        return Sandbox(sandbox_dir, project, str(meta["base_commit"]), str(meta["branch"]))

    # --- collecting ---

    def collect(self, sandbox: Sandbox, *, build_command: Sequence[str] = ()) -> Collected:
        """Autocommit leftover changes (after the build check passes); list commits and stats.

        If the tree is dirty (tracked changes or untracked, non-ignored files) the build check runs
        first (``build_command``, else detected); if it fails :class:`BuildFailed` is raised and
        nothing is committed. The autocommit passes ``--no-verify`` (no pre-commit or commit-msg
        hook runs) and uses the fallback identity only where git has none configured.
        """
        tree = sandbox.dir
        status = _git(tree, "status", "--porcelain", "--untracked-files=normal", sandbox=tree)
        if status.stdout.strip():
            _build_check(sandbox, build_command)
            _git(tree, "add", "-A", sandbox=tree)
            if not _git(tree, "diff", "--cached", "--quiet", check=False, sandbox=tree).ok:
                commit = ["commit", "-q", "--no-verify", "-m", AUTOCOMMIT_MESSAGE]
                _git(tree, *_identity(tree), *commit, sandbox=tree)
                logger.info("autocommitted in %s", tree, extra={"action": "sandbox_autocommit"})
        span = f"{sandbox.base_commit}..HEAD"
        log = _git(tree, "log", "--reverse", "--format=%H %s", span, sandbox=tree).stdout
        commits = tuple(
            Commit(hash=line[:40], message=line[41:]) for line in log.splitlines() if line
        )
        shortstat = _git(tree, "diff", "--shortstat", sandbox.base_commit, "HEAD", sandbox=tree)
        return Collected(commits, _parse_shortstat(shortstat.stdout))

    def write_diff(self, sandbox: Sandbox, dest: Path, *, limit: int = MAX_DIFF_BYTES) -> int:
        """Write the unified diff of the agent's work (start commit to HEAD) to ``dest``.

        At most ``limit`` bytes are kept (a note says when it was cut). ``dest`` is replaced,
        never followed if it is a link (the log folder is one the agent can write to). Returns
        the size written.
        """
        dest.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(dest, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            args = ["diff", "--no-color", "--no-ext-diff", sandbox.base_commit, "HEAD"]
            result = subprocess.run(
                ["git", *_internal_config(), *args],
                cwd=sandbox.dir,
                env=_git_env(),
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=GIT_TIMEOUT,
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

    def deliver(self, sandbox: Sandbox, *, task_id: str, delivery: Delivery = Delivery.AUTO) -> str:
        """Deliver the sandbox's new commits; a human description of what happened.

        AUTO pushes when the project has a ``local`` remote or a local-path ``origin`` (and is on a
        branch), else keeps a branch; PUSH requires such a remote; BRANCH keeps
        ``claudomator/<task-id>`` in the project without touching the user's checkout.
        """
        tree = sandbox.dir
        span = f"{sandbox.base_commit}..HEAD"
        count = _git(tree, "rev-list", "--count", span, sandbox=tree).stdout.strip()
        if count == "0":
            return "no new commits; nothing delivered"
        if delivery is Delivery.BRANCH:
            return self._deliver_branch(sandbox, task_id)
        remotes = _remotes(sandbox.project_dir)
        target = _push_target(sandbox.project_dir, remotes)
        if target is not None and sandbox.branch != "HEAD":
            return self._push(sandbox, *target)
        if delivery is Delivery.PUSH:
            found = ", ".join(f"{n} ({u})" for n, u in sorted(remotes.items())) or "none"
            why = "the project is on a detached HEAD" if target else f"remotes found: {found}"
            raise SandboxError(
                f"push delivery needs a `local` remote or a local-path `origin` in "
                f"{sandbox.project_dir} ({why})",
                str(tree),
            )
        return self._deliver_branch(sandbox, task_id)

    def head_commits(self, sandbox: Sandbox, count: int) -> tuple[Commit, ...]:
        """The last ``count`` commits of the sandbox, oldest first (after a rebase, the hashes
        that were actually delivered)."""
        tree = sandbox.dir
        log = _git(
            tree, "log", "--reverse", f"-n{count}", "--format=%H %s", "HEAD", sandbox=tree
        ).stdout
        return tuple(Commit(hash=line[:40], message=line[41:]) for line in log.splitlines() if line)

    def _push(self, box: Sandbox, name: str, url: str) -> str:
        tree = box.dir
        has_remote = _git(tree, "remote", "get-url", DELIVERY_REMOTE, check=False).ok
        _git(tree, "remote", "set-url" if has_remote else "add", DELIVERY_REMOTE, url, sandbox=tree)
        refspec = f"HEAD:refs/heads/{box.branch}"
        pushed = _git(tree, "push", "-q", DELIVERY_REMOTE, refspec, hooks=True, check=False)
        rebased = not pushed.ok
        if rebased:
            if not any(marker in pushed.stderr for marker in _REJECTED):
                raise SandboxError(f"`git push` to {url} failed:\n{pushed.tail()}", str(tree))
            self._rebase_on_remote(box, url)
            _git(tree, "push", "-q", DELIVERY_REMOTE, refspec, hooks=True, sandbox=tree)
        logger.info("pushed %s to %s %s", tree, url, box.branch, extra={"action": "deliver_push"})
        suffix = " (rebased onto new upstream work)" if rebased else ""
        return f"pushed to {name}/{box.branch}{suffix}"

    def _rebase_on_remote(self, box: Sandbox, url: str) -> None:
        tree = box.dir
        upstream = f"refs/remotes/{DELIVERY_REMOTE}/{box.branch}"
        refspec = f"+refs/heads/{box.branch}:{upstream}"
        _git(tree, "fetch", "-q", "--no-tags", DELIVERY_REMOTE, refspec, sandbox=tree)
        logger.info("push rejected; rebasing %s", tree, extra={"action": "deliver_rebase"})
        rebased = _git(tree, *_identity(tree), "rebase", "-q", upstream, check=False)
        if not rebased.ok:
            _git(tree, "rebase", "--abort", check=False)
            raise SandboxError(
                f"rebase onto {url} {box.branch} failed (conflict?):\n{rebased.tail()}", str(tree)
            )

    def _deliver_branch(self, box: Sandbox, task_id: str) -> str:
        ref = f"refs/heads/{BRANCH_PREFIX}{task_id}"
        if not _git(box.project_dir, "check-ref-format", ref, check=False).ok:
            raise SandboxError(
                f"task id {task_id!r} does not make a valid branch name", str(box.dir)
            )
        fetch = ["fetch", "-q", "--no-tags", "--no-write-fetch-head", str(box.dir), f"+HEAD:{ref}"]
        _git(box.project_dir, *fetch, sandbox=box.dir)
        logger.info("kept %s as %s", box.dir, ref, extra={"action": "deliver_branch"})
        return f"branch {BRANCH_PREFIX}{task_id}"

    # --- releasing ---

    def release(self, sandbox: Sandbox) -> None:
        """Retire a finished sandbox: its directory disappears, into the warm pool if it can."""
        tree = sandbox.dir
        if not tree.exists():
            return
        if self.warm_per_project > 0 and self._recycle(sandbox):
            return
        self._discard(tree)

    def _recycle(self, box: Sandbox) -> bool:
        try:
            reason = _recyclable(box.dir)
            if not reason:
                _scrub(box)
        except (SandboxError, OSError) as exc:
            reason = str(exc)
        if reason:
            logger.info(
                "not recycling %s: %s", box.dir, reason, extra={"action": "sandbox_release"}
            )
            return False
        pool = self._pool(box.project_dir)
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
        trash = self.root / _TRASH
        trash.mkdir(parents=True, exist_ok=True)
        doomed = trash / uuid.uuid4().hex
        try:
            os.rename(tree, doomed)
        except OSError as exc:
            raise SandboxError(f"cannot remove sandbox {tree}: {exc}", str(tree)) from exc
        _remove(doomed)
        logger.info("removed sandbox %s", tree, extra={"action": "sandbox_release"})


def _remove(path: Path) -> None:
    """Delete a tree, including read-only directories an agent or a build tool left behind."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        path.chmod(0o700)
        for parent, dirs, _ in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(parent, name), 0o700)
        shutil.rmtree(path)


def _parse_shortstat(text: str) -> ChangeStats:
    found: Mapping[str, int] = {kind: int(n) for n, kind in _SHORTSTAT.findall(text)}
    return ChangeStats(
        files=found.get("file", 0),
        insertions=found.get("insertion", 0),
        deletions=found.get("deletion", 0),
    )
