"""The server under a locked database, starved thread pools and slow clients (issue 10, 7-9)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from robust import (
    CLAUDOMATOR,
    UNCONFINED,
    UNCONFINED_TOML,
    cli_env,
    db_rows,
    free_port,
    size,
    wait_until,
)
from server_harness import DatabaseLock, gated_agent, get, get_json, runs_of, serving

from claudomator.config import Settings
from claudomator.models import AgentConfig, Project, Task, TaskState
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git

BUSY_TIMEOUT = 0.2  # seconds our writes wait for the other process's lock
BUILD_GATE = """
import os, sys, time
open(os.path.join(sys.argv[1], "building"), "w").close()
while not os.path.exists(os.path.join(sys.argv[1], "built")):
    time.sleep(0.02)
"""


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.05)


async def test_outcome_refused_by_a_locked_database_is_stored_once_the_lock_is_gone(
    tmp_path: Path, settings: Settings, make_repo: MakeRepo
) -> None:
    project = make_repo()
    state = tmp_path / "agent-state"
    # the build check holds the attempt until the lock is taken; the outcome is written after
    gate = (sys.executable, "-c", BUILD_GATE, str(state))
    settings = settings.model_copy(
        update={
            "claude_binary_path": str(gated_agent(tmp_path / "bin", state)),
            "projects": (Project(name="project", dir=str(project), build_command=gate),),
            "isolation": UNCONFINED,
        }
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.db_path, busy_timeout=BUSY_TIMEOUT)
    service = Service(settings, store)
    agent = AgentConfig(type="claude", instructions="write a file", project_dir=str(project))
    locker: DatabaseLock | None = None
    try:
        async with serving(settings, service) as url:
            [task] = service.submit([Task(name="locked-out", agent=agent)])

            (state / f"{task.id}.go").touch()

            async def building() -> bool:
                return (state / "building").exists()

            await until(building, 30, "the agent finished and its build check runs")
            # another process (a backup, a sqlite3 shell) takes the database past our timeout
            locker = DatabaseLock(settings.db_path)
            (state / "built").touch()  # the work is committed and delivered; then the outcome

            async def refused_again() -> bool:
                health = await get_json(f"{url}/api/health")
                retried = store.backlog.state().failures_total >= 3
                return bool(health["pending_outcomes"] == 1 and retried)

            await until(refused_again, 30, "the outcome write was refused and retried")
            health = await get_json(f"{url}/api/health")
            assert health["status"] == "degraded", health
            assert "locked" in health["detail"], health
            metrics = await asyncio.to_thread(_metrics, url)
            try:
                assert "\nclaudomator_pending_outcomes 1.0\n" in metrics, metrics
                assert store.get_task(task.id).state == TaskState.RUNNING  # kept, not yet stored
                delivered = git(project, "log", "--all", "--name-only", "--format=")
                assert f"work-{task.id}.txt" in delivered  # its work is in the project
            finally:  # a failure must not leave the pool waiting for the lock at shutdown
                locker.release()

            async def completed() -> bool:
                return store.get_task(task.id).state == TaskState.COMPLETED

            await until(completed, 30, "the task reached its real outcome without a restart")
            health = await get_json(f"{url}/api/health")
            assert health["status"] == "ok", health
            assert health["pending_outcomes"] == 0, health
    finally:
        if locker is not None:
            locker.release()
        store.close()
    assert runs_of(state, task.id) == 1, "the agent ran more than once"
    [execution] = store.executions_of(task.id)
    assert execution.status == TaskState.COMPLETED
    assert len(execution.commits) == 1, execution


def _metrics(url: str) -> str:
    return get(f"{url}/metrics")[1]


# -- item 8: build checks do not starve the API ---------------------------------------------

SECRET = "webhook secret of the test"
BUILD = """
import os, sys, time, uuid
state = sys.argv[1]
marker = os.path.join(state, "building." + uuid.uuid4().hex)
open(marker, "w").close()
while not os.path.exists(os.path.join(state, "release")):
    time.sleep(0.02)
os.remove(marker)
"""

CHECK_RUN_FAILED: dict[str, object] = {
    "action": "completed",
    "check_run": {
        "id": 25769410432,
        "name": "test (3.11)",
        "head_sha": "d6fde92930d4715a2b49857d24b940956b26d2d3",
        "html_url": "https://github.com/octo-org/webapp/actions/runs/9361803475/job/1",
        "status": "completed",
        "conclusion": "failure",
        "output": {"title": "Process completed with exit code 1.", "summary": "2 failed"},
        "check_suite": {"head_branch": "main"},
        "pull_requests": [],
    },
    "repository": {"name": "webapp", "full_name": "octo-org/webapp"},
}


def signed_webhook(url: str, payload: dict[str, object]) -> tuple[int, str]:
    """POST a GitHub ``check_run`` delivery signed with ``SECRET`` (GitHub waits 10 s)."""
    body = json.dumps(payload).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 (http only)
        f"{url}/api/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "check_run",
            "X-GitHub-Delivery": "robust-1",
            "X-Hub-Signature-256": f"sha256={digest}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http only)
        return response.status, response.read().decode()


def test_webhook_and_health_answer_while_every_slot_runs_a_build_check(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    # as many builds as asyncio's default executor has threads (six on two cores)
    slots = min(32, (os.cpu_count() or 1) + 4)
    project = make_repo("webapp")
    state = tmp_path / "agent-state"
    agent = gated_agent(tmp_path / "bin", state)
    build = json.dumps([sys.executable, "-c", BUILD, str(state)])
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{agent}"\nkill_grace_seconds = 1\nmax_concurrent = {slots}\n'
        f'webhook_secret = "{SECRET}"\n'
        f"{UNCONFINED_TOML}"
        f'[[projects]]\nname = "webapp"\ndir = "{project}"\nbuild_command = {build}\n'
    )
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config)}
    data = Path(env["CLAUDOMATOR_DATA_DIR"])
    queue = Store.open(data / "claudomator.db")
    try:
        work = AgentConfig(type="claude", instructions="write a file", project_dir=str(project))
        queue.add_tasks([Task(name=f"build {i}", agent=work) for i in range(slots)])
    finally:
        queue.close()
    (state / "all.go").touch()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"], env=env, stderr=log
    )
    try:
        wait_until(
            lambda: len(list(state.glob("building.*"))) == slots, 60, "every slot runs a build"
        )
        status, body = signed_webhook(url, CHECK_RUN_FAILED)
        assert status == 201, body
        status, body = get(f"{url}/api/health")
        assert status == 200, body
        # both answered while every build check still runs (none has been let go yet)
        assert len(list(state.glob("building.*"))) == slots
        rows = db_rows(data / "claudomator.db", "select count(*) from tasks")
        assert rows == [(slots + 1,)]
    finally:
        (state / "release").touch()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()


# -- item 9: slow clients ---------------------------------------------------------------------

REQUEST_TIMEOUT = 2.0  # seconds serve gives a client to send a whole request
WITH_NOFILE = """
import os, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))  # soft and hard, as `ulimit -n`
os.execv(sys.argv[2], sys.argv[2:])
"""


def _half_sent(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each send part of a request's headers, then nothing."""
    clients = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        clients.append(sock)
    return clients


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server ends the connection (EOF or reset) before ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def test_half_sent_requests_are_timed_out_and_a_new_task_still_completes(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    clients = size(300, 1010)
    nofile = 1024 if clients > 1000 else clients + 24  # the issue's `ulimit -n 1024`, scaled
    project = make_repo()
    env = cli_env(tmp_path)
    db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WITH_NOFILE,
            str(nofile),
            CLAUDOMATOR,
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            "--request-timeout",
            str(REQUEST_TIMEOUT),
        ],
        env=env,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    opened: list[socket.socket] = []
    try:
        wait_until(lambda: _answers(url), 30, "serve answers")
        opened = _half_sent(port, clients)
        queue = Store.open(db)
        try:
            work = AgentConfig(type="claude", instructions="ok", project_dir=str(project))
            [task] = queue.add_tasks([Task(name="after the flood", agent=work)])
        finally:
            queue.close()
        wait_until(
            lambda: (
                db_rows(db, "select state from tasks where id = ?", (task.id,))
                in ([("COMPLETED",)], [("FAILED",)])
            ),
            60,
            "the new task finished",
        )
        [(state, error)] = db_rows(
            db,
            "select t.state, e.error_msg from tasks t join executions e on e.task_id = t.id "
            "where t.id = ?",
            (task.id,),
        )
        assert state == "COMPLETED", error
        deadline = time.monotonic() + REQUEST_TIMEOUT + 30
        still_open = [s for s in opened if not _closed_by_server(s, deadline)]
        assert still_open == [], f"{len(still_open)} half-sent requests never timed out"
        assert _answers(url), "serve stopped answering"
    finally:
        for sock in opened:
            sock.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            log.close()
    err = log_path.read_text()
    assert "Too many open files" not in err, err
    assert server.returncode == 0, err


def _answers(url: str) -> bool:
    try:
        return get(f"{url}/api/health", timeout=5)[0] == 200
    except OSError:
        return False
