"""Issue 11 item 5b: a project_dir that is a subdirectory of a repository (a monorepo package).

The sandbox is a copy of the whole repository (the repository is the project for git: warm
trees, delivery), and the agent and the build check work in the same subdirectory of it. Real
git repositories, real ``make``, the real Claude Code CLI against the fake model server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task

from claudomator.config import Settings
from claudomator.errors import BuildFailed, SandboxError, SandboxTampered
from claudomator.models import Project, TaskState
from claudomator.projects import described
from claudomator.sandbox import Sandboxes, warm
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")

# make's build passes only where the agent left hello.txt (its own directory)
PACKAGE_MAKEFILE = "build:\n\ttest -f hello.txt\n"
ROOT_MAKEFILE = "build:\n\t@echo the root build must not run for a package >&2; false\n"


@pytest.fixture
def monorepo(make_repo: MakeRepo) -> Path:
    """A repository with two packages; only ``packages/app`` has a Makefile of its own."""
    return make_repo(
        "mono",
        {
            "README.md": "# mono\n",
            "Makefile": ROOT_MAKEFILE,
            "packages/app/Makefile": PACKAGE_MAKEFILE,
            "packages/app/main.py": "print('app')\n",
            "packages/lib/lib.py": "X = 1\n",
        },
    )


@pytest.fixture
def sandboxes(tmp_path: Path) -> Sandboxes:
    return Sandboxes(tmp_path / "data" / "sandboxes")


# --- the sandbox -------------------------------------------------------------------------------


def test_a_package_gets_a_sandbox_of_the_whole_repository(
    sandboxes: Sandboxes, monorepo: Path
) -> None:
    box = sandboxes.create(monorepo / "packages" / "app", "exec-1")
    assert box.project_dir == monorepo.resolve()  # the repository is the project for git
    assert box.subdir == "packages/app"
    assert (box.dir / "packages" / "lib" / "lib.py").is_file()  # the whole repository
    assert box.describe() == f"{monorepo.resolve()} (subdirectory packages/app)"
    # the build check runs in the package: its Makefile finds the agent's file there
    (box.dir / "packages" / "app" / "hello.txt").write_text("hi\n")
    collected = sandboxes.collect(box)
    assert len(collected.commits) == 1
    sandboxes.release(box)
    # warm trees are the repository's: the other package takes the tree just released
    pool = warm.pool_dir(sandboxes.root, monorepo.resolve(), "main")
    assert len(list(pool.iterdir())) == 1
    other = sandboxes.create(monorepo / "packages" / "lib", "exec-2")
    assert not list(pool.iterdir())
    assert other.subdir == "packages/lib"
    assert not (other.dir / "packages" / "app" / "hello.txt").exists()


def test_the_build_check_runs_in_the_package_else_the_nearest_parent(
    sandboxes: Sandboxes, monorepo: Path
) -> None:
    app = sandboxes.create(monorepo / "packages" / "app", "exec-1")
    (app.dir / "notes.txt").write_text("no hello.txt in the package\n")
    with pytest.raises(BuildFailed) as failed:
        sandboxes.collect(app)
    assert failed.value.command == ("make", "build")
    assert "test -f hello.txt" in failed.value.output_tail  # the package's Makefile, not the root's
    # a package without a build of its own falls back to the repository's
    lib = sandboxes.create(monorepo / "packages" / "lib", "exec-2")
    (lib.dir / "packages" / "lib" / "new.py").write_text("Y = 2\n")
    with pytest.raises(BuildFailed) as failed:
        sandboxes.collect(lib)
    assert "the root build must not run for a package" in failed.value.output_tail
    # a build command given for the package runs in the package
    sandboxes.collect(lib, build_command=("test", "-f", "new.py"))


def test_an_uncommitted_subdirectory_is_named_not_failed_obscurely(
    sandboxes: Sandboxes, monorepo: Path
) -> None:
    empty = monorepo / "packages" / "empty"
    empty.mkdir()
    with pytest.raises(SandboxError, match="commit it first") as refused:
        sandboxes.create(empty, "exec-1")
    assert str(empty) in str(refused.value)
    assert "subdirectory packages/empty" in str(refused.value)
    assert not (sandboxes.root / "exec-1").exists()
    assert not (empty / ".git").exists()  # never made a repository of its own
    (empty / "x.py").write_text("x\n")  # untracked files: still not in the commits
    with pytest.raises(SandboxError, match="commit it first"):
        sandboxes.create(empty, "exec-2")
    git(monorepo, "add", "-A")
    git(monorepo, "commit", "-q", "-m", "add the package")
    assert sandboxes.create(empty, "exec-3").subdir == "packages/empty"


def test_an_ignored_folder_is_still_a_repository_of_its_own(
    sandboxes: Sandboxes, make_repo: MakeRepo
) -> None:
    repo = make_repo("ignoring", {".gitignore": "scratch/\n"})
    scratch = repo / "scratch"
    scratch.mkdir()
    (scratch / "a.txt").write_text("a\n")
    box = sandboxes.create(scratch, "exec-1")
    assert (box.project_dir, box.subdir) == (scratch.resolve(), "")


def test_a_package_linked_out_of_the_sandbox_is_refused(
    sandboxes: Sandboxes, monorepo: Path, tmp_path: Path
) -> None:
    package = monorepo / "packages" / "app"
    box = sandboxes.create(package, "exec-1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Makefile").write_text(f"build:\n\ttouch {tmp_path / 'built-outside'}\n")
    (outside / "hello.txt").write_text("hi\n")
    target = box.dir / "packages" / "app"
    subprocess.run(["rm", "-rf", str(target)], check=True)
    target.symlink_to(outside)  # what a hostile agent does before it asks a question
    assert sandboxes.reopen(box.dir, package) is None  # a resumed run never works there
    with pytest.raises(SandboxTampered, match="packages/app is a symbolic link"):
        sandboxes.collect(box)
    assert not (tmp_path / "built-outside").exists()
    # a linked parent is refused as well
    target.unlink()
    packages = box.dir / "packages"
    subprocess.run(["rm", "-rf", str(packages)], check=True)
    (outside / "app").mkdir()
    packages.symlink_to(outside)
    assert sandboxes.reopen(box.dir, package) is None


def test_a_package_of_a_sandbox_is_never_a_project(sandboxes: Sandboxes, monorepo: Path) -> None:
    box = sandboxes.create(monorepo / "packages" / "app", "exec-1")
    for inside in (box.dir / "packages" / "app", box.dir):  # agent-written repositories
        with pytest.raises(SandboxError, match="inside Claudomator's sandboxes"):
            sandboxes.create(inside, "exec-2")
    assert not (sandboxes.root / "exec-2").exists()


def test_a_sandbox_reopens_only_for_its_own_package(sandboxes: Sandboxes, monorepo: Path) -> None:
    box = sandboxes.create(monorepo / "packages" / "app", "exec-1")
    assert sandboxes.reopen(box.dir, monorepo / "packages" / "lib") is None
    assert sandboxes.reopen(box.dir, monorepo) is None
    reopened = sandboxes.reopen(box.dir, monorepo / "packages" / "app")
    assert reopened is not None
    assert (reopened.project_dir, reopened.subdir) == (box.project_dir, "packages/app")


def test_described_says_where_in_the_repository(monorepo: Path, tmp_path: Path) -> None:
    package = str(monorepo / "packages" / "app")
    assert described(package) == f"{package} in {monorepo.resolve()} (subdirectory packages/app)"
    assert described(str(monorepo)) == str(monorepo)
    assert described(str(tmp_path / "nowhere")) == str(tmp_path / "nowhere")
    assert described("") == "(scratch)"


def test_a_dry_run_says_where_the_package_is(monorepo: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "name: in-a-package\nagent: {instructions: x, project_dir: mono/packages/app}\n",
        encoding="utf-8",
    )
    shown = subprocess.run(
        [CLAUDOMATOR, "run", "--dry-run", str(tasks)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"in {monorepo.resolve()} (subdirectory packages/app)" in shown.stdout


# --- the agent, end to end ---------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def agent_script() -> list[Text | ToolUse]:
    command = "echo 'hello from the agent' > hello.txt && pwd > where.txt"
    return [
        ToolUse("Bash", {"command": command}, text="I'll create the file."),
        Text("Done.\n\n## Summary\nCreated hello.txt."),
    ]


@pytest.mark.cli
async def test_the_agent_works_in_the_package_and_its_commit_is_delivered(
    settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    monorepo: Path,
    claude_bin: str,
    tmp_path: Path,
) -> None:
    harness_settings = settings.model_copy(
        update={"claude_binary_path": claude_bin, "kill_grace_seconds": 2}
    )
    package = monorepo / "packages" / "app"
    user_head = git(monorepo, "rev-parse", "HEAD")
    fake.set_script(agent_script())
    env = claude_env(fake.url, tmp_path / "agent-home")
    async with PoolHarness(harness_settings, store, env) as h:
        [task] = h.submit(make_task(package, "Create hello.txt"))
        [done] = await h.settle([task])

    [execution] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    # the task keeps the folder the user gave (display, filters)
    assert done.agent.project_dir == str(package)
    assert [t.id for t in store.list_tasks(project_dir=str(package))] == [task.id]
    # the agent's relative paths landed in the package; the branch is the repository's
    branch = kept_branch(monorepo, task.id)
    assert git(monorepo, "rev-parse", branch) == execution.commits[-1].hash
    assert git(monorepo, "show", f"{branch}:packages/app/hello.txt") == "hello from the agent"
    where = git(monorepo, "show", f"{branch}:packages/app/where.txt")
    assert Path(where) == Path(execution.sandbox_dir) / "packages" / "app"
    assert git(monorepo, "rev-parse", "HEAD") == user_head
    assert not (package / "hello.txt").exists()
    assert execution.sandbox_dir in json.dumps(fake.requests[0].body)
    # `show` says where the package is
    shown = await asyncio.to_thread(
        subprocess.run,
        [CLAUDOMATOR, "show", task.id],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"in {monorepo.resolve()} (subdirectory packages/app)" in shown.stdout


@pytest.mark.cli
async def test_a_project_registered_by_its_package_applies_its_build_there(
    settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    monorepo: Path,
    claude_bin: str,
    tmp_path: Path,
) -> None:
    harness_settings = settings.model_copy(
        update={"claude_binary_path": claude_bin, "kill_grace_seconds": 2}
    )
    lib = monorepo / "packages" / "lib"
    # the package's build command: passes only in the package, where the agent wrote
    build = ("test", "-f", "hello.txt")
    store.save_project(Project(name="lib", dir=str(lib), build_command=build), create=True)
    fake.set_script(agent_script())
    async with PoolHarness(harness_settings, store, claude_env(fake.url, tmp_path / "h")) as h:
        [task] = h.submit(make_task(lib, "Create hello.txt"))
        [done] = await h.settle([task])
    [execution] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert git(monorepo, "show", f"{kept_branch(monorepo, task.id)}:packages/lib/hello.txt")


@pytest.mark.cli
async def test_a_resumed_run_never_works_in_a_package_its_agent_linked_elsewhere(
    settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    monorepo: Path,
    claude_bin: str,
    tmp_path: Path,
) -> None:
    harness_settings = settings.model_copy(
        update={"claude_binary_path": claude_bin, "kill_grace_seconds": 2}
    )
    package = monorepo / "packages" / "app"
    outside = tmp_path / "outside"
    outside.mkdir()
    question = json.dumps({"text": "Shall I?", "options": []})
    hostile = (
        f"cd .. && rm -rf app && ln -s {outside} app && "
        f"echo '{question}' > \"$CLAUDOMATOR_QUESTION_FILE\""
    )
    fake.set_script(
        [
            ToolUse("Bash", {"command": hostile}),
            Text("asked"),
            ToolUse("Bash", {"command": "echo hi > hello.txt && pwd > where.txt"}),
            Text("## Summary\nDid it."),
        ]
    )
    async with PoolHarness(harness_settings, store, claude_env(fake.url, tmp_path / "h")) as h:
        [task] = h.submit(make_task(package, "Do it"))
        [blocked] = await h.settle([task])
        assert blocked.state == TaskState.BLOCKED
        first_box = Path(store.executions_of(task.id)[0].sandbox_dir)
        assert (first_box / "packages" / "app").is_symlink()
        h.service.answer(task.id, "yes")
        [done] = await h.settle([task])
    first, second = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, second.error_msg
    assert not list(outside.iterdir())  # nothing ran in the linked folder
    assert second.sandbox_dir != first.sandbox_dir  # the tampered sandbox was not reopened
    where = git(monorepo, "show", f"{kept_branch(monorepo, task.id)}:packages/app/where.txt")
    assert Path(where) == Path(second.sandbox_dir) / "packages" / "app"


@pytest.mark.parametrize("review", [True, False])
def test_recovery_leaves_a_review_package_to_its_re_run(
    make_repo: MakeRepo, settings: Settings, review: bool
) -> None:
    """A kill -9 during the delivery of a package registered as a review project: the intent
    names the repository root, yet the package's review setting is what counts."""
    from claudomator import reconcile
    from claudomator.models import AgentConfig, Execution, Task
    from claudomator.store.intents import DeliveryIntent

    repo = make_repo("mono", {"packages/app/Makefile": "build:\n\ttrue\n", "README.md": "x\n"})
    base = git(repo, "rev-parse", "HEAD")
    package = repo / "packages" / "app"
    store = Store.open(settings.db_path)
    try:
        store.save_project(Project(name="app", dir=str(package), review=review), create=True)
        [task] = store.add_tasks(
            [Task(name="t", agent=AgentConfig(instructions="x", project_dir=str(package)))]
        )
        execution = Execution(task_id=task.id, agent="claude")
        store.transition(task.id, TaskState.RUNNING, "claimed", execution=execution)
        tree = git(repo, "write-tree")
        head = git(repo, "commit-tree", tree, "-p", base, "-m", "work")
        git(repo, "update-ref", f"refs/heads/claudomator/{task.id}", head)
        store.record_delivery_intent(
            DeliveryIntent(
                execution_id=execution.id,
                task_id=task.id,
                project_dir=str(repo),
                sandbox_dir=str(settings.sandboxes_dir / execution.id),
                branch="main",
                base_commit=base,
                head=head,
            )
        )
        finished = reconcile._finish_delivered(settings, store, store.get_execution(execution.id))
        assert finished is not review
        assert (store.get_task(task.id).state == TaskState.COMPLETED) is not review
    finally:
        store.close()
