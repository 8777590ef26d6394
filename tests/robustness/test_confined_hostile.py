"""A hostile agent run through the ``bubblewrap`` launcher reaches nothing outside its sandbox
(issue 13): every attempt that succeeds under ``plain`` (the control run) fails confined.

The agent is a fake Claude CLI (a Python script speaking Claude Code's stream-json) started by
the real :class:`~claudomator.agents.claude.ClaudeRunner` through the real
:class:`~claudomator.process.AgentProcess`. It tries each attack, writes what it saw into
``report.json`` in its sandbox (what it read, or how it failed), and leaves a daemon behind
(its own session, its environment cleared so the execution mark cannot find it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.claude import ClaudeRunner
from claudomator.config import Settings
from claudomator.isolation import build_launcher
from claudomator.isolation.bubblewrap import unavailable
from claudomator.models import AgentConfig, Task, TaskState

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bwrap not installed (make test installs bubblewrap)"
)

AGENT = r"""#!/usr/bin/python3
import json, os, signal, subprocess, sys
plan = json.loads(sys.argv[-1])
report = {"env": sorted(os.environ)}
def attempt(name, action):
    try:
        report[name] = action()
    except Exception as exc:
        report[name] = "failed: " + type(exc).__name__
def write(path):
    with open(path, "a") as handle:
        handle.write("pwned\n")
    return "written"
attempt("ssh", lambda: open(plan["ssh"]).read())
attempt("project", lambda: write(plan["project"]))
attempt("database", lambda: open(plan["database"], "rb").read().decode("latin-1"))
attempt("database_write", lambda: write(plan["database"]))
attempt("data_dir", lambda: write(plan["data_dir"]))
attempt("environ", lambda: open("/proc/%d/environ" % plan["orchestrator"], "rb").read().decode())
attempt("kill", lambda: os.kill(plan["victim"], signal.SIGKILL) or "killed")
subprocess.Popen(
    ["/usr/bin/python3", "-c", "import time; time.sleep(120)", plan["daemon"]],
    env={}, start_new_session=True, stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
with open("report.json", "w") as handle:
    json.dump(report, handle)
session = sys.argv[sys.argv.index("--session-id") + 1]
def emit(event):
    event["session_id"] = session
    print(json.dumps(event), flush=True)
emit({"type": "system", "subtype": "init", "model": "fake-model"})
text = "## Summary\nDid it."
emit({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}})
emit({"type": "result", "subtype": "success", "is_error": False, "result": text,
      "total_cost_usd": 0.001, "usage": {"input_tokens": 3, "output_tokens": 5}})
"""

SECRET = "ssh-private-key-do-not-leak"


@dataclass
class World:
    """The user's machine as the agent finds it: a home with ``.ssh``, a project checkout, the
    data dir with its database, a process of someone else's."""

    home: Path
    project: Path
    settings: Settings
    victim: subprocess.Popen[bytes]
    daemon: str  # the marker in the daemon's command line

    @property
    def database(self) -> Path:
        return self.settings.data_dir / "claudomator.db"


def _daemons(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    home = tmp_path / "user"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(SECRET, encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("mine\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    (settings.data_dir / "claudomator.db").write_bytes(b"SQLite format 3\x00")
    victim = subprocess.Popen(["sleep", "120"], start_new_session=True)
    marker = f"daemon-{uuid.uuid4().hex}"
    try:
        yield World(home, project, settings, victim, marker)
    finally:
        victim.kill()
        victim.wait()
        for pid in _daemons(marker):
            os.kill(pid, signal.SIGKILL)


def _run(world: World, launcher_name: str, tmp_path: Path) -> tuple[TaskState, dict[str, object]]:
    binary = tmp_path / "bin" / "fake-claude"
    binary.parent.mkdir()
    binary.write_text(AGENT, encoding="utf-8")
    binary.chmod(0o755)
    settings = world.settings
    sandbox = settings.sandboxes_dir / "exec-hostile"
    sandbox.mkdir(parents=True)
    log_dir = settings.logs_dir / "task-hostile" / "exec-hostile"
    plan = {
        "ssh": str(world.home / ".ssh" / "id_ed25519"),
        "project": str(world.project / "README.md"),
        "database": str(world.database),
        "data_dir": str(settings.data_dir / "planted"),
        "orchestrator": os.getpid(),
        "victim": world.victim.pid,
        "daemon": world.daemon,
    }
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(world.home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": "claude-key",
        "GEMINI_API_KEY": "another-agents-key",
        "SSH_AUTH_SOCK": str(world.home / "agent.sock"),
        "CLAUDOMATOR_CONFIG": str(world.home / "config.toml"),
        "CLAUDOMATOR_TASK_ID": "task-hostile",
        "CLAUDOMATOR_PROJECT_DIR": str(world.project),
    }
    runner = ClaudeRunner(str(binary), build_launcher(launcher_name, settings))
    ctx = RunContext(
        task=Task(
            id="task-hostile", name="hostile", agent=AgentConfig(instructions=json.dumps(plan))
        ),
        execution_id="exec-hostile",
        workdir=sandbox,
        log_dir=log_dir,
        env=env,
        session_id=str(uuid.uuid4()),
        timeout=60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
    )
    outcome = asyncio.run(runner.run(ctx))
    report = json.loads((sandbox / "report.json").read_text(encoding="utf-8"))
    return outcome.status, report


def _names(report: dict[str, object]) -> set[str]:
    """The names of the variables the agent saw."""
    names = report["env"]
    assert isinstance(names, list)
    return {str(n) for n in names}


def _daemon_alive(world: World) -> bool:
    deadline = time.monotonic() + 2
    while _daemons(world.daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(_daemons(world.daemon))


def test_bwrap_can_confine_here(world: World) -> None:
    assert unavailable(world.settings) == ""


def test_a_confined_agent_reaches_nothing_outside_its_sandbox(world: World, tmp_path: Path) -> None:
    status, report = _run(world, "bubblewrap", tmp_path)

    assert status == TaskState.COMPLETED
    assert all(str(report[k]).startswith("failed: ") for k in ("ssh", "project", "database"))
    # the paths of the data dir above the sandbox exist only as the namespace's own mount
    # points (a private tmpfs here): a write there lands nowhere on the host
    assert str(report["environ"]).startswith("failed: ")
    assert str(report["kill"]).startswith("failed: ")
    assert (world.project / "README.md").read_text(encoding="utf-8") == "mine\n"
    assert world.database.read_bytes() == b"SQLite format 3\x00"
    assert not (world.settings.data_dir / "planted").exists()
    assert world.victim.poll() is None  # still running
    assert not _daemon_alive(world)  # the pid namespace died with the agent
    env = _names(report)
    assert {"ANTHROPIC_API_KEY", "CLAUDOMATOR_TASK_ID", "PATH", "HOME"} <= env
    assert not env & {"SSH_AUTH_SOCK", "GEMINI_API_KEY", "CLAUDOMATOR_CONFIG"}


def test_the_same_agent_unconfined_reaches_all_of_it(world: World, tmp_path: Path) -> None:
    """The control run: under ``plain`` every attack above succeeds (so the test can fail)."""
    status, report = _run(world, "plain", tmp_path)

    assert status == TaskState.COMPLETED
    assert report["ssh"] == SECRET
    assert report["database"] == "SQLite format 3\x00"
    assert report["project"] == report["database_write"] == report["data_dir"] == "written"
    assert "PATH=" in str(report["environ"])
    assert report["kill"] == "killed"
    assert world.victim.wait(5) == -signal.SIGKILL
    assert _daemon_alive(world)
    assert {"SSH_AUTH_SOCK", "GEMINI_API_KEY", "CLAUDOMATOR_CONFIG"} <= _names(report)


HANGING = r"""#!/usr/bin/python3
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(120)", sys.argv[-1]],
                 start_new_session=True, env={})
time.sleep(120)
"""


def test_a_timeout_kills_the_whole_confined_tree(world: World, tmp_path: Path) -> None:
    """``--new-session`` and the pid namespace keep our process-group kill exact: an agent that
    ignores SIGTERM and a child in a session of its own both end at the timeout."""
    binary = tmp_path / "bin" / "hanging-claude"
    binary.parent.mkdir()
    binary.write_text(HANGING, encoding="utf-8")
    binary.chmod(0o755)
    settings = world.settings
    sandbox = settings.sandboxes_dir / "exec-hang"
    sandbox.mkdir(parents=True)
    runner = ClaudeRunner(str(binary), build_launcher("bubblewrap", settings))
    ctx = RunContext(
        task=Task(id="task-hang", name="hang", agent=AgentConfig(instructions=world.daemon)),
        execution_id="exec-hang",
        workdir=sandbox,
        log_dir=settings.logs_dir / "task-hang" / "exec-hang",
        env={"PATH": os.environ["PATH"], "HOME": str(world.home)},
        session_id=str(uuid.uuid4()),
        timeout=2.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
    )
    started = time.monotonic()
    outcome = asyncio.run(runner.run(ctx))

    assert outcome.status == TaskState.TIMED_OUT
    assert time.monotonic() - started < 20
    assert not _daemon_alive(world)
