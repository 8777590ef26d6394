"""Shared pieces of the robustness suites: sizes, a scriptable fake agent, real processes.

Sizes: ``CLAUDOMATOR_ROBUST_SCALE=full`` (set by ``make test-all``) runs the heavy sizes of the
issue (500 MB of output, more clients, more fuzzing); anything else runs the CI sizes, which
exercise the same paths in a few seconds each.

The fake agent is a real executable written into the test's tmp dir and configured as
``claude_binary_path``: it speaks Claude Code's stream-json and does what the task's
instructions say between ``ROBUST[`` and ``]`` (see ``AGENT``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.process import MARK_VARIABLE
from claudomator.service import Service
from claudomator.store import Store

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")
FULL = os.environ.get("CLAUDOMATOR_ROBUST_SCALE", "") == "full"
# The fake agents here report to their tests through state dirs outside their sandboxes, which
# confinement (rightly) hides: these tests run them unconfined (the default is "auto");
# confinement has its own tests (test_confined_*, test_bubblewrap)
UNCONFINED = IsolationSettings(launcher="plain")
UNCONFINED_TOML = '[isolation]\nlauncher = "plain"\n'


def size(ci: int, full: int) -> int:
    """The CI size, or the issue's size under ``make test-all``."""
    return full if FULL else ci


AGENT = r'''#!{python}
"""A fake Claude Code CLI for the robustness suites: behaviour from ROBUST[...] in the prompt."""
import json, os, re, signal, subprocess, sys, time

argv = sys.argv[1:]
prompt = argv[-1]
session = ""
for flag in ("--session-id", "--resume"):
    if flag in argv:
        session = argv[argv.index(flag) + 1]
resumed = "--resume" in argv
state = os.environ["ROBUST_STATE_DIR"]
task = os.environ["CLAUDOMATOR_TASK_ID"]
found = re.search(r"ROBUST\[([^\]]*)\]", prompt)
mode, *args = (found.group(1) if found else "ok").split(":")


def emit(event):
    event["session_id"] = session
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def finish(text="## Summary\nDid it."):
    emit({{"type": "assistant", "message": {{"content": [{{"type": "text", "text": text}}]}}}})
    emit({{"type": "result", "subtype": "success", "is_error": False, "result": text,
          "total_cost_usd": 0.001, "usage": {{"input_tokens": 3, "output_tokens": 5}}}})
    sys.exit(0)


def note(name, value):
    path = os.path.join(state, f"{{task}}.{{name}}")
    with open(path + ".tmp", "w") as fh:
        fh.write(str(value))
    os.replace(path + ".tmp", path)


SLEEPER = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"

emit({{"type": "system", "subtype": "init", "model": "fake-model"}})
if mode == "ok" or resumed:
    finish()
elif mode == "hang-once":  # hang (with a grandchild) the first time, finish the next
    marker = os.path.join(state, f"{{task}}.ran")
    if os.path.exists(marker):
        finish("## Summary\nSecond run.")
    open(marker, "w").close()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    note("pids", f"{{os.getpid()}} {{child.pid}}")
    time.sleep(600)
elif mode == "flood":  # write args[0] bytes to stdout in args[1] shape, then finish
    total, shape = int(args[0]), args[1]
    out = sys.stdout.buffer
    if shape == "text":
        chunk = "x" * 65000
        line = (json.dumps({{"type": "assistant", "session_id": session,
                            "message": {{"content": [{{"type": "text", "text": chunk}}]}}}})
                + "\n").encode()
    elif shape == "garbage":
        line = b"not json " * 7000 + b"\n"
    else:  # "oneline": no newline at all until the end
        line = b"y" * 65536
    written = 0
    while written < total:
        out.write(line)
        written += len(line)
    if shape == "oneline":
        out.write(b"\n")
    out.flush()
    finish("## Summary\nFlooded.")
elif mode == "stubborn":  # ignore SIGTERM; children in the group, a detached one, a daemon
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kids = [subprocess.Popen([sys.executable, "-c", SLEEPER]) for _ in range(2)]
    detached = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
    pid = os.fork()
    if pid == 0:  # double fork: a daemon re-parented away from us, in its own session
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            note("daemon", os.getpid())
            time.sleep(600)
        os._exit(0)
    os.waitpid(pid, 0)
    while not os.path.exists(os.path.join(state, f"{{task}}.daemon")):
        time.sleep(0.01)
    note("pids", " ".join(str(p) for p in [os.getpid(), *(k.pid for k in kids), detached.pid]))
    while True:
        time.sleep(1)
elif mode == "ask":
    with open(os.environ["CLAUDOMATOR_QUESTION_FILE"], "w") as fh:
        json.dump({{"text": "Proceed?", "options": ["yes", "no"]}}, fh)
    finish("Waiting for a human.")
else:
    print(f"unknown mode {{mode}}", file=sys.stderr)
    sys.exit(3)
'''


def write_agent(directory: Path) -> Path:
    """The fake agent executable in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fake-claude"
    path.write_text(AGENT.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def pids_of(state: Path, task_id: str, name: str = "pids") -> list[int]:
    path = state / f"{task_id}.{name}"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def marked_alive(marks: set[str]) -> list[int]:
    """Live processes carrying one of the execution marks ``marks`` in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        prefix = MARK_VARIABLE.encode() + b"="
        values = {item[len(prefix) :].decode() for item in environ if item.startswith(prefix)}
        if values & marks and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


def reap(pids: list[int]) -> None:
    """SIGKILL whatever of ``pids`` a failed test left alive."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def db_rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of ``sql`` from the database file (empty while it does not exist yet)."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return list(conn.execute(sql, params).fetchall())
    except sqlite3.OperationalError:  # being created by another process
        return []


def cli_env(tmp_path: Path, config: str = "") -> dict[str, str]:
    """The environment for a ``claudomator`` subprocess of this test (config file included)."""
    env = dict(os.environ)
    state = tmp_path / "agent-state"
    state.mkdir(exist_ok=True)
    env["ROBUST_STATE_DIR"] = str(state)
    agent = write_agent(tmp_path / "bin")
    path = tmp_path / "config.toml"
    # the agent's table last: keys after a table header would belong to it. The fake agent
    # reports to the test through ROBUST_STATE_DIR, outside its sandbox, which confinement
    # (rightly) hides: these tests run it unconfined; confinement has its own tests
    # (test_confined_*)
    isolation = "" if "[isolation]" in config else UNCONFINED_TOML
    path.write_text(
        f'kill_grace_seconds = 1\n{config}\n{isolation}[agents.claude]\nbinary_path = "{agent}"\n'
    )
    env["CLAUDOMATOR_CONFIG"] = str(path)
    return env


class RssSampler:
    """Samples a process's resident set size (VmRSS) in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self._stop.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append(int(line.split()[1]) * 1024)
            except OSError:
                return
            self._stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size_kb: int, *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at ``where`` (root with CAP_SYS_ADMIN only; skips, saying why, otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,mode=0755" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def remount(where: Path, *, read_only: bool) -> None:
    option = "remount,ro" if read_only else "remount,rw"
    subprocess.run(["mount", "-o", option, str(where)], check=True, capture_output=True)


class Served:
    """The API app over a real store, served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.service = Service(settings, store)
        self.port = free_port()
        config = uvicorn.Config(
            create_app(self.service, settings), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, "the server started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
