"""Start-up of the command line: how long `claudomator --version`, `list`, `show` and `answer`
take as whole processes, next to a bare Python interpreter started the same way.

Each command runs ``BENCH_STARTUP_RUNS`` times (15) against a data dir holding 50 tasks; the
medians are reported. ``answer`` is given a QUEUED task, so it starts, opens the store, looks the
task up and is refused (exit 1) without changing anything: that is its start-up plus the lookup.
The baseline is ``python -c pass`` with the same interpreter, measured in the same run.

Target: every command's median under 0.5 s (issue 11); the ratio to the bare interpreter is
reported beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import Figure, Result, env_int, isolated, log, median, scratch
from claudomator.config import load_settings
from claudomator.models import AgentConfig, Task
from claudomator.store import Store

NAME = "startup"
TITLE = "CLI start-up"
LIMIT_S = 0.5
CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def _time(argv: list[str], runs: int, env: dict[str, str]) -> float:
    """The median wall time of ``argv`` as a whole process (output discarded)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return median(times)


def run(size: str) -> Result:
    runs = env_int("BENCH_STARTUP_RUNS", 15, 3, size)
    with scratch("startup") as root, isolated(root):
        store = Store.open(load_settings().db_path)
        try:
            tasks = store.add_tasks(
                [Task(name=f"task {i}", agent=AgentConfig(instructions="x")) for i in range(50)]
            )
        finally:
            store.close()
        env = dict(os.environ)
        task_id = tasks[0].id
        bare = _time([sys.executable, "-c", "pass"], runs, env)
        commands = {
            "--version": [CLAUDOMATOR, "--version"],
            "list": [CLAUDOMATOR, "list"],
            "show": [CLAUDOMATOR, "show", task_id],
            "answer": [CLAUDOMATOR, "answer", task_id, "yes"],
        }
        medians = {}
        for label, argv in commands.items():
            medians[label] = _time(argv, runs, env)
            log(f"  {label}: {medians[label] * 1000:.0f} ms (bare python {bare * 1000:.0f} ms)")
    slowest = max(medians, key=lambda k: medians[k])
    figures = [Figure("python -c pass", bare * 1000, "ms")]
    figures += [Figure(label, value * 1000, "ms") for label, value in medians.items()]
    return Result(
        name=NAME,
        title=TITLE,
        figures=figures,
        ratio=medians[slowest] / bare,
        target=f"each command < {LIMIT_S:g} s",
        passed=all(value < LIMIT_S for value in medians.values()),
        headline=(
            f"slowest `{slowest}` {medians[slowest] * 1000:.0f} ms "
            f"({medians[slowest] / bare:.1f}x bare python)"
        ),
        params={"runs": runs, "tasks": 50},
    )
