"""kill -9 of the orchestrator while agents run; the next one accounts for every task."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import hanging_command, marked_pid, pid_alive

from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

pytestmark = pytest.mark.cli

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def task_row(env: dict[str, str], name: str) -> tuple[str, str]:
    db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("select id, state from tasks where name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # the writer is still creating the schema
        return "", ""
    return (str(row[0]), str(row[1])) if row else ("", "")


def wait_state(env: dict[str, str], name: str, state: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(env["CLAUDOMATOR_DATA_DIR"], "claudomator.db").exists():
            task_id, current = task_row(env, name)
            if current == state:
                return task_id
        time.sleep(0.2)
    raise AssertionError(f"{name} did not reach {state} (is {task_row(env, name)[1]})")


@pytest.mark.parametrize("launcher", ["plain", "bubblewrap"])
def test_kill_9_then_restart_requeues_kills_orphans_and_keeps_questions(
    launcher: str, tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, claude_bin: str
) -> None:
    """Unconfined, the agent's tree outlives its orchestrator's kill -9 and the next one kills
    it; confined (bwrap --die-with-parent), it dies with its orchestrator. Either way the next
    one re-queues the lost run and keeps the asked question."""
    project = make_repo()
    marker = f"hang-{launcher}-{tmp_path.name}"
    fake.route(
        "TASK-HANG",
        [
            ToolUse("Bash", {"command": hanging_command(marker), "timeout": 600000}),
            ToolUse("Bash", {"command": "echo second > second.txt"}),
            Text("## Summary\nRan again after the restart."),
        ],
    )
    question = json.dumps({"text": "Proceed?", "options": ["yes", "no"]})
    fake.route(
        "TASK-ASK",
        [
            ToolUse("Bash", {"command": f"echo '{question}' > \"$CLAUDOMATOR_QUESTION_FILE\""}),
            Text("Waiting for a human."),
            ToolUse("Write", {"file_path": "answer.txt", "content": "yes\n"}),
            Text("## Summary\nProceeded."),
        ],
    )
    env = claude_env(fake.url, tmp_path / "agent-home")
    env["CLAUDOMATOR_DATA_DIR"] = os.environ["CLAUDOMATOR_DATA_DIR"]
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{claude_bin}"\nkill_grace_seconds = 2\n'
        f'[isolation]\nlauncher = "{launcher}"\n'
    )
    env["CLAUDOMATOR_CONFIG"] = str(config)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        f"""
tasks:
  - name: hang
    agent: {{instructions: "TASK-HANG", project_dir: {project}}}
  - name: ask
    agent: {{instructions: "TASK-ASK", project_dir: {project}}}
"""
    )
    first = subprocess.Popen(
        [CLAUDOMATOR, "run", str(tasks)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server: subprocess.Popen[str] | None = None
    try:
        ask_id = wait_state(env, "ask", "BLOCKED")
        hang_id = wait_state(env, "hang", "RUNNING")
        child = marked_pid(marker)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(0.5)
        if launcher == "plain":
            assert pid_alive(child), "the agent's tree outlives a kill -9 of its orchestrator"
        else:
            deadline = time.monotonic() + 5
            while pid_alive(child) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not pid_alive(child), "a confined agent dies with its orchestrator"
        assert task_row(env, "hang")[1] == "RUNNING"

        port = free_port()
        server = subprocess.Popen(
            [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_state(env, "hang", "COMPLETED", timeout=90)
        assert not pid_alive(child), "the restarted orchestrator killed the orphaned agent"
        assert task_row(env, "ask")[1] == "BLOCKED"

        answered = subprocess.run(
            [CLAUDOMATOR, "answer", ask_id[:8], "yes"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert answered.returncode == 0, answered.stderr
        wait_state(env, "ask", "COMPLETED", timeout=90)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        assert server.returncode == 0
    finally:
        for proc in (first, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if server is not None:
            server.communicate()

    shown = subprocess.run(
        [CLAUDOMATOR, "show", "--json", hang_id], env=env, capture_output=True, text=True
    )
    payload = json.loads(shown.stdout)
    reasons = [e["reason"] for e in payload["events"]]
    assert "orchestrator restarted" in reasons
    first_run, second_run = payload["executions"]
    assert first_run["status"] == "QUEUED"  # ended by a re-queue
    assert "orchestrator restarted" in first_run["error_msg"]
    assert second_run["status"] == "COMPLETED"
    # the lost run's agent had started: what it spent was never reported, so the task's total
    # is only a lower bound
    assert (first_run["cost_known"], second_run["cost_known"]) == (False, True)
    assert payload["task"]["cost_known"] is False
    assert payload["task"]["cost_usd_total"] == second_run["cost_usd"] > 0
    ask = json.loads(
        subprocess.run(
            [CLAUDOMATOR, "show", "--json", ask_id], env=env, capture_output=True, text=True
        ).stdout
    )
    runs = ask["executions"]
    assert [r["status"] for r in runs] == ["BLOCKED", "COMPLETED"]
    assert runs[0]["sandbox_dir"] == runs[1]["sandbox_dir"]
    assert runs[0]["session_id"] == runs[1]["session_id"]
    assert git(project, "show", f"{kept_branch(project, ask_id)}:answer.txt") == "yes"
    assert git(project, "show", f"{kept_branch(project, hang_id)}:second.txt") == "second"
