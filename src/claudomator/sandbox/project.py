"""The user's project: is it a repository, what is its HEAD, may a plain folder become one.

A folder committed in a repository (a monorepo's package) is a project too: the repository is
the project for git and the agent works in that folder of the sandbox (:class:`Location`).

"git failed" is never read as "not a repository": only git's own ``not a git repository``
answer lets a folder be initialised, and then only a folder that is plainly meant to be a
project (not ``/``, the home or temp directory, the data directory or anything above them, not
a folder holding another project or repository) and small enough to commit whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.sandbox import git
from claudomator.sandbox.tree import remove

logger = logging.getLogger(__name__)

INITIAL_MESSAGE = "chore: initial commit by claudomator"
MAX_INIT_FILES = 10_000  # files an automatic `git init` may commit
MAX_INIT_BYTES = 200 * 1024 * 1024  # bytes an automatic `git init` may commit
_NOT_A_REPOSITORY = "not a git repository"


@dataclass(frozen=True)
class Guard:
    """What a plain folder must not be, and how much an automatic init may commit."""

    data_dir: Path | None = None
    sandboxes_root: Path | None = None
    projects: Callable[[], Iterable[Path]] = field(default=lambda: ())
    max_files: int = MAX_INIT_FILES
    max_bytes: int = MAX_INIT_BYTES

    def protected(self) -> list[tuple[Path, str]]:
        """Folders no project may be, or contain: (folder, what it is)."""
        places = [(Path("/"), "the root directory")]
        with contextlib.suppress(RuntimeError):  # no HOME and no password entry
            places.append((Path.home(), "your home directory"))
        places += [(Path("/tmp"), "the temp directory")]  # noqa: S108 - refused, not used
        places += [(Path(tempfile.gettempdir()), "the temp directory")]
        if self.data_dir is not None:
            places.append((self.data_dir, "Claudomator's data directory"))
        if self.sandboxes_root is not None:
            places.append((self.sandboxes_root, "Claudomator's sandboxes"))
        return [(p.expanduser().resolve(), what) for p, what in places]


@dataclass(frozen=True)
class Location:
    """Where a ready project folder is for git: its repository, and the folder inside it.

    ``root`` (the repository's top level) is the project for everything git does: the sandbox
    is a copy of it, warm trees, delivery and push locks are keyed by it and its branch. The
    agent works in ``subdir`` of the sandbox ("" at the top level; POSIX, no ``..``).
    """

    root: Path
    subdir: str
    head: str
    branch: str  # "HEAD" if detached


def project_head(project: Path) -> tuple[str, str] | None:
    """The HEAD commit and branch ("HEAD" if detached) of a ready project, in one git call.

    None unless ``project`` is the top level of a non-bare repository with at least one commit.
    """
    found = locate(project)
    if found is None or found.subdir:
        return None
    return found.head, found.branch


def relative_subdir(project: Path, root: Path) -> str:
    """``project`` relative to ``root`` (both resolved) as a POSIX path; "" if they are equal.

    Raises :class:`SandboxError` if ``project`` is not inside ``root`` or the path has a part
    that is not a plain name (``..``, ``.``, or ``.git``).
    """
    try:
        parts = project.relative_to(root).parts
    except ValueError as exc:
        raise SandboxError(f"project directory {project} is not inside {root}") from exc
    bad = [p for p in parts if p in ("", ".", "..", ".git") or "/" in p or "\0" in p]
    if bad:
        raise SandboxError(f"project directory {project}: {bad[0]!r} in its path inside {root}")
    return "/".join(parts)


def locate(project: Path) -> Location | None:
    """The repository, subdirectory and HEAD of the resolved folder ``project``, if it is ready.

    Ready: inside a non-bare repository with at least one commit whose HEAD holds ``project``
    (its top level, or a subdirectory committed there). One git call for a top level, two for a
    subdirectory. None otherwise (:func:`prepare` says why, or makes it ready).
    """
    args = ["rev-parse", "--is-bare-repository", "--show-toplevel", "HEAD"]
    found = git.run(project, *args, "--symbolic-full-name", "HEAD", check=False)
    lines = found.stdout.splitlines()
    if not found.ok or len(lines) != 4 or lines[0] != "false":
        return None
    root = Path(lines[1]).resolve()
    head, branch = lines[2], lines[3].removeprefix("refs/heads/")
    if root == project:
        return Location(root, "", head, branch)
    try:
        subdir = relative_subdir(project, root)
    except SandboxError:
        return None
    if not _committed_folder(root, head, subdir):
        return None  # untracked or ignored: prepare() tells which
    return Location(root, subdir, head, branch)


def _committed_folder(root: Path, head: str, subdir: str) -> bool:
    kind = git.run(root, "cat-file", "-t", f"{head}:{subdir}", check=False)
    return kind.ok and kind.stdout.strip() == "tree"


def uncommitted_changes(project: Path, *, timeout: float = 30.0) -> int | None:
    """How many paths of the project's checkout have uncommitted changes (untracked, non-ignored
    files included); None if git cannot tell in ``timeout`` seconds.

    ``--no-optional-locks``: git does not refresh the user's index, so nothing in the project
    is written.
    """
    args = ["--no-optional-locks", "status", "--porcelain", "--untracked-files=normal"]
    found = git.run(project, *args, check=False, timeout=timeout)
    if not found.ok:
        return None
    return sum(1 for line in found.stdout.splitlines() if line.strip())


def prepare(project_dir: Path, guard: Guard) -> None:
    """Make ``project_dir`` a git repository with at least one commit (see Sandboxes)."""
    project = project_dir.expanduser()
    if not project.is_dir():
        raise SandboxError(f"project directory {project} does not exist")
    project = project.resolve()
    found = git.run(project, "rev-parse", "--is-bare-repository", "--show-toplevel", check=False)
    bare, _, top = found.stdout.strip().partition("\n")
    if not found.ok:
        if found.returncode != 128 or _NOT_A_REPOSITORY not in found.stderr:
            raise SandboxError(
                f"cannot tell whether project directory {project} is a git repository: "
                f"`git rev-parse` failed (exit {found.returncode}):\n{found.tail()}"
            )
        _init(project, guard)  # git's own answer: not a repository
        return
    if bare == "true":
        raise SandboxError(f"project directory {project} is a bare repository")
    if Path(top).resolve() != project:
        ignored = git.run(project, "check-ignore", "-q", ".", check=False)
        if ignored.returncode == 1:
            _check_subdir(project, Path(top).resolve())
            return  # a subdirectory of a repository (a monorepo's package): the agent works there
        if not ignored.ok:
            raise SandboxError(
                f"cannot tell whether {project} is ignored by the repository {top}:\n"
                f"{ignored.tail()}"
            )
        _init(project, guard)  # an ignored folder of another repository
        return
    has_head = git.run(project, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if has_head.returncode == 1 and not has_head.stdout.strip():
        _initial_commit(project)
    elif not has_head.ok:
        raise SandboxError(
            f"cannot read the HEAD of project {project} (exit {has_head.returncode}):\n"
            f"{has_head.tail()}"
        )


def ready(project_dir: Path, guard: Guard) -> Location:
    """The :class:`Location` of ``project_dir``, prepared first if it is not ready.

    Raises :class:`SandboxError` for a folder that cannot be a project (see :func:`prepare`)
    or one in a repository inside Claudomator's sandboxes.
    """
    project = project_dir.expanduser().resolve()
    where = locate(project) if project.is_dir() else None
    if where is None:
        prepare(project_dir, guard)
        where = locate(project)
    if where is None:
        raise SandboxError(f"cannot read the HEAD of project {project}")
    sandboxes = guard.sandboxes_root
    if sandboxes is not None and where.root.is_relative_to(sandboxes.expanduser().resolve()):
        raise SandboxError(f"project directory {project} is inside Claudomator's sandboxes")
    return where


def _check_subdir(project: Path, root: Path) -> None:
    """A tracked folder of ``root`` is a project only once ``root``'s HEAD holds it."""
    subdir = relative_subdir(project, root)
    has_head = git.run(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if not has_head.ok or not _committed_folder(root, has_head.stdout.strip(), subdir):
        raise SandboxError(
            f"project directory {project} is not in the commits of the repository {root} "
            f"(subdirectory {subdir}); commit it first"
        )


def prepare_scratch(scratch: Path, workspace: Path) -> None:
    """Make ``scratch`` (a project-less task's folder, ours) a repository of its own.

    ``scratch`` must be a direct child of ``workspace`` and not a link. It is initialised
    explicitly (its own ``.git``), so a repository that contains the workspace (a home
    directory kept in git) is never used. A ``.git`` that is a link or a file is refused.
    """
    workspace = workspace.expanduser().resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    if scratch.parent.expanduser().resolve() != workspace or scratch.name in ("", ".", ".."):
        raise SandboxError(f"scratch folder {scratch} is not directly in {workspace}")
    target = workspace / scratch.name
    try:
        target.mkdir(exist_ok=True)
        mode = os.lstat(target).st_mode
        git_mode = os.lstat(target / ".git").st_mode if os.path.lexists(target / ".git") else 0
    except OSError as exc:
        raise SandboxError(f"cannot make scratch folder {target}: {exc}") from exc
    if not stat.S_ISDIR(mode):
        raise SandboxError(f"scratch folder {target} is not a directory")
    if git_mode and not stat.S_ISDIR(git_mode):
        raise SandboxError(f"scratch folder {target} has a .git that is not a directory")
    if not git_mode:
        logger.info("scratch repository %s", target, extra={"action": "project_init"})
        git.run(target, "init", "-q")
    has_head = git.run(target, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if not has_head.ok:
        _initial_commit(target)


def refusal(project: Path, guard: Guard) -> str:
    """Why the plain folder ``project`` must not be initialised and committed whole, or ""."""
    protected = guard.protected()
    for place, what in protected:
        if place == project:
            return f"it is {what}"
    for place, what in protected:
        if place.is_relative_to(project):
            return f"it contains {what} ({place})"
    for other in guard.projects():
        other = other.expanduser().resolve()
        if other != project and other.is_relative_to(project):
            return f"it contains the project {other}"
    files = size = 0
    pending = [project]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            return f"cannot read {folder}: {exc.strerror}"
        for entry in entries:
            if entry.name == ".git":
                if folder == project:
                    return f"it has a {entry.path} that git does not recognise as a repository"
                return f"it holds the git repository {folder}"
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
                continue
            files += 1
            if entry.is_file(follow_symlinks=False):
                size += entry.stat(follow_symlinks=False).st_size
            if files > guard.max_files:
                return (
                    f"it holds more than {guard.max_files} files (the limit of an automatic init)"
                )
            if size > guard.max_bytes:
                limit = _human_size(guard.max_bytes)
                return f"it holds more than {limit} (the limit of an automatic init)"
    return ""


def _human_size(size: int) -> str:
    mib = 1024 * 1024
    return f"{size // mib} MB" if size >= mib else f"{size} bytes"


def _init(project: Path, guard: Guard) -> None:
    """``git init`` and commit a plain folder whole; on any failure leave no ``.git`` behind."""
    why = refusal(project, guard)
    if why:
        raise SandboxError(
            f"refusing to turn {project} into a git repository and commit everything in it: "
            f"{why}. Make it a git repository yourself, or choose a project folder"
        )
    logger.info("initialising git repository in %s", project, extra={"action": "project_init"})
    try:
        git.run(project, "init", "-q")
        git.run(project, "add", "-A")
        commit = ["commit", "-q", "--no-verify", "--allow-empty", "-m", INITIAL_MESSAGE]
        git.run(project, *git.identity(project), *commit)
    except SandboxError:
        _remove_new_git_dir(project)
        raise


def _remove_new_git_dir(project: Path) -> None:
    git_dir = project / ".git"
    if git_dir.is_dir() and not git_dir.is_symlink():
        remove(git_dir)
        logger.info("removed the half-made %s", git_dir, extra={"action": "project_init"})


def _initial_commit(project: Path) -> None:
    logger.info("empty repository %s: initial commit", project, extra={"action": "project_init"})
    empty_tree = git.run(project, "mktree", input_text="").stdout.strip()
    ident = git.identity(project)
    commit = git.run(project, *ident, "commit-tree", empty_tree, "-m", INITIAL_MESSAGE).stdout
    # the empty old value: HEAD's branch is only created, never moved
    git.run(project, "update-ref", "HEAD", commit.strip(), "")


# --- remotes -------------------------------------------------------------------------------------


def is_local_url(url: str) -> bool:
    if url.startswith("file://"):
        return True
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" not in head  # host:path is scp-like ssh


def remotes(project: Path) -> dict[str, str]:
    """The project's remotes: name -> URL."""
    listing = git.run(project, "config", "--get-regexp", r"^remote\..*\.url$", check=False).stdout
    urls = {}
    for line in listing.splitlines():
        key, _, url = line.partition(" ")
        urls[key.removeprefix("remote.").removesuffix(".url")] = url
    return urls


def push_target(project: Path, found: Mapping[str, str]) -> tuple[str, str] | None:
    """(remote name, URL) to push to: ``local``, else a local-path ``origin``; None if neither."""
    for name in ("local", "origin"):
        url = found.get(name)
        if url and (name == "local" or is_local_url(url)):
            if is_local_url(url) and not url.startswith("file://"):
                url = str((project / url).resolve())
            return name, url
    return None
