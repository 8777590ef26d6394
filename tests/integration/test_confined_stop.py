"""Stopping an agent confined by the real ``bubblewrap`` launcher (issue 13): the SIGTERM reaches
the processes inside its pid namespace, so the agent gets its grace period (bwrap itself would
die of it and SIGKILL everything inside), and afterwards nothing of the namespace is left.

The agents are small scripts under ``tmp_path``, bound read-only as their install directory;
each writes its markers into its sandbox (the working directory, bound read-write).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task, pid_alive, process_tree, wait_for

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.bubblewrap import BubblewrapLauncher
from claudomator.models import TaskState
from claudomator.process import AgentProcess, Exit
from claudomator.store import Store
from conftest import MakeRepo

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

GRACEFUL = """#!/bin/sh
trap 'echo flushed > term.txt; exit 0' TERM
echo $$ > ready.txt
while :; do sleep 0.05; done
"""

STUBBORN = """#!/bin/sh
trap 'echo seen >> term.txt' TERM
echo $$ > ready.txt
while :; do sleep 0.05; done
"""

DAEMON = """#!/usr/bin/python3
# A grandchild that leaves the session and double-forks (a detached shell command), noting the
# SIGTERM it gets and then ignoring it; the agent itself ignores its SIGTERM too.
import os, signal, sys, time

def note(name):
    def handler(signum, frame):
        with open(name, "a") as fh:
            fh.write("seen\\n")
    return handler

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, note("grandchild-term.txt"))
            with open("grandchild.txt", "w") as fh:
                fh.write(str(os.getpid()))
            while True:
                time.sleep(0.05)
        os._exit(0)
    os._exit(0)
os.wait()
signal.signal(signal.SIGTERM, note("term.txt"))
with open("ready.txt", "w") as fh:
    fh.write(str(os.getpid()))
while True:
    time.sleep(0.05)
"""


PROXY = """
import signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
def forward(signum, frame):
    open(sys.argv[1], "a").write("seen\\n")
    child.send_signal(signum)
signal.signal(signal.SIGTERM, forward)
sys.exit(child.wait())
"""


class Proxied:
    """A wrapper of ours around the launcher's command, outside the namespace (as the network
    policy's outer proxy is): it forwards a SIGTERM to bwrap, noting it in ``noted``."""

    name = "proxied-bubblewrap"

    def __init__(self, inner: Launcher, script: Path, noted: Path) -> None:
        self.inner = inner
        self.script = script
        self.noted = noted

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        wrapped, clean = self.inner.wrap(argv, cwd, env, paths)
        return [sys.executable, str(self.script), str(self.noted), *wrapped], clean


async def until_file(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text(encoding="utf-8").strip()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was never written")
        await asyncio.sleep(0.02)


class Confined:
    """One fake agent under the bubblewrap launcher, its sandbox and its process tree."""

    def __init__(
        self, tmp_path: Path, script: str, kill_grace: float, *, proxied: bool = False
    ) -> None:
        install = tmp_path / "agent-install"
        install.mkdir()
        binary = install / "agent"
        binary.write_text(script, encoding="utf-8")
        binary.chmod(0o755)
        self.sandbox = tmp_path / "sandboxes" / "s1"
        self.sandbox.mkdir(parents=True)
        logs = tmp_path / "logs"
        launcher: Launcher = BubblewrapLauncher(
            shutil.which("bwrap") or "bwrap", tmp_path / "homes", tmp_path / "sandboxes"
        )
        self.proxy_noted = tmp_path / "proxy-term.txt"
        if proxied:
            proxy = tmp_path / "proxy.py"
            proxy.write_text(PROXY, encoding="utf-8")
            launcher = Proxied(launcher, proxy, self.proxy_noted)
        self.proc = AgentProcess(
            [str(binary)],
            cwd=self.sandbox,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout_path=logs / "stdout.log",
            stderr_path=logs / "stderr.log",
            on_line=lambda _line: None,
            launcher=launcher,
            access=Access(workdir=self.sandbox, log_dir=logs),
            kill_grace=kill_grace,
        )

    async def stop_when(self, *ready: str) -> tuple[Exit, set[int]]:
        """Start the agent, wait for its ``ready`` files, stop it; its exit and the processes
        its tree had just before the stop."""
        await self.proc.start()
        for name in ready:
            await until_file(self.sandbox / name)
        assert self.proc.pid is not None
        before = process_tree(self.proc.pid)
        stop = asyncio.Event()
        stop.set()
        return await self.proc.wait(timeout=60, stop=stop), before


async def test_a_confined_agent_gets_its_sigterm_and_its_grace(tmp_path: Path) -> None:
    agent = Confined(tmp_path, GRACEFUL, kill_grace=30)
    ended, before = await agent.stop_when("ready.txt")

    assert ended.stopped
    assert (agent.sandbox / "term.txt").read_text(encoding="utf-8") == "flushed\n"
    assert len(before) >= 3  # bwrap, its init, the agent (and its sleep)
    assert not [pid for pid in before if pid_alive(pid)]


async def test_behind_an_outer_wrapper_of_ours_the_agent_gets_its_sigterm_and_the_wrapper_not(
    tmp_path: Path,
) -> None:
    agent = Confined(tmp_path, GRACEFUL, kill_grace=30, proxied=True)
    ended, before = await agent.stop_when("ready.txt")

    assert ended.stopped
    assert (agent.sandbox / "term.txt").read_text(encoding="utf-8") == "flushed\n"
    assert not agent.proxy_noted.exists()  # its SIGTERM would have killed bwrap
    assert len(before) >= 4  # the wrapper, bwrap, its init, the agent
    assert not [pid for pid in before if pid_alive(pid)]


async def test_a_confined_agent_ignoring_sigterm_is_killed_after_the_grace(
    tmp_path: Path,
) -> None:
    agent = Confined(tmp_path, STUBBORN, kill_grace=1)
    ended, before = await agent.stop_when("ready.txt")

    assert ended.stopped
    assert (agent.sandbox / "term.txt").read_text(encoding="utf-8").startswith("seen\n")
    assert not [pid for pid in before if pid_alive(pid)]


async def test_a_detached_double_forked_grandchild_gets_the_sigterm_and_is_gone(
    tmp_path: Path,
) -> None:
    agent = Confined(tmp_path, DAEMON, kill_grace=1)
    ended, before = await agent.stop_when("ready.txt", "grandchild.txt")

    assert ended.stopped
    assert (agent.sandbox / "term.txt").read_text(encoding="utf-8").startswith("seen\n")
    assert (agent.sandbox / "grandchild-term.txt").read_text(encoding="utf-8").startswith("seen")
    assert len(before) >= 4  # bwrap, its init, the agent, the grandchild
    assert not [pid for pid in before if pid_alive(pid)]


async def test_cancelling_a_confined_task_gives_its_agent_the_sigterm_and_its_grace(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """End to end: the pool runs the fake agent as its confined ``claude``; a cancel ends the
    task CANCELLED, the agent wrote its marker into the kept sandbox, and nothing is left."""
    install = tmp_path / "agent-install"
    install.mkdir()
    binary = install / "claude"
    binary.write_text(GRACEFUL, encoding="utf-8")
    binary.chmod(0o755)
    confined = settings.model_copy(
        update={
            "claude_binary_path": str(binary),
            "kill_grace_seconds": 30,
            "isolation": IsolationSettings(launcher="bubblewrap"),
        }
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    async with PoolHarness(confined, store, env) as h:
        [task] = h.submit(make_task(make_repo()))

        def ready() -> bool:  # the agent has set its trap
            runs = store.executions_of(task.id)
            return bool(runs) and Path(runs[0].sandbox_dir, "ready.txt").is_file()

        await wait_for(ready, 30)
        pid = store.executions_of(task.id)[0].pid
        assert pid is not None
        before = process_tree(pid)
        h.service.cancel(task.id[:8])
        [done] = await h.settle([task], timeout=60)

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.CANCELLED
    assert Path(run.sandbox_dir, "term.txt").read_text(encoding="utf-8") == "flushed\n"
    assert len(before) >= 3
    assert not [p for p in before if pid_alive(p)]
