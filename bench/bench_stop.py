"""Stop latency of a confined agent: how long from a stop being asked for (the ``stop`` event a
cancel sets) to :meth:`AgentProcess.wait` returning, under the ``plain`` launcher and under
bubblewrap, for an agent that ignores SIGTERM (so it lasts the whole ``kill_grace``) and one that
exits on it (whose stop is only the SIGTERM's way in).

The agents are POSIX shell scripts that trap SIGTERM (ignoring it, or writing a marker into the
sandbox and exiting) and then loop on ``sleep 0.05``. Every stop is timed from just before the
event is set; the launchers take turns ``BENCH_STOP_RUNS`` times each (10; smoke: 2); the
largest figure of each case is reported. The graceful agent must write its marker every time
under both launchers (under bubblewrap that is the point: its SIGTERM goes inside its pid
namespace, not to bwrap).

Target: the stubborn agent's stop ends within 2 s of being asked for (``kill_grace`` 0.5 s).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from benchlib import Figure, Result, env_int, isolated, log, scratch, write_executable
from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.bubblewrap import BubblewrapLauncher
from claudomator.isolation.plain import PlainLauncher
from claudomator.process import AgentProcess

NAME = "stop"
TITLE = "Stop of a confined agent"
GRACE = 0.5
LIMIT_S = 2.0
STUBBORN = "#!/bin/sh\ntrap '' TERM\n: > ready.txt\nwhile :; do sleep 0.05; done\n"
GRACEFUL = (
    "#!/bin/sh\ntrap 'echo flushed > term.txt; exit 0' TERM\n: > ready.txt\n"
    "while :; do sleep 0.05; done\n"
)


async def _stop(launcher: Launcher, agent: Path, root: Path, n: int) -> tuple[float, bool]:
    """Seconds from asking ``agent``'s stop to its wait returning; whether it wrote its marker."""
    work = root / "sandboxes" / str(n)
    logs = root / "logs" / str(n)
    work.mkdir(parents=True)
    process = AgentProcess(
        [str(agent)],
        cwd=work,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdout_path=logs / "stdout.log",
        stderr_path=logs / "stderr.log",
        on_line=lambda _line: None,
        launcher=launcher,
        access=Access(workdir=work, log_dir=logs),
        kill_grace=GRACE,
        mark=f"bench-stop-{n}",
    )
    await process.start()
    deadline = time.monotonic() + 30
    while not (work / "ready.txt").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{launcher.name}: the agent never got ready")
        await asyncio.sleep(0.01)
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(process.wait(60, stop))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    stop.set()
    await waiting
    return time.perf_counter() - started, (work / "term.txt").exists()


async def _measure(runs: int, root: Path, bwrap: str) -> dict[str, list[tuple[float, bool]]]:
    stubborn = write_executable(root / "agent" / "stubborn", STUBBORN)
    graceful = write_executable(root / "agent" / "graceful", GRACEFUL)
    launchers: dict[str, Launcher] = {
        "plain": PlainLauncher(),
        "bubblewrap": BubblewrapLauncher(bwrap, root / "homes", root / "sandboxes"),
    }
    found: dict[str, list[tuple[float, bool]]] = {}
    n = 0
    for _ in range(runs):
        for name, launcher in launchers.items():
            for kind, agent in (("stubborn", stubborn), ("graceful", graceful)):
                found.setdefault(f"{name} {kind}", []).append(await _stop(launcher, agent, root, n))
                n += 1
    return found


def run(size: str) -> Result:
    runs = env_int("BENCH_STOP_RUNS", 10, 2, size)
    target = f"stubborn agent's stop within {LIMIT_S:g} s (kill_grace {GRACE:g} s)"
    binary = shutil.which("bwrap")
    if binary is None:
        log("  bwrap is not on PATH: nothing to measure")
        return Result(
            name=NAME,
            title=TITLE,
            figures=[],
            ratio=None,
            target=target,
            passed=False,
            headline="bwrap not installed",
            notes=["bwrap is not on PATH (apt-get install bubblewrap)"],
            params={"runs": runs},
        )
    with scratch("stop") as root, isolated(root):
        found = asyncio.run(_measure(runs, root, binary))
    figures = [
        Figure(f"{case}: slowest stop", max(t for t, _ in got), "s") for case, got in found.items()
    ]
    worst = max(t for t, _ in found["bubblewrap stubborn"] + found["plain stubborn"])
    marked = all(m for case in ("plain graceful", "bubblewrap graceful") for _, m in found[case])
    always = "always" if marked else "MISSING"
    log(f"  slowest stubborn stop {worst:.3f} s; graceful agents all got their SIGTERM: {marked}")
    return Result(
        name=NAME,
        title=TITLE,
        figures=figures,
        ratio=None,
        target=target,
        passed=worst < LIMIT_S and marked,
        headline=f"slowest stubborn stop {worst:.2f} s; graceful marker {always}",
        notes=["bubblewrap side: claudomator.isolation.bubblewrap's launcher"],
        params={"runs": runs, "kill_grace": GRACE},
    )
