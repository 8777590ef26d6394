"""Parallel deliveries to one target all land; a true conflict is kept as a branch (issue 10,
item 13).

Four processes deliver four sandboxes of one project, each with its own new file, to the
project's bare remote ``local`` at the same moment. The remote's pre-receive hook is slow, as a
real server's checks are, which made all but one of them lose the race after the single retry.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from claudomator.errors import DeliveryConflict, SandboxError
from claudomator.sandbox import Delivered, DeliveryKind, Sandboxes
from conftest import MakeRepo, git

DELIVER = """
import sys, time
from pathlib import Path
from claudomator.sandbox import Sandboxes
root, tree, project, task, start = sys.argv[1:]
sandboxes = Sandboxes(Path(root))
box = sandboxes.reopen(Path(tree), Path(project))
while time.time() < float(start):
    time.sleep(0.005)
print(sandboxes.deliver(box, task_id=task))
"""


def commit_file(tree: Path, name: str, text: str) -> None:
    (tree / name).write_text(text)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"add {name}")


@pytest.fixture
def project(make_repo: MakeRepo, tmp_path: Path) -> Path:
    repo = make_repo("shared-project", {"README.md": "shared\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\nsleep 0.3\n")  # a server's checks take time
    hook.chmod(0o755)
    git(repo, "remote", "add", "local", str(remote))
    return repo


def test_four_parallel_deliveries_to_one_remote_all_land(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "data" / "sandboxes"
    sandboxes = Sandboxes(root)
    boxes = [sandboxes.create(project, f"exec-{n}") for n in range(4)]
    for n, box in enumerate(boxes):
        commit_file(box.dir, f"agent-{n}.txt", f"agent {n}\n")
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DELIVER, str(root), str(b.dir), str(project), f"t{n}", start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, b in enumerate(boxes)
    ]
    results = [p.communicate(timeout=120) for p in procs]

    failures = [err for p, (_, err) in zip(procs, results, strict=True) if p.returncode != 0]
    assert failures == []
    said = sorted(out.strip() for out, _ in results)
    assert said[0] == "pushed to local/main"
    assert said[1:] == ["pushed to local/main (rebased onto new upstream work)"] * 3
    remote = tmp_path / "remote.git"
    landed = git(remote, "ls-tree", "--name-only", "main").split()
    assert landed == ["README.md", *(f"agent-{n}.txt" for n in range(4))]
    assert len(git(remote, "rev-list", "main").split()) == 5  # linear: one commit each


def test_a_true_conflict_keeps_the_work_as_a_branch_naming_the_files(
    project: Path, tmp_path: Path
) -> None:
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes")
    box = sandboxes.create(project, "exec-1")
    commit_file(box.dir, "README.md", "the agent's version\n")
    commit_file(box.dir, "extra.txt", "more\n")
    work = git(box.dir, "rev-parse", "HEAD")
    other = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(tmp_path / "remote.git"), str(other))
    commit_file(other, "README.md", "the human's version\n")
    git(other, "push", "-q", "origin", "main")

    with pytest.raises(DeliveryConflict) as failure:
        sandboxes.deliver(box, task_id="task-9")

    assert failure.value.branch == "claudomator/task-9"
    assert failure.value.files == ("README.md",)
    assert "claudomator/task-9" in str(failure.value)
    assert "README.md" in str(failure.value)
    assert git(project, "rev-parse", "refs/heads/claudomator/task-9") == work
    assert git(project, "show", "claudomator/task-9:extra.txt") == "more"


def test_deliver_answers_a_typed_value(project: Path, tmp_path: Path) -> None:
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes")
    box = sandboxes.create(project, "exec-1")
    assert sandboxes.deliver(box, task_id="t") == Delivered(DeliveryKind.NOTHING)
    commit_file(box.dir, "x.txt", "x\n")
    done = sandboxes.deliver(box, task_id="t")
    assert done == Delivered(DeliveryKind.PUSHED, remote="local", branch="main", rebased=False)
    assert done.description == "pushed to local/main"


def test_on_target_tells_whether_commits_already_landed(project: Path, tmp_path: Path) -> None:
    """For recovery after a crash during a push (item 6): finish the record, do not re-run."""
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes")
    box = sandboxes.create(project, "exec-1")
    commit_file(box.dir, "a.txt", "a\n")
    first = git(box.dir, "rev-parse", "HEAD")
    assert not sandboxes.on_target(box, [first])
    sandboxes.deliver(box, task_id="t1")
    commit_file(box.dir, "b.txt", "b\n")
    second = git(box.dir, "rev-parse", "HEAD")

    later = Sandboxes(tmp_path / "data" / "sandboxes")  # as after a restart
    reopened = later.reopen(box.dir, project)
    assert reopened is not None
    assert later.on_target(reopened, [first])
    assert not later.on_target(reopened, [first, second])
    assert not later.on_target(reopened, ["0" * 40])
    assert not later.on_target(reopened, [])


def test_a_rebase_that_fails_otherwise_still_keeps_the_work_as_a_branch(
    project: Path, tmp_path: Path
) -> None:
    sandboxes = Sandboxes(tmp_path / "data" / "sandboxes")
    box = sandboxes.create(project, "exec-1")
    commit_file(box.dir, "mine.txt", "mine\n")
    work = git(box.dir, "rev-parse", "HEAD")
    (box.dir / "theirs.txt").write_text("an untracked file in the way\n")
    other = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(tmp_path / "remote.git"), str(other))
    commit_file(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", "main")

    with pytest.raises(SandboxError, match="kept as branch claudomator/task-3"):
        sandboxes.deliver(box, task_id="task-3")

    assert git(project, "rev-parse", "refs/heads/claudomator/task-3") == work
