"""kill -9 of `claudomator serve` while its push is in flight: the restart finishes the record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from robust import CLAUDOMATOR, db_rows, free_port, reap, wait_until
from server_harness import gated_agent, runs_of

from claudomator import recovery
from claudomator.models import AgentConfig, DeliveryRecord, Task
from claudomator.store import Store
from claudomator.store.intents import DeliveryIntent
from conftest import MakeRepo, git

# the remote's post-receive hook runs after its refs moved; the pushing git waits for it
POST_RECEIVE = """#!{python}
import os, time
open({marker!r} + ".tmp", "w").write(str(os.getpid()))
os.replace({marker!r} + ".tmp", {marker!r})
time.sleep(60)
"""


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    with log.open("a") as out:
        return subprocess.Popen(
            [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"], env=env, stderr=out
        )


def test_kill_9_during_the_push_finishes_the_record_without_running_the_agent_again(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "remote", "add", "local", str(remote))
    git(project, "push", "-q", "local", "main")
    marker = tmp_path / "pushed"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(POST_RECEIVE.format(python=sys.executable, marker=str(marker)))
    hook.chmod(0o755)

    state = tmp_path / "agent-state"
    agent = gated_agent(tmp_path / "bin", state)
    (state / "all.go").touch()
    config = tmp_path / "config.toml"
    # unconfined: the fake agent reports to the test through a file outside its sandbox
    config.write_text(
        f'claude_binary_path = "{agent}"\nkill_grace_seconds = 1\n[isolation]\nlauncher = "plain"\n'
    )
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config)}
    db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    queue = Store.open(db)
    try:
        work = AgentConfig(type="claude", instructions="write a file", project_dir=str(project))
        [task] = queue.add_tasks([Task(name="pushed", agent=work)])
    finally:
        queue.close()

    log = tmp_path / "serve.log"
    first = _serve(env, log)
    second = None
    hook_pid = 0
    try:
        wait_until(marker.exists, 60, "the push reached the remote")
        hook_pid = int(marker.read_text())
        first.send_signal(signal.SIGKILL)  # mid-push: the remote has the work, we never knew
        first.wait(10)
        pushed = git(remote, "rev-parse", "refs/heads/main")
        assert pushed != git(project, "rev-parse", "HEAD"), "the remote did not move"

        second = _serve(env, log)
        wait_until(
            lambda: (
                db_rows(db, "select state from tasks where id = ?", (task.id,))
                not in ([], [("RUNNING",)], [("QUEUED",)])
            ),
            60,
            "the task left RUNNING after the restart",
        )
        [(final,)] = db_rows(db, "select state from tasks where id = ?", (task.id,))
        assert final == "COMPLETED", log.read_text()
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        assert second.returncode == 0, log.read_text()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        reap([hook_pid] if hook_pid else [])
    assert runs_of(state, task.id) == 1, "the agent ran (and was paid) twice"
    query = "select status, commits, delivery from executions where task_id = ?"
    rows = db_rows(db, query, (task.id,))
    assert len(rows) == 1, rows
    status, commits, delivery = rows[0]
    assert status == "COMPLETED"
    assert pushed in str(commits), commits
    assert json.loads(str(delivery)) == {  # where the work went, as if the push had returned
        "how": "pushed",
        "project_dir": str(project),
        "remote": "local",
        "url": str(remote),
        "branch": "main",
        "rebased": False,
    }
    assert git(remote, "log", "--format=%s", "-1") != "initial"
    assert f"work-{task.id}.txt" in git(remote, "ls-tree", "--name-only", "main")


def test_recovery_believes_only_a_target_that_has_the_work(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "remote", "add", "local", str(remote))
    git(project, "push", "-q", "local", "main")
    base = git(project, "rev-parse", "HEAD")
    sandbox = tmp_path / "sandbox"
    git(tmp_path, "clone", "-q", str(project), str(sandbox))
    (sandbox / "new.txt").write_text("work\n")
    git(sandbox, "add", "new.txt")
    git(sandbox, "commit", "-q", "-m", "the agent's work")
    head = git(sandbox, "rev-parse", "HEAD")
    intent = DeliveryIntent(
        execution_id="e1",
        task_id="t1",
        project_dir=str(project),
        sandbox_dir=str(sandbox),
        branch="main",
        base_commit=base,
    )
    assert recovery.landed(intent) is None  # not pushed yet: the task is re-queued as before

    (sandbox / ".git" / "HEAD").unlink()  # the agent points HEAD elsewhere through a symlink
    (sandbox / ".git" / "HEAD").symlink_to(tmp_path / "planted")
    (tmp_path / "planted").write_text(base + "\n")
    assert recovery.landed(intent) is None
    assert recovery.landed(replace(intent, head=base)) is None  # nothing new is no delivery

    (sandbox / ".git" / "HEAD").unlink()
    (sandbox / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    git(sandbox, "push", "-q", str(remote), "HEAD:main")
    found = recovery.landed(intent)  # the sandbox's HEAD, confirmed by the target
    assert found is not None
    assert found.target == "local/main"
    found = recovery.landed(replace(intent, head=head))
    assert found is not None
    assert found.target == "local/main"
    assert [c.hash for c in found.commits] == [head]
    assert found.delivery == DeliveryRecord(
        how="pushed", project_dir=str(project), remote="local", url=str(remote), branch="main"
    )
