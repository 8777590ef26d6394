"""The retention policy on a real data dir: a real SQLite store, real folders, real git repositories
with branches, symbolic links planted by an agent, and `claudomator gc` as a real process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from claudomator import retention
from claudomator.config import Settings, load_settings
from claudomator.errors import ConfigError
from claudomator.models import (
    AgentConfig,
    DeliveryRecord,
    Execution,
    Interaction,
    Task,
    TaskState,
    utcnow,
)
from claudomator.retention import Kind, Why
from claudomator.store import Store
from conftest import MakeRepo, git

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")
LATER = utcnow() + timedelta(days=60)  # "now" for plans made as if two months had passed


def with_policy(settings: Settings, **policy: object) -> Settings:
    return settings.model_copy(update={"retention": settings.retention.model_copy(update=policy)})


def add_task(
    store: Store,
    settings: Settings,
    state: TaskState,
    *,
    project_dir: str = "",
    ended: timedelta = timedelta(0),
    delivery: DeliveryRecord | None = None,
    task_id: str | None = None,
) -> tuple[Task, Execution]:
    """A task that ran once and is now in ``state`` (ended ``ended`` ago), with the log folder
    and the kept sandbox its execution left (some files in each)."""
    task = Task(
        name=f"{state.value.lower()} task",
        agent=AgentConfig(instructions="do it", project_dir=project_dir),
        **({"id": task_id} if task_id else {}),
    )
    task = store.add_tasks([task])[0]
    execution_id = str(uuid.uuid4())
    logs = settings.logs_dir / execution_id
    box = settings.sandboxes_dir / execution_id
    for folder in (logs, box / "src"):
        folder.mkdir(parents=True)
    (logs / "stdout.log").write_text("x" * 1000, encoding="utf-8")
    (box / "src" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    state_dir = settings.sandboxes_dir / ".state"
    state_dir.mkdir(exist_ok=True)
    (state_dir / f"{execution_id}.json").write_text("{}", encoding="utf-8")
    when = utcnow() - ended
    running = state == TaskState.RUNNING
    execution = Execution(
        id=execution_id,
        task_id=task.id,
        stdout_path=str(logs / "stdout.log"),
        stderr_path=str(logs / "stderr.log"),
        sandbox_dir=str(box),
        status=state,
        end_time=None if running else when,
        delivery=delivery,
    )
    store.transition(task.id, TaskState.RUNNING, "claimed", execution=execution)
    if not running:
        store.transition(task.id, state, "ended", updated_at=when)
    return store.get_task(task.id), execution


def targets(plan: retention.Plan, kind: Kind) -> set[str]:
    return {r.target for r in plan.of(kind)}


# -- log folders and sandboxes ----------------------------------------------------------------


def test_ended_tasks_lose_logs_and_sandboxes_while_waiting_tasks_keep_theirs(
    settings: Settings, store: Store
) -> None:
    ended = {s: add_task(store, settings, s)[1] for s in (TaskState.COMPLETED, TaskState.FAILED)}
    cancelled = add_task(store, settings, TaskState.CANCELLED)[1]
    kept = [add_task(store, settings, s)[1] for s in (TaskState.BLOCKED, TaskState.READY)]
    kept.append(add_task(store, settings, TaskState.RUNNING)[1])
    # answered: BLOCKED -> QUEUED, about to resume in its sandbox
    queued_task, queued = add_task(store, settings, TaskState.BLOCKED)
    store.add_interaction(
        Interaction(task_id=queued_task.id, execution_id=queued.id, question="which?")
    )
    store.transition(queued_task.id, TaskState.QUEUED, "answered")
    kept.append(queued)

    planned = retention.plan(settings, store, now=LATER)

    gone = [*ended.values(), cancelled]
    assert targets(planned, Kind.LOG) == {str(Path(e.stdout_path).parent) for e in gone}
    assert targets(planned, Kind.SANDBOX) == {e.sandbox_dir for e in gone}
    for removal in planned.removals:
        assert removal.why is Why.ENDED
        assert removal.age_days >= 59
        assert removal.size
        assert removal.size > 0
    for execution in [*gone, *kept]:  # planning removed nothing
        assert Path(execution.sandbox_dir).is_dir()
        assert Path(execution.stdout_path).is_file()

    applied = retention.apply(settings, planned)

    assert not applied.failed
    assert len(applied.removed) == 6
    assert applied.size == planned.size > 6000
    for execution in gone:
        assert not os.path.lexists(execution.sandbox_dir)
        assert not os.path.lexists(Path(execution.stdout_path).parent)
        assert not (settings.sandboxes_dir / ".state" / f"{execution.id}.json").exists()
    for execution in kept:
        assert Path(execution.sandbox_dir, "src", "main.py").is_file()
        assert Path(execution.stdout_path).is_file()
    assert "removed 3 log folders, 3 sandboxes, 0 branches" in applied.summary()


def test_recent_endings_are_kept_and_zero_keeps_forever(settings: Settings, store: Store) -> None:
    add_task(store, settings, TaskState.COMPLETED, ended=timedelta(days=3))
    recent = retention.plan(settings, store)  # 3 days: under both 7 and 30
    assert recent.removals == ()

    old = add_task(store, settings, TaskState.COMPLETED, ended=timedelta(days=10))[1]
    planned = retention.plan(settings, store)
    assert targets(planned, Kind.SANDBOX) == {old.sandbox_dir}  # 10 days: past 7, under 30
    assert targets(planned, Kind.LOG) == set()

    forever = with_policy(settings, logs_days=0, sandboxes_days=0, branches_days=0)
    assert retention.plan(forever, store, now=LATER).removals == ()


def test_planted_links_are_removed_as_links_and_their_targets_survive(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    outside = tmp_path / "users-files"
    (outside / "deep").mkdir(parents=True)
    precious = outside / "precious.txt"
    precious.write_text("keep me", encoding="utf-8")
    (outside / "deep" / "also.txt").write_text("keep me too", encoding="utf-8")
    first = add_task(store, settings, TaskState.FAILED)[1]
    logs = Path(first.stdout_path).parent
    (logs / "to-dir").symlink_to(outside)
    (logs / "to-file").symlink_to(precious)
    (Path(first.sandbox_dir) / "src" / "escape").symlink_to(outside / "deep")
    # a second agent replaced its whole log folder and sandbox by links to the user's files
    second = add_task(store, settings, TaskState.COMPLETED)[1]
    for planted in (Path(second.stdout_path).parent, Path(second.sandbox_dir)):
        retention.remove_folder(planted.parent, planted)
        planted.symlink_to(outside)

    planned = retention.plan(settings, store, now=LATER)
    assert len(planned.removals) == 4
    applied = retention.apply(settings, planned)

    assert not applied.failed
    assert precious.read_text(encoding="utf-8") == "keep me"
    assert (outside / "deep" / "also.txt").read_text(encoding="utf-8") == "keep me too"
    for execution in (first, second):
        assert not os.path.lexists(execution.sandbox_dir)
        assert not os.path.lexists(Path(execution.stdout_path).parent)


def test_removal_stays_inside_the_data_dir(settings: Settings, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    with pytest.raises(retention.RetentionRefused, match="not directly inside"):
        retention.remove_folder(settings.logs_dir, settings.logs_dir / ".." / ".." / "victim")
    with pytest.raises(retention.RetentionRefused):
        retention.remove_folder(settings.logs_dir, settings.logs_dir)
    assert victim.is_dir()


def test_leftovers_of_deleted_tasks_go_by_when_they_last_changed(
    settings: Settings, store: Store
) -> None:
    task, execution = add_task(store, settings, TaskState.COMPLETED)
    store.delete_task(task.id, not_in=())
    old = time.time() - 40 * 86400
    orphan = Path(execution.sandbox_dir)
    for folder in (orphan, Path(execution.stdout_path).parent):
        os.utime(folder, (old, old))
    fresh = settings.sandboxes_dir / str(uuid.uuid4())  # no execution, but new: kept
    fresh.mkdir()
    trash = settings.sandboxes_dir / ".trash" / "abc123"
    trash.mkdir(parents=True)
    os.utime(trash, (old, old))
    for name in (".warm", "notes"):  # not execution ids: never ours to remove
        (settings.sandboxes_dir / name).mkdir()
        os.utime(settings.sandboxes_dir / name, (old, old))
    (settings.logs_dir / "cli-errors.log").write_text("x", encoding="utf-8")

    planned = retention.plan(settings, store)

    assert targets(planned, Kind.SANDBOX) == {str(orphan), str(trash)}
    assert targets(planned, Kind.LOG) == {str(Path(execution.stdout_path).parent)}
    assert {r.why for r in planned.removals} == {Why.DELETED, Why.TRASH}
    assert all(r.task_id == "" for r in planned.removals)
    retention.apply(settings, planned)
    assert not orphan.exists()
    assert not trash.exists()
    assert fresh.is_dir()
    assert (settings.sandboxes_dir / "notes").is_dir()
    assert (settings.logs_dir / "cli-errors.log").is_file()


def test_idle_warm_trees_go_after_sandboxes_days_and_a_planted_link_goes_as_a_link(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    old = time.time() - 10 * 86400
    pool = settings.sandboxes_dir / ".warm" / "project-0123456789abcdef"
    idle, fresh = pool / ("a" * 32), pool / ("b" * 32)
    for tree in (idle, fresh):
        (tree / ".git").mkdir(parents=True)
        (tree / "file.txt").write_text("x", encoding="utf-8")
    os.utime(idle, (old, old))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine", encoding="utf-8")
    planted = pool / ("c" * 32)
    planted.symlink_to(victim, target_is_directory=True)
    os.utime(planted, (old, old), follow_symlinks=False)
    (settings.sandboxes_dir / ".warm" / "linked-pool").symlink_to(victim)  # never entered

    planned = retention.plan(with_policy(settings, sandboxes_days=7), store)

    assert targets(planned, Kind.SANDBOX) == {str(idle), str(planted)}
    assert {r.why for r in planned.removals} == {Why.IDLE}
    assert "warm tree unused" in planned.removals[0].reason
    done = retention.apply(settings, planned)
    assert not done.failed
    assert not idle.exists()
    assert not planted.is_symlink()
    assert (victim / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert fresh.is_dir()
    assert not list((settings.sandboxes_dir / ".trash").iterdir())  # nothing left half-removed
    assert retention.plan(with_policy(settings, sandboxes_days=0), store).removals == ()


def test_a_warm_tree_taken_meanwhile_is_not_removed(settings: Settings, store: Store) -> None:
    pool = settings.sandboxes_dir / ".warm" / "project-0123456789abcdef"
    tree = pool / ("a" * 32)
    (tree / ".git").mkdir(parents=True)
    old = time.time() - 10 * 86400
    os.utime(tree, (old, old))
    planned = retention.plan(with_policy(settings, sandboxes_days=7), store)
    taken = settings.sandboxes_dir / str(uuid.uuid4())
    os.rename(tree, taken)  # what a new sandbox does with a warm tree
    retention.apply(settings, planned)
    assert (taken / ".git").is_dir()


def test_scratch_repositories_of_deleted_tasks_go_and_stored_tasks_keep_theirs(
    settings: Settings, store: Store
) -> None:
    old = time.time() - 40 * 86400
    kept_task = store.add_tasks([Task(name="scratch", agent=AgentConfig(instructions="x"))])[0]
    root = settings.scratch_dir
    deleted, stored = root / str(uuid.uuid4()), root / kept_task.id
    not_git, not_ours = root / str(uuid.uuid4()), root / "my-project"
    recent = root / str(uuid.uuid4())
    for folder in (deleted, stored, not_ours, recent):
        (folder / ".git").mkdir(parents=True)
    not_git.mkdir(parents=True)
    for folder in (deleted, stored, not_git, not_ours):
        os.utime(folder / ".git" if (folder / ".git").exists() else folder, (old, old))
        os.utime(folder, (old, old))

    planned = retention.plan(with_policy(settings, logs_days=30), store)

    assert targets(planned, Kind.SCRATCH) == {str(deleted)}
    [removal] = planned.of(Kind.SCRATCH)
    assert (removal.why, removal.task_id) == (Why.DELETED, "")
    done = retention.apply(settings, planned)
    assert "1 scratch repositories" in done.summary()
    assert not deleted.exists()
    for folder in (stored, not_git, not_ours, recent):
        assert folder.is_dir()


# -- branches ---------------------------------------------------------------------------------


def commit_on(repo: Path, branch: str, name: str, *, merge: bool) -> str:
    """A commit on a new branch ``branch`` off main (merged into main if ``merge``)."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    (repo / name).write_text(name, encoding="utf-8")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", name)
    git(repo, "checkout", "-q", "main")
    if merge:
        git(repo, "merge", "-q", "--no-edit", "--no-ff", branch)
    return git(repo, "rev-parse", branch)


def branches(repo: Path) -> set[str]:
    listed = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/claudomator/")
    return set(listed.splitlines())


def test_merged_branches_of_ended_or_unknown_tasks_go_and_unmerged_work_stays(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    project = str(repo)
    done = add_task(store, settings, TaskState.COMPLETED, project_dir=project)[0]
    commit_on(repo, f"claudomator/{done.id}", "a", merge=True)
    # the new naming: short id and a slug, found through the recorded delivery
    slugged = add_task(
        store,
        settings,
        TaskState.COMPLETED,
        project_dir=project,
        delivery=DeliveryRecord(how="branch", project_dir=project, branch="claudomator/fix-it"),
    )[0]
    commit_on(repo, "claudomator/fix-it", "b", merge=True)
    short = add_task(store, settings, TaskState.FAILED, project_dir=project)[0]
    commit_on(repo, f"claudomator/{short.id[:8]}-add-login", "c", merge=True)
    commit_on(repo, "claudomator/0123abcd-nobody", "d", merge=True)  # no stored task
    unmerged = add_task(store, settings, TaskState.COMPLETED, project_dir=project)[0]
    commit_on(repo, f"claudomator/{unmerged.id}", "e", merge=False)
    ready = add_task(store, settings, TaskState.READY, project_dir=project)[0]
    commit_on(repo, f"claudomator/{ready.id}", "f", merge=False)
    ready_merged = add_task(store, settings, TaskState.READY, project_dir=project)[0]
    commit_on(repo, f"claudomator/{ready_merged.id}", "g", merge=True)
    checked = add_task(store, settings, TaskState.COMPLETED, project_dir=project)[0]
    commit_on(repo, f"claudomator/{checked.id}", "h", merge=True)
    git(repo, "checkout", "-q", f"claudomator/{checked.id}")  # the user is on it

    planned = retention.plan(settings, store, now=LATER)

    expected = {
        f"claudomator/{done.id}",
        "claudomator/fix-it",
        f"claudomator/{short.id[:8]}-add-login",
        "claudomator/0123abcd-nobody",
    }
    assert targets(planned, Kind.BRANCH) == expected
    by_name = {r.target: r for r in planned.of(Kind.BRANCH)}
    assert by_name["claudomator/fix-it"].task_id == slugged.id
    assert by_name[f"claudomator/{short.id[:8]}-add-login"].task_id == short.id
    assert by_name["claudomator/0123abcd-nobody"].why is Why.DELETED
    assert all(r.merged_into == "main" and r.repo == str(repo) for r in by_name.values())
    assert branches(repo) >= expected  # planning deleted nothing

    applied = retention.apply(settings, planned)

    assert not applied.failed
    assert branches(repo) == {
        f"claudomator/{unmerged.id}",
        f"claudomator/{ready.id}",
        f"claudomator/{ready_merged.id}",
        f"claudomator/{checked.id}",
    }
    assert git(repo, "symbolic-ref", "HEAD") == f"refs/heads/claudomator/{checked.id}"

    # unmerged work goes only when unmerged_branches_days says so, and never a READY task's
    eager = with_policy(settings, unmerged_branches_days=30)
    assert targets(retention.plan(eager, store, now=LATER), Kind.BRANCH) == {
        f"claudomator/{unmerged.id}"
    }


def test_a_branch_that_moved_after_the_plan_is_not_deleted(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    done = add_task(store, settings, TaskState.COMPLETED, project_dir=str(repo))[0]
    branch = f"claudomator/{done.id}"
    commit_on(repo, branch, "a", merge=True)
    planned = retention.plan(settings, store, now=LATER)
    assert targets(planned, Kind.BRANCH) == {branch}
    git(repo, "checkout", "-q", branch)
    (repo / "more").write_text("more", encoding="utf-8")
    git(repo, "add", "more")
    git(repo, "commit", "-q", "-m", "more work")
    git(repo, "checkout", "-q", "main")

    applied = retention.apply(settings, planned)

    assert {r.kind for r in applied.removed} == {Kind.LOG, Kind.SANDBOX}
    assert [f.removal.target for f in applied.failed] == [branch]
    assert "expected" in applied.failed[0].error
    assert branches(repo) == {branch}


def test_a_hook_in_the_project_does_not_run(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    done = add_task(store, settings, TaskState.COMPLETED, project_dir=str(repo))[0]
    commit_on(repo, f"claudomator/{done.id}", "a", merge=True)
    witness = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(f"#!/bin/sh\ntouch {witness}\n", encoding="utf-8")
    hook.chmod(0o755)

    applied = retention.apply(settings, retention.plan(settings, store, now=LATER))

    assert not applied.failed
    assert branches(repo) == set()
    assert not witness.exists()


# -- configuration and the running service ----------------------------------------------------


def test_the_retention_section_is_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {"CLAUDOMATOR_CONFIG": str(config), "CLAUDOMATOR_DATA_DIR": str(tmp_path / "d")}
    config.write_text("[retention]\nlogs_days = 5\nevery = '30m'\n", encoding="utf-8")
    policy = load_settings(env).retention
    assert (policy.logs_days, policy.sandboxes_days, policy.every) == (5, 7, 1800.0)
    for bad, key in (
        ("logs_days = -1", "retention.logs_days"),
        ("branches_days = '14'", "retention.branches_days"),
        ("every = 'soon'", "retention.every"),
        ("keep_days = 3", "retention.keep_days"),
    ):
        config.write_text(f"[retention]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            load_settings(env)


async def test_the_orchestrator_applies_the_policy_when_it_starts(
    settings: Settings, store: Store
) -> None:
    from claudomator.runtime import Runtime

    _, old = add_task(store, settings, TaskState.COMPLETED, ended=timedelta(days=40))
    _, waiting = add_task(store, settings, TaskState.BLOCKED, ended=timedelta(days=40))
    async with Runtime(settings):
        for _ in range(600):  # the first round runs at start, in the sandbox executor
            if not os.path.lexists(old.sandbox_dir):
                break
            await asyncio.sleep(0.05)
    assert not os.path.lexists(old.sandbox_dir)
    assert not os.path.lexists(Path(old.stdout_path).parent)
    assert Path(waiting.sandbox_dir).is_dir()


# -- the command line -------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAUDOMATOR, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_gc_shows_the_plan_with_dry_run_and_applies_it_without(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    done, old = add_task(
        store, settings, TaskState.COMPLETED, project_dir=str(repo), ended=timedelta(days=40)
    )
    commit_on(repo, f"claudomator/{done.id}", "a", merge=True)
    _, ready = add_task(store, settings, TaskState.READY, ended=timedelta(days=40))

    shown = cli("gc", "--dry-run")

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Would remove 3 items" in out
    for word in ("log", "sandbox", "branch", done.id[:8], "task COMPLETED, 40 days ago"):
        assert word in out
    assert "merged into main" in out
    assert Path(old.sandbox_dir).is_dir()
    assert branches(repo)

    done_run = cli("gc")

    assert done_run.returncode == 0, done_run.stderr
    assert "Removed 3 items" in done_run.stdout
    assert not os.path.lexists(old.sandbox_dir)
    assert branches(repo) == set()
    assert Path(ready.sandbox_dir).is_dir()
    again = cli("gc", "--dry-run")
    assert again.returncode == 0
    assert "everything is within the [retention] policy" in again.stdout


def test_gc_help_explains_the_policy_and_a_bad_config_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helped = cli("gc", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for key in ("logs_days", "sandboxes_days", "branches_days", "unmerged_branches_days", "every"):
        assert key in text
    assert "--dry-run" in text

    config = tmp_path / "bad.toml"
    config.write_text("[retention]\nsandboxes_days = -2\n", encoding="utf-8")
    monkeypatch.setenv("CLAUDOMATOR_CONFIG", str(config))
    bad = cli("gc")
    assert bad.returncode == 2
    assert "retention.sandboxes_days" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_json_file_in_state_is_not_needed(settings: Settings, store: Store) -> None:
    """A sandbox without its .state record (made by an older version) is removed all the same."""
    _, execution = add_task(store, settings, TaskState.FAILED)
    (settings.sandboxes_dir / ".state" / f"{execution.id}.json").unlink()
    applied = retention.apply(settings, retention.plan(settings, store, now=LATER))
    assert not applied.failed
    assert not os.path.lexists(execution.sandbox_dir)


def test_a_branch_checked_out_after_the_plan_is_not_deleted(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    done = add_task(store, settings, TaskState.COMPLETED, project_dir=str(repo))[0]
    branch = f"claudomator/{done.id}"
    commit_on(repo, branch, "a", merge=True)
    planned = retention.plan(settings, store, now=LATER)
    git(repo, "worktree", "add", "-q", str(tmp_path / "second"), branch)  # another worktree

    applied = retention.apply(settings, planned)

    assert [f.removal.target for f in applied.failed] == [branch]
    assert "checked out" in applied.failed[0].error
    assert branches(repo) == {branch}


def test_agent_homes_of_ended_and_deleted_tasks_go_and_resumable_ones_stay(
    settings: Settings, store: Store
) -> None:
    old = time.time() - 10 * 86400
    ended, _ = add_task(store, settings, TaskState.COMPLETED, ended=timedelta(days=10))
    blocked, _ = add_task(store, settings, TaskState.BLOCKED, ended=timedelta(days=10))
    recent, _ = add_task(store, settings, TaskState.FAILED)
    homes = settings.homes_dir
    gone = homes / "a-chosen-id"  # a task id from a task file, whose task was deleted
    for name in (ended.id, blocked.id, recent.id, gone.name):
        (homes / name / ".claude").mkdir(parents=True)
    os.utime(gone, (old, old))
    planned = retention.plan(with_policy(settings, sandboxes_days=7), store)
    assert targets(planned, Kind.HOME) == {str(homes / ended.id), str(gone)}
    done = retention.apply(settings, planned)
    assert "2 agent homes" in done.summary()
    assert not (homes / ended.id).exists()
    assert not gone.exists()
    assert (homes / blocked.id / ".claude").is_dir()  # it resumes in its session
    assert (homes / recent.id).is_dir()
