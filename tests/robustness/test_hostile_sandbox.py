"""A hostile agent's sandbox: what it writes into its tree and ``.git`` never acts on our side.

Issue 10, items 1 (release wiped the user's checkout through a planted ``core.worktree``),
2 (a recycled tree hid the next task's files through ``.git/info/exclude``) and 5 (git settings
and hooks planted in the sandbox ran inside our own git commands). The test plays the agent: it
writes into the sandbox exactly what an agent process could, then lets Claudomator's bookkeeping
(collect, diff, deliver, release, recycle) run on real repositories.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from claudomator.errors import SandboxError, SandboxTampered
from claudomator.models import Delivery
from claudomator.sandbox import Sandbox, Sandboxes
from conftest import MakeRepo, git


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def user_state(repo: Path) -> dict[str, str]:
    """What the user has in their checkout, including what git does not track."""
    files = {
        str(p.relative_to(repo)): p.read_text(encoding="utf-8")
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "files": repr(files),
        "refs": git(repo, "for-each-ref"),
        "status": git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        "config": (repo / ".git" / "config").read_text(encoding="utf-8"),
    }


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    """The user's repository, with uncommitted, untracked and ignored work in the checkout."""
    repo = make_repo("user-project", {"README.md": "v1\n", ".gitignore": "*.log\n"})
    write(repo / "README.md", "the user's uncommitted edit\n")
    write(repo / "notes.txt", "untracked notes\n")
    write(repo / "debug.log", "ignored but precious\n")
    return repo


@pytest.fixture
def sandboxes(tmp_path: Path) -> Sandboxes:
    return Sandboxes(tmp_path / "data" / "sandboxes")


# --- item 1: release never trusts files in the sandbox's .git ---------------------------------


def test_a_planted_worktree_in_the_config_copy_does_not_reach_the_user(
    sandboxes: Sandboxes, project: Path
) -> None:
    before = user_state(project)
    box = sandboxes.create(project, "exec-1")
    poisoned = (box.dir / ".git" / "config").read_text() + f"[core]\n\tworktree = {project}\n"
    write(box.dir / ".git" / "claudomator-config", poisoned)  # the copy the old code restored
    write(box.dir / ".git" / "config", poisoned)

    sandboxes.release(box)
    again = sandboxes.create(project, "exec-2")  # the recycled tree, released again
    sandboxes.release(again)

    assert user_state(project) == before


@pytest.mark.parametrize("trick", ["gitfile", "symlink", "commondir", "linked-refs"])
def test_a_git_dir_pointing_elsewhere_is_discarded_untouched(
    sandboxes: Sandboxes, project: Path, trick: str
) -> None:
    before = user_state(project)
    box = sandboxes.create(project, "exec-1")
    git_dir = box.dir / ".git"
    write(box.dir / "agent.txt", "agent work\n")
    if trick == "gitfile":
        shutil.rmtree(git_dir)
        write(git_dir, f"gitdir: {project / '.git'}\n")
    elif trick == "symlink":
        shutil.rmtree(git_dir)
        git_dir.symlink_to(project / ".git")
    elif trick == "commondir":
        write(git_dir / "commondir", f"{project / '.git'}\n")
    else:
        shutil.rmtree(git_dir / "refs")
        (git_dir / "refs").symlink_to(project / ".git" / "refs")

    with pytest.raises(SandboxTampered):
        sandboxes.collect(box)
    sandboxes.release(box)

    assert user_state(project) == before
    assert not box.dir.exists()
    assert not list((sandboxes.root / ".warm").rglob("agent.txt"))


def test_a_deleted_git_dir_never_lets_git_find_an_outer_repository(
    tmp_path: Path, make_repo: MakeRepo, project: Path
) -> None:
    """The data dir inside a repository (a dotfiles home): without its .git, a sandbox's git
    commands must not fall through to the outer one."""
    outer = make_repo("outer", {"dotfile": "mine\n"})
    write(outer / "dotfile", "uncommitted\n")
    before = user_state(outer)
    sandboxes = Sandboxes(outer / "data" / "sandboxes")
    git(outer, "status")  # the data dir is untracked in the outer repository
    box = sandboxes.create(project, "exec-1")
    write(box.dir / "agent.txt", "agent work\n")
    shutil.rmtree(box.dir / ".git")

    with pytest.raises(SandboxError, match=r"\.git is missing"):
        sandboxes.collect(box)
    sandboxes.release(box)

    after = user_state(outer)
    assert after.pop("refs") == before.pop("refs")
    assert after["files"] == before["files"]


def test_a_sandbox_of_the_old_layout_is_adopted_without_its_config_copy(
    sandboxes: Sandboxes, project: Path
) -> None:
    """Preserved by an older version: notes and a config copy inside its .git, no record."""
    before = user_state(project)
    box = sandboxes.create(project, "exec-1")
    (sandboxes.root / ".state" / "exec-1.json").unlink()
    meta = f'{{"base_commit": "{box.base_commit}", "branch": "main", "project": "{project}"}}'
    write(box.dir / ".git" / "claudomator.json", meta)
    poisoned = (box.dir / ".git" / "config").read_text() + f"[core]\n\tworktree = {project}\n"
    write(box.dir / ".git" / "claudomator-config", poisoned)
    write(box.dir / ".git" / "config", poisoned)
    write(box.dir / "agent.txt", "resumed work\n")

    reopened = sandboxes.reopen(box.dir, project)
    assert reopened == box
    assert "worktree" not in (box.dir / ".git" / "config").read_text()
    collected = sandboxes.collect(box)
    sandboxes.release(box)

    assert [c.message for c in collected.commits] == ["chore: autocommit uncommitted changes"]
    assert user_state(project) == before


def test_a_linked_folder_in_the_tree_is_never_written_through(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write(outside / "README.md", "not the sandbox's\n")
    write(outside / "keep.txt", "keep\n")
    box = sandboxes.create(project, "exec-1")
    write(box.dir / "docs" / "guide.md", "guide\n")
    shutil.rmtree(box.dir / "docs")
    (box.dir / "docs").symlink_to(outside)
    (box.dir / "README.md").unlink()
    (box.dir / "README.md").symlink_to(outside / "README.md")

    sandboxes.release(box)
    again = sandboxes.create(project, "exec-2")

    assert sorted(p.name for p in outside.iterdir()) == ["README.md", "keep.txt"]
    assert (outside / "README.md").read_text() == "not the sandbox's\n"
    assert not (again.dir / "README.md").is_symlink()
    assert (again.dir / "README.md").read_text() == "v1\n"
    assert not (again.dir / "docs").exists()


# --- item 2: a recycled tree is a fresh clone -------------------------------------------------


def plant_everything(box: Sandbox) -> None:
    """What tools (and hostile agents) leave in a .git for the next task to trip over."""
    git_dir = box.dir / ".git"
    (git_dir / "info").mkdir(exist_ok=True)
    with open(git_dir / "info" / "exclude", "a", encoding="utf-8") as fh:  # tools do this
        fh.write("*\n")
    write(git_dir / "info" / "attributes", "* -text -diff\n")
    write(git_dir / "info" / "sparse-checkout", "/README.md\n")
    write(git_dir / "info" / "grafts", "")
    write(git_dir / "shallow", git(box.dir, "rev-parse", "HEAD") + "\n")
    write(git_dir / "packed-refs", "# pack-refs with: peeled fully-peeled sorted\n")
    git(box.dir, "config", "status.showUntrackedFiles", "no")
    git(box.dir, "config", "core.excludesFile", str(git_dir / "info" / "exclude"))
    write(box.dir / "README.md", "planted content\n")  # hidden from git by the index bit
    git(box.dir, "update-index", "--assume-unchanged", "README.md")


def test_a_recycled_tree_sees_the_next_tasks_new_files(sandboxes: Sandboxes, project: Path) -> None:
    first = sandboxes.create(project, "exec-a")
    plant_everything(first)
    untouched = os.stat(first.dir / ".gitignore").st_ino
    sandboxes.release(first)

    second = sandboxes.create(project, "exec-b")
    assert os.stat(second.dir / ".gitignore").st_ino == untouched  # it is the recycled tree
    assert (second.dir / "README.md").read_text() == "v1\n"
    assert not (second.dir / ".git" / "info").exists()  # the fresh clone has no info/
    write(second.dir / "b-work.txt", "task B's work\n")

    collected = sandboxes.collect(second)
    done = sandboxes.deliver(second, task_id="task-b", delivery=Delivery.BRANCH)

    assert len(collected.commits) == 1
    assert done.branch == "claudomator/task-b"
    assert git(project, "show", "claudomator/task-b:b-work.txt") == "task B's work"


# --- item 5: planted git settings and hooks never run in our commands --------------------------


EVIL = """#!/bin/sh
echo "$0 $*" >> {markers}/{name}
ROBUST_HOSTILE={token} sleep 600 </dev/null >/dev/null 2>&1 &
cat
"""


def plant_programs(box: Sandbox, markers: Path, token: str) -> list[str]:
    """Every way a sandbox's .git could make our git run a program; returns their names."""
    bin_dir = markers.parent / "evil-bin"
    bin_dir.mkdir()

    def program(name: str) -> str:
        path = bin_dir / name
        path.write_text(EVIL.format(markers=markers, name=name, token=token))
        path.chmod(0o755)
        return str(path)

    names = ["clean", "smudge", "process", "textconv", "external", "gpg", "fsmonitor", "pager"]
    names += ["editor", "ssh", "askpass", "credential", "uploadpack", "receivepack"]
    for name in names:
        program(name)
    git_dir = box.dir / ".git"
    included = git_dir / "included.cfg"
    write(included, f"[diff]\n\texternal = {bin_dir / 'external'}\n")
    with open(git_dir / "config", "a", encoding="utf-8") as fh:
        fh.write(
            f'[filter "evil"]\n\tclean = {bin_dir / "clean"}\n\tsmudge = {bin_dir / "smudge"}\n'
            f"\tprocess = {bin_dir / 'process'}\n\trequired = true\n"
            f'[diff "evil"]\n\ttextconv = {bin_dir / "textconv"}\n'
            f"[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = {bin_dir / 'gpg'}\n"
            f"[core]\n\tfsmonitor = {bin_dir / 'fsmonitor'}\n\tpager = {bin_dir / 'pager'}\n"
            f"\teditor = {bin_dir / 'editor'}\n\tsshCommand = {bin_dir / 'ssh'}\n"
            f"\taskPass = {bin_dir / 'askpass'}\n\thooksPath = {git_dir / 'evil-hooks'}\n"
            f"[credential]\n\thelper = !{bin_dir / 'credential'}\n"
            f"[include]\n\tpath = {included}\n"
            f'[remote "claudomator-delivery"]\n\treceivepack = {bin_dir / "receivepack"}\n'
            f"\tuploadpack = {bin_dir / 'uploadpack'}\n"
            "[extensions]\n\tworktreeConfig = true\n"
        )
    write(git_dir / "config.worktree", f"[core]\n\tfsmonitor = {bin_dir / 'fsmonitor'}\n")
    hooks = ["pre-commit", "commit-msg", "post-commit", "pre-push", "post-checkout"]
    hooks += ["reference-transaction", "post-rewrite", "pre-rebase", "post-index-change"]
    for folder in (git_dir / "hooks", git_dir / "evil-hooks"):
        folder.mkdir(exist_ok=True)
        for hook in hooks:
            path = folder / hook
            path.write_text(EVIL.format(markers=markers, name=f"hook-{hook}", token=token))
            path.chmod(0o755)
    names += [f"hook-{hook}" for hook in hooks]
    write(box.dir / ".gitattributes", "* filter=evil diff=evil\n")
    return names


def hostile_processes(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"ROBUST_HOSTILE={token}".encode() in environ:
                found.append(int(entry.name))
    return found


def test_planted_git_programs_never_run_in_our_bookkeeping(
    sandboxes: Sandboxes, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo("pushed-project", {"README.md": "v1\n", "src/app.py": "A = 1\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(remote))
    git(project, "remote", "add", "local", str(remote))
    markers = tmp_path / "markers"
    markers.mkdir()
    token = os.urandom(8).hex()
    box = sandboxes.create(project, "exec-1")
    names = plant_programs(box, markers, token)
    write(box.dir / "src" / "app.py", "A = 2\n")  # left uncommitted: the autocommit runs
    write(box.dir / "new.txt", "new\n")
    # someone else pushed meanwhile, so the delivery also fetches and rebases
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    write(other / "upstream.txt", "upstream\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "upstream")
    git(other, "push", "-q", "origin", "main")

    try:
        collected = sandboxes.collect(box)
        sandboxes.write_diff(box, tmp_path / "diff.patch")
        done = sandboxes.deliver(box, task_id="t1")
        sandboxes.release(box)
        sandboxes.release(sandboxes.create(project, "exec-2"))  # recycle and reuse
    finally:
        ran = sorted(p.name for p in markers.iterdir())
        alive = hostile_processes(token)
        for pid in alive:
            os.kill(pid, 9)

    assert ran == [], f"planted programs ran: {ran} (of {names})"
    assert alive == []
    assert len(collected.commits) == 1
    assert done.rebased
    assert git(remote, "show", "main:src/app.py") == "A = 2"
    assert git(remote, "show", "main:upstream.txt") == "upstream"


def test_what_the_build_check_leaves_running_is_killed_before_the_commit(
    sandboxes: Sandboxes, project: Path
) -> None:
    token = os.urandom(8).hex()
    box = sandboxes.create(project, "exec-1")
    daemon = f"ROBUST_HOSTILE={token} setsid sleep 600 </dev/null >/dev/null 2>&1 &"
    write(box.dir / "Makefile", f"build:\n\t{daemon}\n")
    try:
        collected = sandboxes.collect(box)
        alive = hostile_processes(token)
    finally:
        for pid in hostile_processes(token):
            os.kill(pid, 9)
    assert len(collected.commits) == 1
    assert alive == []
