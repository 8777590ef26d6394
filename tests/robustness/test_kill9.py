"""kill -9 of `claudomator run` with ten agents running; `claudomator serve` picks up after it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from robust import (
    CLAUDOMATOR,
    cli_env,
    db_rows,
    free_port,
    marked_alive,
    pid_alive,
    pids_of,
    reap,
    wait_until,
)

from conftest import MakeRepo

TASKS = 10  # the number, in CI too


def test_kill_9_with_tasks_running_then_restart_accounts_for_every_task(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo()
    env = cli_env(tmp_path, f"max_concurrent = {TASKS}\n")
    db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    state = Path(env["ROBUST_STATE_DIR"])
    lines = ["tasks:"]
    for i in range(TASKS):
        lines += [
            f"  - name: t{i}",
            f"    agent: {{instructions: 'ROBUST[hang-once]', project_dir: {project}}}",
        ]
    taskfile = tmp_path / "tasks.yaml"
    taskfile.write_text("\n".join(lines) + "\n")

    first = subprocess.Popen(
        [CLAUDOMATOR, "run", str(taskfile)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    spawned: list[int] = []
    try:

        def all_hanging() -> bool:
            rows = db_rows(db, "select id from tasks where state = 'RUNNING'")
            return len(rows) == TASKS and all(len(pids_of(state, str(r[0]))) == 2 for r in rows)

        wait_until(all_hanging, 60, f"{TASKS} agents running with a grandchild each")
        ids = sorted(str(r[0]) for r in db_rows(db, "select id from tasks"))
        spawned = [pid for task_id in ids for pid in pids_of(state, task_id)]
        first_runs = {str(r[0]) for r in db_rows(db, "select id from executions")}
        assert len(first_runs) == TASKS

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert all(pid_alive(p) for p in spawned), "agents outlive a kill -9 of their orchestrator"

        port = free_port()
        started = time.monotonic()
        server = subprocess.Popen(
            [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

        def all_completed() -> bool:
            rows = db_rows(db, "select state from tasks")
            return len(rows) == TASKS and {r[0] for r in rows} == {"COMPLETED"}

        wait_until(all_completed, 90, "every task completed after the restart")
        recovery = time.monotonic() - started
        assert not [p for p in spawned if pid_alive(p)], "orphans of the dead orchestrator live on"
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
    finally:
        for proc in (first, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        reap(spawned)

    # every task exactly once, each with its interrupted run and one completed run
    assert sorted(str(r[0]) for r in db_rows(db, "select id from tasks")) == ids
    runs = db_rows(db, "select task_id, id, status, error_msg from executions order by start_time")
    assert len(runs) == 2 * TASKS, runs
    for task_id in ids:
        mine = [r for r in runs if r[0] == task_id]
        assert [r[2] for r in mine] == ["QUEUED", "COMPLETED"], mine
        assert mine[0][1] in first_runs
        assert "orchestrator restarted" in str(mine[0][3])
    reasons = db_rows(db, "select reason from task_events where reason like 'orchestrator%'")
    assert len(reasons) == TASKS
    marks = {str(r[1]) for r in runs}
    assert marked_alive(marks) == [], "a process of some execution is still alive"
    print(f"recovered {TASKS} tasks in {recovery:.1f}s")
