"""Sandboxes against real git repositories: creation, collection, delivery, recycling."""

from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from claudomator import process
from claudomator.errors import BuildFailed, DeliveryConflict, SandboxError
from claudomator.models import Delivery
from claudomator.sandbox import (
    AUTOCOMMIT_MESSAGE,
    FALLBACK_EMAIL,
    FALLBACK_NAME,
    INITIAL_MESSAGE,
    Delivered,
    DeliveryKind,
    Sandbox,
    Sandboxes,
    detect_build_command,
)

_IDENTITY_VARS = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
)


def git(cwd: Path, *args: str) -> str:
    result = process.run(["git", *args], cwd=cwd)
    assert result.ok, f"git {' '.join(args)}: {result.tail()}"
    return result.stdout.strip()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def snapshot(repo: Path) -> dict[str, str]:
    """What the user sees of their repository: refs, HEAD, index, working tree, worktrees."""
    return {
        "refs": git(repo, "for-each-ref"),
        "head": git(repo, "symbolic-ref", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "staged": git(repo, "diff", "--cached"),
        "unstaged": git(repo, "diff"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


@pytest.fixture(autouse=True)
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private git config with a known identity; no system or user config of the machine."""
    home = tmp_path / "git-home"
    write(
        home / ".gitconfig",
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in _IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "my project"  # a space, as in real home directories
    write(repo / "README.md", "hello\n")
    write(repo / "src" / "app.py", "print('v1')\n")
    write(repo / "src" / "util.py", "X = 1\n")
    write(repo / ".gitignore", "out/\n")
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "initial")
    return repo


@pytest.fixture
def sandboxes(tmp_path: Path) -> Sandboxes:
    return Sandboxes(tmp_path / "data" / "sandboxes")


@pytest.fixture
def box(sandboxes: Sandboxes, project: Path) -> Sandbox:
    return sandboxes.create(project, "exec-1")


def bare_clone(project: Path, target: Path) -> Path:
    git(project.parent, "clone", "-q", "--bare", str(project), str(target))
    return target


def agent_commit(box: Sandbox, name: str, text: str, message: str) -> str:
    write(box.dir / name, text)
    return commit_all(box.dir, message)


# --- create ----------------------------------------------------------------------------------


def test_create_is_independent_of_the_dirty_user_tree(sandboxes: Sandboxes, project: Path) -> None:
    write(project / "README.md", "uncommitted edit\n")
    write(project / "staged.txt", "staged\n")
    git(project, "add", "staged.txt")
    write(project / "scratch.txt", "untracked\n")
    before = snapshot(project)

    box = sandboxes.create(project, "exec-1")

    assert box.dir == sandboxes.root / "exec-1"
    assert box.base_commit == git(project, "rev-parse", "HEAD")
    assert box.branch == "main"
    assert (box.dir / "README.md").read_text() == "hello\n"
    assert not (box.dir / "staged.txt").exists()
    assert not (box.dir / "scratch.txt").exists()
    assert git(box.dir, "status", "--porcelain") == ""

    write(box.dir / "README.md", "agent edit\n")
    agent_commit(box, "src/new.py", "new\n", "agent work")
    git(box.dir, "checkout", "-q", "-b", "agent-branch")
    assert snapshot(project) == before


def test_create_writes_nothing_into_the_user_repository(
    sandboxes: Sandboxes, project: Path
) -> None:
    before = snapshot(project)
    git_files = sorted(p.relative_to(project) for p in (project / ".git").rglob("*"))

    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "a.txt", "a\n", "agent")
    sandboxes.collect(box)

    assert snapshot(project) == before
    assert sorted(p.relative_to(project) for p in (project / ".git").rglob("*")) == git_files
    alternates = (box.dir / ".git" / "objects" / "info" / "alternates").read_text()
    assert Path(alternates.strip()) == project / ".git" / "objects"
    assert not list((box.dir / ".git" / "objects" / "pack").glob("*.pack"))


def test_create_refuses_an_existing_directory(sandboxes: Sandboxes, project: Path) -> None:
    sandboxes.create(project, "exec-1")
    with pytest.raises(SandboxError, match="already exists"):
        sandboxes.create(project, "exec-1")


def test_create_of_a_detached_project(sandboxes: Sandboxes, project: Path) -> None:
    git(project, "checkout", "-q", "--detach")
    box = sandboxes.create(project, "exec-1")
    assert box.branch == "HEAD"
    assert git(box.dir, "rev-parse", "HEAD") == box.base_commit
    assert process.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=box.dir).returncode == 1


def test_concurrent_creates_get_distinct_trees(sandboxes: Sandboxes, project: Path) -> None:
    for warm in (sandboxes.create(project, "w1"), sandboxes.create(project, "w2")):
        sandboxes.release(warm)
    ids = [f"exec-{n}" for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as executor:
        boxes = list(executor.map(lambda i: sandboxes.create(project, i), ids))

    assert len({b.dir for b in boxes}) == 6
    assert len({os.stat(b.dir / ".git").st_ino for b in boxes}) == 6
    for b in boxes:
        assert git(b.dir, "rev-parse", "HEAD") == b.base_commit
        assert git(b.dir, "status", "--porcelain") == ""


def test_open_a_preserved_sandbox(sandboxes: Sandboxes, box: Sandbox, tmp_path: Path) -> None:
    assert sandboxes.reopen(box.dir, box.project_dir) == box
    assert sandboxes.reopen(tmp_path / "missing", box.project_dir) is None
    (tmp_path / "plain").mkdir()
    assert sandboxes.reopen(tmp_path / "plain", box.project_dir) is None


# --- projects ----------------------------------------------------------------------------------


def test_a_plain_directory_is_initialised(sandboxes: Sandboxes, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain / "notes.txt", "notes\n")

    box = sandboxes.create(plain, "exec-1")

    assert git(plain, "log", "--format=%s") == INITIAL_MESSAGE
    assert git(plain, "status", "--porcelain") == ""
    assert (box.dir / "notes.txt").read_text() == "notes\n"


def test_an_empty_repository_gets_an_initial_commit(sandboxes: Sandboxes, tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(repo))
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")

    box = sandboxes.create(repo, "exec-1")

    assert git(repo, "log", "--format=%s") == INITIAL_MESSAGE
    assert git(repo, "diff", "--cached", "--name-only") == "staged.txt"  # still only staged
    assert git(box.dir, "ls-files") == ""


def test_a_missing_project_directory(sandboxes: Sandboxes, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        sandboxes.prepare_project(tmp_path / "nowhere")


def test_a_folder_inside_a_repository(sandboxes: Sandboxes, project: Path) -> None:
    write(project / "src" / "sub" / "x.py", "x\n")  # uncommitted: the sandbox lacks it
    sandboxes.prepare_project(project / "src")  # a committed folder: a project (monorepos)
    with pytest.raises(SandboxError, match=r"src/sub.*not in the commits.*commit it first"):
        sandboxes.prepare_project(project / "src" / "sub")
    assert not (project / "src" / ".git").exists()
    scratch = project / "out" / "scratch"  # ignored by the project: a repository of its own
    write(scratch / "y.txt", "y\n")
    sandboxes.prepare_project(scratch)
    assert git(scratch, "rev-parse", "--show-toplevel") == str(scratch)


# --- collect -----------------------------------------------------------------------------------


def test_collect_autocommits_and_reports(box: Sandbox, sandboxes: Sandboxes) -> None:
    first = agent_commit(box, "src/feature.py", "a = 1\nb = 2\n", "feat: agent commit")
    write(box.dir / "src" / "app.py", "print('v2')\n")
    (box.dir / "src" / "util.py").unlink()
    write(box.dir / "docs" / "new.md", "doc\n")
    write(box.dir / "out" / "ignored.bin", "build output\n")

    collected = sandboxes.collect(box)

    assert [c.message for c in collected.commits] == ["feat: agent commit", AUTOCOMMIT_MESSAGE]
    assert collected.commits[0].hash == first
    assert collected.commits[1].hash == git(box.dir, "rev-parse", "HEAD")
    assert (collected.changestats.files, collected.changestats.insertions) == (4, 4)
    assert collected.changestats.deletions == 2
    assert git(box.dir, "status", "--porcelain") == ""
    assert "out/ignored.bin" not in git(box.dir, "ls-files")


def test_collect_of_an_untouched_sandbox(box: Sandbox, sandboxes: Sandboxes) -> None:
    collected = sandboxes.collect(box)
    assert collected.commits == ()
    assert collected.changestats.files == 0


def test_failing_make_build_commits_nothing(sandboxes: Sandboxes, project: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    write(project / "Makefile", "all:\n\techo all\n\nbuild: all\n\t@echo compiling; exit 3\n")
    commit_all(project, "add Makefile")
    box = sandboxes.create(project, "exec-1")
    write(box.dir / "src" / "app.py", "broken\n")

    with pytest.raises(BuildFailed) as failure:
        sandboxes.collect(box)

    assert failure.value.command == ("make", "build")
    assert "compiling" in failure.value.output_tail
    assert failure.value.sandbox_dir == str(box.dir)
    assert git(box.dir, "rev-parse", "HEAD") == box.base_commit
    assert git(box.dir, "status", "--porcelain") == "M src/app.py"


def test_passing_make_build_then_autocommit(sandboxes: Sandboxes, project: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    write(project / "Makefile", ".PHONY: build\nbuild:\n\t@touch out/built || mkdir out\n")
    commit_all(project, "add Makefile")
    box = sandboxes.create(project, "exec-1")
    write(box.dir / "src" / "app.py", "fine\n")

    collected = sandboxes.collect(box)

    assert [c.message for c in collected.commits] == [AUTOCOMMIT_MESSAGE]
    assert (box.dir / "out").exists()  # the build ran


def test_project_build_command(box: Sandbox, sandboxes: Sandboxes) -> None:
    write(box.dir / "src" / "app.py", "changed\n")
    failing = (sys.executable, "-c", "import sys; print('lint error'); sys.exit(2)")
    with pytest.raises(BuildFailed, match="lint error"):
        sandboxes.collect(box, build_command=failing)
    assert git(box.dir, "rev-parse", "HEAD") == box.base_commit

    with pytest.raises(BuildFailed, match="cannot run"):
        sandboxes.collect(box, build_command=("no-such-build-tool-xyz",))

    marker = box.dir / "out" / "checked"
    passing = (sys.executable, "-c", f"import pathlib; pathlib.Path({str(marker)!r}).touch()")
    write(marker, "")
    marker.unlink()
    collected = sandboxes.collect(box, build_command=passing)
    assert marker.exists()
    assert len(collected.commits) == 1


def test_clean_sandbox_skips_the_build_check(box: Sandbox, sandboxes: Sandboxes) -> None:
    agent_commit(box, "x.txt", "x\n", "agent committed everything")
    failing = (sys.executable, "-c", "raise SystemExit(1)")
    assert len(sandboxes.collect(box, build_command=failing).commits) == 1


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"Makefile": "build:\n\tgo build\n"}, ("make", "build")),
        ({"GNUmakefile": "test build: deps\n\ttrue\n"}, ("make", "build")),
        ({"Makefile": "BUILD := x\nbuild_all:\n\ttrue\n"}, ()),
        ({"Makefile": "test:\n\ttrue\n", "go.mod": "module x\n"}, ("go", "build", "./...")),
        ({"gradlew": "#!/bin/sh\n", "go.mod": "module x\n"}, ("sh", "gradlew", "build")),
        ({"README": "nothing to build\n"}, ()),
    ],
)
def test_detect_build_command(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, ...]
) -> None:
    if "Makefile" in files and expected == () and shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name, text in files.items():
        write(tmp_path / name, text)
    assert detect_build_command(tmp_path) == expected


def test_detect_executable_gradlew(tmp_path: Path) -> None:
    write(tmp_path / "gradlew", "#!/bin/sh\n")
    (tmp_path / "gradlew").chmod(0o755)
    assert detect_build_command(tmp_path) == ("./gradlew", "build")


# --- deliver -----------------------------------------------------------------------------------


def test_push_to_a_local_remote(sandboxes: Sandboxes, project: Path, tmp_path: Path) -> None:
    remote = bare_clone(project, tmp_path / "remote.git")
    git(project, "remote", "add", "local", str(remote))
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "feature.txt", "feature\n", "feat: x")
    sandboxes.collect(box)
    before = snapshot(project)

    assert sandboxes.deliver(box, task_id="t1") == Delivered(DeliveryKind.PUSHED, "local", "main")

    assert git(remote, "rev-parse", "main") == git(box.dir, "rev-parse", "HEAD")
    assert snapshot(project) == before


def test_push_to_a_relative_local_origin(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    remote = bare_clone(project, tmp_path / "origin.git")
    git(project, "remote", "add", "origin", "../origin.git")
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "feature.txt", "feature\n", "feat: x")

    done = sandboxes.deliver(box, task_id="t1", delivery=Delivery.PUSH)
    assert done.description == "pushed to origin/main"
    assert git(remote, "log", "-1", "--format=%s", "main") == "feat: x"


def test_push_rebases_on_a_concurrent_upstream_change(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    remote = bare_clone(project, tmp_path / "remote.git")
    git(project, "remote", "add", "local", f"file://{remote}")
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "src/app.py", "print('agent')\n", "feat: agent")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    upstream = agent_commit(Sandbox(other, other, "", "main"), "README.md", "hi\n", "docs: human")
    git(other, "push", "-q", "origin", "main")

    done = sandboxes.deliver(box, task_id="t1")
    assert done == Delivered(DeliveryKind.PUSHED, "local", "main", rebased=True)
    assert done.description == "pushed to local/main (rebased onto new upstream work)"

    assert git(remote, "log", "--format=%s", "main").splitlines()[:3] == [
        "feat: agent",
        "docs: human",
        "initial",
    ]
    assert git(remote, "rev-parse", "main^") == upstream
    assert git(remote, "show", "main:src/app.py") == "print('agent')"
    [delivered] = sandboxes.head_commits(box, 1)
    assert delivered.hash == git(remote, "rev-parse", "main")
    assert delivered.message == "feat: agent"


def test_push_conflict_aborts_the_rebase(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    remote = bare_clone(project, tmp_path / "remote.git")
    git(project, "remote", "add", "local", str(remote))
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "README.md", "agent says hello\n", "agent")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    agent_commit(Sandbox(other, other, "", "main"), "README.md", "human says hello\n", "human")
    git(other, "push", "-q", "origin", "main")
    head = git(box.dir, "rev-parse", "HEAD")

    with pytest.raises(DeliveryConflict, match=r"README\.md") as failure:
        sandboxes.deliver(box, task_id="t1")

    assert failure.value.files == ("README.md",)
    assert failure.value.branch == "claudomator/t1"
    assert "claudomator/t1" in str(failure.value)
    assert git(project, "rev-parse", "refs/heads/claudomator/t1") == head
    assert failure.value.sandbox_dir == str(box.dir)
    assert str(box.dir) in str(failure.value)
    assert git(box.dir, "rev-parse", "HEAD") == head
    assert not (box.dir / ".git" / "rebase-merge").exists()
    assert git(box.dir, "status", "--porcelain") == ""


def test_push_failure_names_the_command(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    git(project, "remote", "add", "local", str(tmp_path / "gone.git"))
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "x.txt", "x\n", "x")
    with pytest.raises(SandboxError, match="git push") as failure:
        sandboxes.deliver(box, task_id="t1")
    assert failure.value.sandbox_dir == str(box.dir)


def test_push_mode_needs_a_local_remote(sandboxes: Sandboxes, project: Path) -> None:
    git(project, "remote", "add", "origin", "https://example.com/project.git")
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "x.txt", "x\n", "x")
    with pytest.raises(SandboxError, match=r"origin \(https://example.com/project.git\)"):
        sandboxes.deliver(box, task_id="t1", delivery=Delivery.PUSH)


def test_branch_delivery_leaves_the_user_checkout_alone(
    sandboxes: Sandboxes, project: Path
) -> None:
    git(project, "remote", "add", "origin", "git@example.com:me/project.git")
    box = sandboxes.create(project, "exec-1")
    head = agent_commit(box, "feature.txt", "feature\n", "feat: x")
    write(project / "README.md", "user is editing\n")
    write(project / "staged.txt", "staged\n")
    git(project, "add", "staged.txt")
    before = snapshot(project)

    done = sandboxes.deliver(box, task_id="task-42")
    assert done == Delivered(DeliveryKind.BRANCH, branch="claudomator/task-42")
    assert str(done) == "branch claudomator/task-42"

    assert git(project, "rev-parse", "refs/heads/claudomator/task-42") == head
    after = snapshot(project)
    assert after.pop("refs") != before.pop("refs")
    assert after == before
    assert not (project / ".git" / "FETCH_HEAD").exists()


def test_branch_delivery_of_a_detached_project(
    sandboxes: Sandboxes, project: Path, tmp_path: Path
) -> None:
    git(project, "remote", "add", "local", str(bare_clone(project, tmp_path / "r.git")))
    git(project, "checkout", "-q", "--detach")
    box = sandboxes.create(project, "exec-1")
    agent_commit(box, "x.txt", "x\n", "x")
    assert sandboxes.deliver(box, task_id="t7").branch == "claudomator/t7"
    with pytest.raises(SandboxError, match="detached"):
        sandboxes.deliver(box, task_id="t7", delivery=Delivery.PUSH)


def test_deliver_without_new_commits(box: Sandbox, sandboxes: Sandboxes) -> None:
    done = sandboxes.deliver(box, task_id="t1", delivery=Delivery.BRANCH)
    assert done.how is DeliveryKind.NOTHING
    assert "nothing delivered" in done.description
    assert "claudomator/" not in git(box.project_dir, "branch", "--list")


def test_branch_delivery_makes_a_valid_name_of_a_bad_task_id(
    box: Sandbox, sandboxes: Sandboxes
) -> None:
    agent_commit(box, "x.txt", "x\n", "x")
    done = sandboxes.deliver(box, task_id="bad..id", delivery=Delivery.BRANCH)
    assert done.branch == "claudomator/bad-id"
    assert git(box.project_dir, "show", "claudomator/bad-id:x.txt") == "x"


# --- release and the warm pool -----------------------------------------------------------------


def leave_a_mess(box: Sandbox) -> str:
    """What an agent may leave behind; returns the commit it made."""
    made = agent_commit(box, "src/app.py", "print('agent')\n", "agent work")
    write(box.dir / "src" / "util.py", "dirty tracked change\n")
    write(box.dir / "junk" / "untracked.txt", "junk\n")
    write(box.dir / "out" / "ignored.o", "ignored\n")
    git(box.dir, "branch", "agent-side-branch")
    git(box.dir, "tag", "agent-tag")
    git(box.dir, "config", "user.name", "Agent Override")
    return made


def test_release_recycles_into_a_fresh_copy_of_the_current_head(
    sandboxes: Sandboxes, project: Path
) -> None:
    first = sandboxes.create(project, "exec-1")
    inode = os.stat(first.dir / ".gitignore").st_ino  # a file nobody changes
    agent_made = leave_a_mess(first)

    sandboxes.release(first)

    assert not first.dir.exists()
    pools = list((sandboxes.root / ".warm").iterdir())
    assert len(pools) == 1
    assert len(list(pools[0].iterdir())) == 1
    write(project / "src" / "app.py", "print('v2')\n")
    (project / "README.md").unlink()
    write(project / "lib" / "added.py", "added\n")
    new_head = commit_all(project, "user moved on")

    second = sandboxes.create(project, "exec-2")

    assert os.stat(second.dir / ".gitignore").st_ino == inode  # the recycled tree
    assert not list(pools[0].iterdir())
    assert second.base_commit == new_head
    assert git(second.dir, "rev-parse", "HEAD") == new_head
    assert git(second.dir, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(second.dir, "status", "--porcelain", "--ignored") == ""
    assert (second.dir / "src" / "app.py").read_text() == "print('v2')\n"
    assert (second.dir / "src" / "util.py").read_text() == "X = 1\n"
    assert not (second.dir / "README.md").exists()
    assert (second.dir / "lib" / "added.py").exists()
    refs = git(second.dir, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags")
    assert refs == "refs/heads/main"
    assert agent_made not in git(second.dir, "rev-list", "HEAD")
    assert git(second.dir, "config", "user.name") == "Test User"
    assert sandboxes.collect(second).commits == ()
    assert sandboxes.reopen(second.dir, project) == second


def test_the_warm_pool_is_bounded(tmp_path: Path, project: Path) -> None:
    sandboxes = Sandboxes(tmp_path / "sandboxes", warm_per_project=1)
    boxes = [sandboxes.create(project, f"exec-{n}") for n in range(3)]
    for b in boxes:
        sandboxes.release(b)
    assert not any(b.dir.exists() for b in boxes)
    (pool,) = (sandboxes.root / ".warm").iterdir()
    assert len(list(pool.iterdir())) == 1
    assert not list((sandboxes.root / ".trash").iterdir())


def test_no_pool_means_removal(tmp_path: Path, project: Path) -> None:
    sandboxes = Sandboxes(tmp_path / "sandboxes", warm_per_project=0)
    b = sandboxes.create(project, "exec-1")
    write(b.dir / "ro" / "file.txt", "x\n")
    (b.dir / "ro").chmod(0o500)
    sandboxes.release(b)
    assert not b.dir.exists()
    assert not (sandboxes.root / ".warm").exists()


def test_a_tampered_tree_is_not_recycled(sandboxes: Sandboxes, project: Path) -> None:
    b = sandboxes.create(project, "exec-1")
    shutil.rmtree(b.dir / ".git" / "refs")
    (b.dir / ".git" / "refs").symlink_to(project / ".git" / "refs")
    sandboxes.release(b)
    assert not b.dir.exists()
    assert not any((sandboxes.root / ".warm").rglob("HEAD"))
    assert (project / ".git" / "refs" / "heads" / "main").is_file()


def test_a_recycled_tree_has_none_of_the_agents_hooks(sandboxes: Sandboxes, project: Path) -> None:
    b = sandboxes.create(project, "exec-1")
    write(b.dir / ".git" / "hooks" / "post-checkout", "#!/bin/sh\nexit 1\n")
    sandboxes.release(b)
    again = sandboxes.create(project, "exec-2")
    assert not (again.dir / ".git" / "hooks").exists()


def test_pools_are_per_project(sandboxes: Sandboxes, project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-project"
    write(other / "other.txt", "other\n")
    sandboxes.release(sandboxes.create(project, "exec-1"))
    b = sandboxes.create(other, "exec-2")
    assert (b.dir / "other.txt").exists()
    assert not (b.dir / "README.md").exists()


# --- no identity at all ------------------------------------------------------------------------


@pytest.fixture
def no_identity(git_identity: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No identity anywhere: an empty HOME, no system config, no identity variables."""
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    monkeypatch.setenv("HOME", str(empty_home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty_home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in _IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_identity")
def test_works_with_no_git_identity_configured(sandboxes: Sandboxes, tmp_path: Path) -> None:
    assert not process.run(["git", "config", "user.name"], cwd=tmp_path).ok
    plain = tmp_path / "plain"
    write(plain / "a.txt", "a\n")
    box = sandboxes.create(plain, "exec-1")
    write(box.dir / "a.txt", "changed\n")

    collected = sandboxes.collect(box)

    assert [c.message for c in collected.commits] == [AUTOCOMMIT_MESSAGE]
    expected = f"{FALLBACK_NAME} <{FALLBACK_EMAIL}>"
    assert git(box.dir, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == f"{expected}|{expected}"
    assert git(plain, "log", "-1", "--format=%an <%ae>") == expected


def test_write_diff_keeps_the_agents_whole_change(
    box: Sandbox, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    agent_commit(box, "src/feature.py", "a = 1\n", "feat: one")
    write(box.dir / "docs" / "new.md", "doc\n")
    sandboxes.collect(box)
    dest = tmp_path / "changes.diff"
    size = sandboxes.write_diff(box, dest)
    text = dest.read_text()
    assert size == len(text.encode())
    assert "+++ b/src/feature.py" in text
    assert "+++ b/docs/new.md" in text
    assert "\n+a = 1\n" in text


def test_write_diff_is_cut_at_the_limit_and_never_follows_a_link(
    box: Sandbox, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    agent_commit(box, "big.txt", "line\n" * 10_000, "feat: big")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    dest = tmp_path / "changes.diff"
    dest.symlink_to(victim)  # what a hostile agent could leave in its log folder
    sandboxes.write_diff(box, dest, limit=1000)
    assert victim.read_text() == "keep me"
    assert not dest.is_symlink()
    text = dest.read_text()
    assert text.startswith("diff --git")
    assert "[diff cut at 1000 of " in text
    assert len(text) < 1100


def test_a_warm_tree_is_only_reused_for_the_branch_it_was_cloned_of(
    sandboxes: Sandboxes, project: Path
) -> None:
    sandboxes.release(sandboxes.create(project, "exec-1"))
    git(project, "checkout", "-q", "-b", "feature")
    on_feature = sandboxes.create(project, "exec-2")
    assert git(on_feature.dir, "config", "branch.feature.merge") == "refs/heads/feature"
    assert git(on_feature.dir, "symbolic-ref", "HEAD") == "refs/heads/feature"
    git(project, "checkout", "-q", "main")
    on_main = sandboxes.create(project, "exec-3")  # the warm tree of main
    assert git(on_main.dir, "config", "branch.main.merge") == "refs/heads/main"
    assert not process.run(["git", "config", "branch.feature.merge"], cwd=on_main.dir).ok
