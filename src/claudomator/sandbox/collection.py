"""What the agent produced in a sandbox: the autocommit of its leftover changes (after the
build check), its commits and change stats, and its diff. The caller takes the tree back from
the agent first (:func:`claudomator.sandbox.reopening.take_back`)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.errors import SandboxError
from claudomator.models import ChangeStats, Commit
from claudomator.sandbox import git
from claudomator.sandbox import tree as trees
from claudomator.sandbox.build import Wrap, build_check
from claudomator.sandbox.tree import Sandbox

logger = logging.getLogger(__name__)

MAX_DIFF_BYTES = 4 * 1024 * 1024  # of the diff kept per execution
AUTOCOMMIT_MESSAGE = "chore: autocommit uncommitted changes"
_SHORTSTAT = re.compile(r"(\d+) (file|insertion|deletion)")


@dataclass(frozen=True)
class Collected:
    """What the agent produced in a sandbox."""

    commits: tuple[Commit, ...]  # new since the start (or ``since``), oldest first; subjects
    changestats: ChangeStats  # git diff --shortstat <start>..HEAD


def collect(
    sandbox: Sandbox,
    *,
    build_command: Sequence[str] = (),
    build_dir: str | None = None,
    since: str = "",
    message: str = AUTOCOMMIT_MESSAGE,
    wrap: Wrap | None = None,
) -> Collected:
    """Autocommit leftover changes (after the build check passes, started through ``wrap``);
    list commits and stats (see :meth:`claudomator.sandbox.Sandboxes.collect`)."""
    tree = sandbox.dir
    status = git.tree_git(tree, "status", "--porcelain", "--untracked-files=normal")
    if status.stdout.strip():
        subdir = sandbox.subdir if build_dir is None else build_dir
        trees.inner_dir(tree, subdir)  # never a build in a folder the agent linked elsewhere
        build_check(tree, build_command, subdir, wrap)
        git.tree_git(tree, "add", "-A")
        if not git.tree_git(tree, "diff", "--cached", "--quiet", check=False).ok:
            commit = ["commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", "-"]
            who = git.identity(tree, tree=tree)
            git.tree_git(tree, *who, *commit, input_text=message or AUTOCOMMIT_MESSAGE)
            logger.info("autocommitted in %s", tree, extra={"action": "sandbox_autocommit"})
    start = _start_commit(sandbox, since)
    span = f"{start}..HEAD"
    log = git.tree_git(tree, "log", "--reverse", "--no-show-signature", "--format=%H %s", span)
    commits = tuple(
        Commit(hash=line[:40], message=line[41:]) for line in log.stdout.splitlines() if line
    )
    stat = ["diff", "--no-ext-diff", "--no-textconv", "--shortstat", start]
    shortstat = git.tree_git(tree, *stat, "HEAD")
    return Collected(commits, _parse_shortstat(shortstat.stdout))


def _start_commit(sandbox: Sandbox, since: str) -> str:
    """The commit the agent's new work is counted from: ``since`` if it is a commit of
    the sandbox (the head an earlier execution delivered), else the start commit."""
    if not since or since == sandbox.base_commit:
        return sandbox.base_commit
    if git.COMMIT_ID.fullmatch(since):
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
    sandbox: Sandbox, dest: Path, *, limit: int = MAX_DIFF_BYTES, since: str = ""
) -> int:
    """Write the unified diff of the agent's work to ``dest``; the size written (see
    :meth:`claudomator.sandbox.Sandboxes.write_diff`)."""
    start = _start_commit(sandbox, since)
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


def head_commits(sandbox: Sandbox, count: int) -> tuple[Commit, ...]:
    """The last ``count`` commits of the sandbox, oldest first (after a rebase, the hashes
    that were actually delivered)."""
    args = ["log", "--reverse", "--no-show-signature", f"-n{count}", "--format=%H %s", "HEAD"]
    log = git.tree_git(sandbox.dir, *args).stdout
    return tuple(Commit(hash=line[:40], message=line[41:]) for line in log.splitlines() if line)


def _parse_shortstat(text: str) -> ChangeStats:
    """The numbers of ``git diff --shortstat``'s line (0 for those it leaves out)."""
    found: Mapping[str, int] = {kind: int(n) for n, kind in _SHORTSTAT.findall(text)}
    return ChangeStats(
        files=found.get("file", 0),
        insertions=found.get("insertion", 0),
        deletions=found.get("deletion", 0),
    )
