"""A real `serve` and a real `run` on one data dir: who runs the file's tasks, how many agents
run at once, and what serve's console says about them (issue 11 items 10 and 21)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import MakeRepo
from fakes.anthropic import FakeAnthropic, Hang, Text, ToolUse, claude_env

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")

# Each agent runs this: it marks itself running in a shared folder, watches for the marks of
# other agents for up to HOLD seconds (stopping as soon as it sees one) and records the most
# it saw. Agents that are allowed to overlap see each other; the test asserts on the count.
GATE = """
import os, sys, time, uuid
folder, hold = sys.argv[1], float(sys.argv[2])
os.makedirs(folder, exist_ok=True)
me = os.path.join(folder, "run-" + uuid.uuid4().hex)
open(me, "w").close()
most, end = 0, time.monotonic() + hold
while time.monotonic() < end and most < 2:
    most = max(most, len([n for n in os.listdir(folder) if n.startswith("run-")]))
    time.sleep(0.1)
with open(os.path.join(folder, "most-" + uuid.uuid4().hex), "w") as out:
    out.write(str(most))
os.remove(me)
"""
HOLD = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def task_ids(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "claudomator.db") as conn:
        return {name: tid for tid, name in conn.execute("select id, name from tasks")}


def start_serve(env: dict[str, str], errors: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A real `claudomator serve` writing its console to ``errors``; back once it listens."""
    port = free_port()
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 60
    while b"serving on" not in errors.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start:\n{errors.read_text()}")
        time.sleep(0.2)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sse_client_goes_away(port: int) -> None:
    """Open /api/events, read the response head, then leave (close, and once with a reset)."""
    for reset in (False, True):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")


def assert_quiet(console: str) -> None:
    for bad in ("WARNING", "ERROR", "Traceback", "Exception"):
        assert bad not in console, console


def gated_pair(
    tmp_path: Path,
    project: Path,
    fake: FakeAnthropic,
    claude_bin: str,
    *,
    max_concurrent: int,
    write: bool,
) -> tuple[dict[str, str], Path, Path, Path]:
    """Two tasks "one" and "two" whose agents each run :data:`GATE` (and, with ``write``, then
    write ``<name>.txt``), a config running ``max_concurrent`` agents, and the CLI's env: (env,
    data dir, task file, the gate's marks folder)."""
    gate, marks = tmp_path / "gate.py", tmp_path / "marks"
    gate.write_text(GATE, encoding="utf-8")
    for name in ("one", "two"):
        wrote = [ToolUse("Write", {"file_path": f"{name}.txt", "content": f"{name}\n"})]
        fake.route(
            f"TASK-{name.upper()}",
            [
                ToolUse("Bash", {"command": f"python3 {gate} {marks} {HOLD}", "timeout": 120000}),
                *(wrote if write else []),
                Text(f"## Summary\nRan {name}."),
            ],
        )
    env = claude_env(fake.url, tmp_path / "agent-home")
    data_dir = Path(os.environ["CLAUDOMATOR_DATA_DIR"])
    env["CLAUDOMATOR_DATA_DIR"] = str(data_dir)
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = tmp_path / "config.toml"
    # unconfined: the agents count each other through the gate's marks folder, outside
    # their sandboxes (confinement hides it; it has its own tests, test_confined_*)
    config.write_text(
        f"max_concurrent = {max_concurrent}\nkill_grace_seconds = 2\n"
        f'[isolation]\nlauncher = "plain"\n[agents.claude]\nbinary_path = "{claude_bin}"\n'
    )
    env["CLAUDOMATOR_CONFIG"] = str(config)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        f"""
tasks:
  - name: one
    agent: {{instructions: "TASK-ONE", project_dir: {project}}}
  - name: two
    agent: {{instructions: "TASK-TWO", project_dir: {project}}}
"""
    )
    return env, data_dir, tasks, marks


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.mark.cli
def test_run_beside_serve_leaves_the_tasks_to_serve_which_logs_them(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, claude_bin: str
) -> None:
    env, data_dir, tasks, marks = gated_pair(
        tmp_path, make_repo(), fake, claude_bin, max_concurrent=1, write=True
    )
    console = tmp_path / "serve.err"
    serve, port = start_serve(env, console)
    try:
        run = subprocess.run(
            [CLAUDOMATOR, "run", "-j", "2", str(tasks)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert (
            f"serve (pid {serve.pid}) is running on this data dir: it runs these tasks "
            "(its concurrency: 1); -j does not apply"
        ) in " ".join(run.stderr.split())
        sse_client_goes_away(port)
    finally:
        stop(serve)
    assert serve.returncode == 0

    # serve runs one agent at a time (its max_concurrent), not serve's 1 + run's 2
    seen = [int(p.read_text()) for p in marks.glob("most-*")]
    assert seen == [1, 1], f"agents running at once, as each saw it: {seen}"

    text = console.read_text()
    ids = task_ids(data_dir)
    for name in ("one", "two"):
        started = rf"task {ids[name]} {name} started: agent claude \(.+\), execution \w+"
        assert re.search(started, text), text
        ended = rf"task {ids[name]} COMPLETED in \d+(m\d\ds)?s?, ~?\$\d+\.\d{{4}}, delivered: "
        assert re.search(ended, text), text
    assert_quiet(text)


def test_a_client_leaving_the_event_stream_is_not_a_warning(tmp_path: Path) -> None:
    env = dict(os.environ)
    console = tmp_path / "serve.err"
    serve, port = start_serve(env, console)
    try:
        for n in range(12):  # events the stream sends to clients already gone
            reply = httpx.post(
                f"http://127.0.0.1:{port}/api/tasks",
                json={"name": f"t{n}", "agent": {"instructions": "wait"}},
                timeout=30,
            )
            assert reply.status_code == 201, reply.text
        sse_client_goes_away(port)
        sse_client_goes_away(port)
    finally:
        stop(serve)
    assert serve.returncode == 0
    assert "serving on" in console.read_text()
    assert_quiet(console.read_text())


def test_serve_stops_while_a_client_still_follows_the_event_stream(tmp_path: Path) -> None:
    console = tmp_path / "serve.err"
    serve, port = start_serve(dict(os.environ), console)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            serve.send_signal(signal.SIGINT)
            # the stream ends (the chunked body's last chunk) and serve exits, the client still
            # connected; before, serve waited for the client to leave
            rest, deadline = b"", time.monotonic() + 60  # a bound on a hang, not a timing
            while time.monotonic() < deadline and (chunk := sock.recv(4096)):
                rest += chunk
            assert rest.endswith(b"0\r\n\r\n"), "serve kept the stream open after SIGINT"
            assert serve.wait(30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert_quiet(console.read_text())


def task_state(data_dir: Path, name: str) -> str:
    try:
        with sqlite3.connect(data_dir / "claudomator.db") as conn:
            row = conn.execute("select state from tasks where name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # being created
        return ""
    return str(row[0]) if row else ""


@pytest.mark.cli
def test_ctrl_c_of_run_beside_serve_cancels_the_task_serve_runs(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, claude_bin: str
) -> None:
    project = make_repo()
    fake.route("TASK-SLOW", [Hang(120), Text("## Summary\nToo late.")])
    env = claude_env(fake.url, tmp_path / "agent-home")
    data_dir = Path(os.environ["CLAUDOMATOR_DATA_DIR"])
    env["CLAUDOMATOR_DATA_DIR"] = str(data_dir)
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = tmp_path / "config.toml"
    config.write_text(f'kill_grace_seconds = 2\n[agents.claude]\nbinary_path = "{claude_bin}"\n')
    env["CLAUDOMATOR_CONFIG"] = str(config)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(f'name: slow\nagent: {{instructions: "TASK-SLOW", project_dir: {project}}}\n')
    serve, _ = start_serve(env, tmp_path / "serve.err")
    try:
        run = subprocess.Popen(
            [CLAUDOMATOR, "run", str(tasks)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        while task_state(data_dir, "slow") != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert task_state(data_dir, "slow") == "RUNNING"
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=90)
        assert run.returncode == 1, out + err
        assert "serve (pid" in err
        assert task_state(data_dir, "slow") == "CANCELLED", out + err
        assert serve.poll() is None  # serve goes on
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        stop(serve)


@pytest.mark.cli
def test_a_serve_started_beside_a_run_leaves_the_runs_tasks_to_it(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, claude_bin: str
) -> None:
    """`run -j 1` runs its two tasks one after the other; a serve started meanwhile (which may
    run two agents) takes neither, so -j holds."""
    env, data_dir, tasks, marks = gated_pair(
        tmp_path, make_repo(), fake, claude_bin, max_concurrent=2, write=False
    )
    run = subprocess.Popen(
        [CLAUDOMATOR, "run", "-j", "1", str(tasks)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    serve = None
    try:
        holding = data_dir / "orchestrators" / f"run-{run.pid}.json"
        deadline = time.monotonic() + 120
        while not (holding.exists() and marks.is_dir() and any(marks.glob("run-*"))):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the run's first agent did not start"
            time.sleep(0.1)
        serve, _ = start_serve(env, tmp_path / "serve.err")  # while agent one holds
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if serve is not None:
            stop(serve)

    seen = [int(p.read_text()) for p in marks.glob("most-*")]
    assert seen == [1, 1], f"agents running at once, as each saw it: {seen}"
    with sqlite3.connect(data_dir / "claudomator.db") as conn:
        workers = {w for (w,) in conn.execute("select worker_id from executions")}
    assert len(workers) == 1, workers  # one orchestrator ran both: the run
    assert next(iter(workers)).startswith(f"{socket.gethostname()}:{run.pid}:"), workers
    assert " started: agent" not in (tmp_path / "serve.err").read_text()
