"""Issue 11 item 5a: a project-less task's scratch repository is its own, whatever contains it."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudomator.errors import SandboxError
from claudomator.sandbox import Sandboxes
from conftest import git


def _home_in_git(tmp_path: Path) -> Path:
    home = tmp_path / "gitted-home"
    home.mkdir()
    git(home, "init", "-q")
    (home / ".bashrc").write_text("alias ll='ls -l'\n")
    git(home, "add", "-A")
    git(home, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "dotfiles")
    return home


def test_scratch_inside_a_home_kept_in_git_is_its_own_repository(tmp_path: Path) -> None:
    home = _home_in_git(tmp_path)
    before = git(home, "rev-parse", "HEAD")
    workspace = home / ".local/share/claudomator/workspace"
    sandboxes = Sandboxes(home / ".local/share/claudomator/sandboxes", warm_per_project=0)
    scratch = workspace / "task-1"
    sandboxes.prepare_scratch(scratch, workspace)
    assert git(scratch, "rev-parse", "--show-toplevel") == str(scratch.resolve())
    box = sandboxes.create(scratch, "exec-1")
    (box.dir / "out.txt").write_text("work\n")
    assert sandboxes.collect(box).commits
    assert git(home, "rev-parse", "HEAD") == before  # the home repository is untouched
    sandboxes.prepare_scratch(scratch, workspace)  # a second execution: the same repository


def test_scratch_outside_the_workspace_or_with_a_linked_git_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    sandboxes = Sandboxes(tmp_path / "sandboxes")
    with pytest.raises(SandboxError, match="not directly in"):
        sandboxes.prepare_scratch(tmp_path / "elsewhere" / "t", workspace)
    linked = workspace / "t2"
    linked.mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (linked / ".git").symlink_to(tmp_path / "other")
    with pytest.raises(SandboxError, match="not a directory"):
        sandboxes.prepare_scratch(linked, workspace)
    assert not (tmp_path / "other" / "HEAD").exists()
