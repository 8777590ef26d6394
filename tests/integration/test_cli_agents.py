"""Agent readiness as a newcomer meets it: no agent CLI installed (issue 11 items 2 and 25).

Real ``claudomator`` processes; the CLIs are configured at paths that do not exist.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import Store

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def missing_clis(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{tmp_path / "no-claude"}"\n'
        f'gemini_binary_path = "{tmp_path / "no-gemini"}"\n'
        f'[agents.codex]\nbinary_path = "{tmp_path / "no-codex"}"\n'
        f'[agents.qwen]\nbinary_path = "{tmp_path / "no-qwen"}"\n'
        f'[agents.opencode]\nbinary_path = "{tmp_path / "no-opencode"}"\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["CLAUDOMATOR_CONFIG"] = str(config)
    env["COLUMNS"] = "200"
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAUDOMATOR, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def queue(name: str, agent: str = "") -> Task:
    store = Store.open(load_settings().db_path)
    try:
        pin = {"type": agent} if agent else {}
        [task] = store.add_tasks([Task(name=name, agent=AgentConfig(instructions="hi", **pin))])
        assert task.state == TaskState.QUEUED
        return task
    finally:
        store.close()


def test_agents_says_no_agent_can_run_and_why(tmp_path: Path) -> None:
    done = cli(missing_clis(tmp_path), "agents")
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    for agent in ("claude", "gemini", "codex", "qwen", "opencode", "local"):
        assert agent in rows, done.stdout
        assert rows[agent].split("│")[2].strip() == "cannot run"
    assert "claude CLI not found" in done.stdout
    assert "gemini CLI not found" in done.stdout
    assert "codex CLI not found" in done.stdout
    assert "qwen CLI not found" in done.stdout
    assert "[local_model] endpoint and model not set" in done.stdout
    assert "available" not in done.stdout


def test_list_and_show_say_why_a_queued_task_waits(tmp_path: Path) -> None:
    env = missing_clis(tmp_path)
    free = queue("free-task")
    pinned = queue("pinned-task", "gemini")
    listed = cli(env, "list")
    assert listed.returncode == 0, listed.stderr
    text = " ".join(listed.stdout.split())  # rich wraps long lines
    assert "Waiting for an agent" in text
    assert (
        "no agent can run here (claude: CLI not found; gemini: CLI not found; "
        "codex: CLI not found; qwen: CLI not found; opencode: CLI not found; local: not"
    ) in text
    assert f"{free.id[:8]} free-task" in text
    assert "gemini cannot run here: CLI not found" in text
    assert f"{pinned.id[:8]} pinned-task" in text
    shown = cli(env, "show", pinned.id)
    assert shown.returncode == 0, shown.stderr
    assert "Waiting: gemini cannot run here: CLI not found" in " ".join(shown.stdout.split())


def test_serve_says_which_agents_it_can_run_and_how_to_start(tmp_path: Path) -> None:
    env = missing_clis(tmp_path)
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    try:
        assert server.stderr is not None
        # raw reads of the pipe: a text readline() after select() would leave lines that came
        # in one chunk in Python's buffer, where select() no longer sees them
        fd = server.stderr.fileno()
        deadline = time.monotonic() + 120  # a loaded machine starts serve slowly
        while "No tasks yet" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen += chunk.decode("utf-8", "replace")
        # port 0 asks for any free port: the line names the one it got, and it answers there
        bound = re.search(r"serving on http://127\.0\.0\.1:(\d+) ", seen)
        assert bound is not None, seen
        assert int(bound.group(1)) != 0
        health = httpx.get(f"http://127.0.0.1:{bound.group(1)}/api/health", timeout=30)
        assert health.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        if server.stderr is not None:
            server.stderr.close()
    lines = seen.splitlines()
    assert any(line.startswith("  claude: cannot run: claude CLI not found") for line in lines), (
        seen
    )
    assert any(line.startswith("  gemini: cannot run: gemini CLI not found") for line in lines)
    assert any(line.startswith("  local: cannot run: [local_model]") for line in lines)
    assert "No agent can run here yet" in seen
    assert "claudomator run FILE" in seen
    assert "/new" in seen


def test_run_says_why_its_task_waits(tmp_path: Path) -> None:
    env = missing_clis(tmp_path)
    tasks = tmp_path / "t.yaml"
    tasks.write_text("name: waits\nagent: {type: claude, instructions: hi}\n", encoding="utf-8")
    with subprocess.Popen(
        [CLAUDOMATOR, "run", str(tasks)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as run:
        try:
            assert run.stdout is not None
            fd = run.stdout.fileno()  # raw reads after select (see the serve test above)
            deadline = time.monotonic() + 120
            seen = ""
            while time.monotonic() < deadline and "waiting:" not in seen:
                ready, _, _ = select.select([fd], [], [], 1)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    seen += chunk.decode("utf-8", "replace")
            line = next((x for x in seen.splitlines() if "waiting:" in x), seen)
            assert "waiting:" in line, line
            assert "claude" in line
            assert "CLI not found" in line
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(30)
