"""Project folders: a failing git is not "no repository", and plain folders are initialised
only when that is plainly safe (issue 10, items 3 and 4).

Git is made to fail for real: a ``git`` wrapper earlier on ``PATH`` answers the chosen
subcommands as git does under fd exhaustion, and runs the real git for everything else. The
same wrapper refuses ``init`` and ``add`` outside the test's folder, so a regression can never
turn ``/`` or ``/tmp`` into a repository while the suite runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from claudomator.errors import SandboxError
from claudomator.sandbox import INITIAL_MESSAGE, Sandboxes
from conftest import MakeRepo, git

WRAPPER = """#!/bin/sh
echo "$PWD|$*" >> {log}
case " $* " in
  *" init "*|*" add "*)
    case "$PWD" in {allowed}*) ;; *) echo "test wrapper: refusing $* in $PWD" >&2; exit 97;; esac;;
esac
{rules}
exec {real} "$@"
"""

FailGit = Callable[..., Path]


@pytest.fixture
def fail_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FailGit:
    """Install the wrapper; ``fail_git("rev-parse", code=128, message=...)`` adds a failure,
    ``fail_git()`` removes them all.

    Returns the log of every git command (``cwd|args`` lines).
    """
    real = shutil.which("git")
    assert real
    bin_dir = tmp_path / "wrapper-bin"
    bin_dir.mkdir()
    log = tmp_path / "git-calls.log"
    log.touch()
    rules: list[str] = []

    def install(subcommand: str = "", code: int = 128, message: str = "") -> Path:
        if not subcommand:
            rules.clear()  # a working git (still logged and fenced)
        else:
            rules.append(
                f'case " $* " in *" {subcommand} "*) echo "{message}" >&2; exit {code};; esac'
            )
        script = bin_dir / "git"
        script.write_text(
            WRAPPER.format(log=log, allowed=tmp_path, rules="\n".join(rules), real=real)
        )
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}")
        return log

    return install


def calls(log: Path, subcommand: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f" {subcommand} " in f" {line} "]


# --- item 3: a failing git is an error, never a reason to init --------------------------------

EMFILE = "fatal: Unable to read current working directory: Too many open files"


@pytest.mark.parametrize(("code", "message"), [(128, EMFILE), (1, ""), (-9, "killed")])
def test_a_failing_rev_parse_never_commits_in_the_users_repository(
    make_repo: MakeRepo, tmp_path: Path, fail_git: FailGit, code: int, message: str
) -> None:
    project = make_repo("user-project", {"README.md": "v1\n"})
    (project / "README.md").write_text("uncommitted\n")
    (project / "new.txt").write_text("untracked\n")
    head = git(project, "rev-parse", "HEAD")
    log = fail_git("rev-parse", code=code % 256, message=message)

    with pytest.raises(SandboxError) as failure:
        Sandboxes(tmp_path / "data" / "sandboxes").create(project, "exec-1")

    assert str(project) in str(failure.value)
    assert message in str(failure.value)
    assert calls(log, "init") == []
    assert calls(log, "add") == []
    assert calls(log, "commit") == []
    fail_git()  # a working git again, to look
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "status", "--porcelain") == "M README.md\n?? new.txt"


def test_a_failing_head_check_never_moves_the_users_branch(
    make_repo: MakeRepo, tmp_path: Path, fail_git: FailGit
) -> None:
    project = make_repo("user-project", {"README.md": "v1\n"})
    head = git(project, "rev-parse", "HEAD")
    fail_git("--verify", code=128, message=EMFILE)

    with pytest.raises(SandboxError, match="Too many open files"):
        Sandboxes(tmp_path / "data" / "sandboxes").prepare_project(project)

    fail_git()
    assert git(project, "rev-parse", "HEAD") == head


# --- item 4: plain folders ---------------------------------------------------------------------


def refused(sandboxes: Sandboxes, folder: Path, why: str, log: Path) -> None:
    git_dir_before = (folder / ".git").exists()
    with pytest.raises(SandboxError, match=why) as failure:
        sandboxes.prepare_project(folder)
    assert "refusing" in str(failure.value)
    assert str(folder) in str(failure.value)
    assert calls(log, "init") == []
    assert calls(log, "add") == []
    assert (folder / ".git").exists() == git_dir_before


def test_the_root_home_and_temp_directories_are_refused(
    tmp_path: Path, fail_git: FailGit, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fail_git()
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes")
    refused(sandboxes, Path("/"), "the root directory", log)
    refused(sandboxes, Path("/tmp"), "the temp directory", log)
    home = tmp_path / "someone"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "letter.txt").write_text("dear\n")
    monkeypatch.setenv("HOME", str(home))
    refused(sandboxes, home, "your home directory", log)
    refused(sandboxes, tmp_path, "contains your home directory", log)


def test_the_data_dir_and_folders_holding_projects_are_refused(
    tmp_path: Path, make_repo: MakeRepo, fail_git: FailGit
) -> None:
    data = tmp_path / "work" / "data"
    (data / "logs").mkdir(parents=True)
    registered = tmp_path / "code" / "registered"
    registered.mkdir(parents=True)
    (registered / "a.txt").write_text("a\n")
    make_repo("code/nested/repo")
    sandboxes = Sandboxes(data / "sandboxes", data_dir=data, projects=lambda: [registered])
    log = fail_git()

    refused(sandboxes, data, "Claudomator's data directory", log)
    refused(sandboxes, tmp_path / "work", "contains Claudomator's data directory", log)
    refused(sandboxes, tmp_path / "code", "contains the project", log)
    refused(sandboxes, tmp_path / "code" / "nested", "holds the git repository", log)
    sandboxes.prepare_project(registered)  # the project itself is fine
    assert git(registered, "log", "--format=%s") == INITIAL_MESSAGE


def test_an_automatic_init_is_capped(tmp_path: Path, fail_git: FailGit) -> None:
    log = fail_git()
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes", max_init_files=5, max_init_bytes=4096)
    many = tmp_path / "many"
    (many / "deep" / "er").mkdir(parents=True)
    for n in range(6):
        (many / "deep" / "er" / f"f{n}.txt").write_text("x\n")
    refused(sandboxes, many, "more than 5 files", log)
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.bin").write_bytes(b"\0" * 5000)
    refused(sandboxes, big, "more than 4096 bytes", log)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "everything").symlink_to(tmp_path)  # a link is one entry, never followed
    sandboxes.prepare_project(linked)
    assert git(linked, "ls-files") == "everything"


def test_a_failed_init_leaves_no_git_dir_behind(tmp_path: Path, fail_git: FailGit) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("a\n")
    fail_git("commit", code=128, message="fatal: cannot write: No space left on device")

    with pytest.raises(SandboxError, match="No space left"):
        Sandboxes(tmp_path / "data" / "sandboxes").prepare_project(plain)

    assert not (plain / ".git").exists()
    assert (plain / "a.txt").read_text() == "a\n"


def test_an_unrecognised_git_dir_is_never_replaced(tmp_path: Path, fail_git: FailGit) -> None:
    broken = tmp_path / "broken"
    (broken / ".git").mkdir(parents=True)
    (broken / ".git" / "precious").write_text("keep me\n")
    log = fail_git()
    refused(Sandboxes(tmp_path / "data" / "sandboxes"), broken, "does not recognise", log)
    assert (broken / ".git" / "precious").read_text() == "keep me\n"
