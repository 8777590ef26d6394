"""Start-up of the command line: how long `claudomator --version`, `list`, `show` and `answer`
take as whole processes, next to a bare Python interpreter started the same way.

Each command runs ``BENCH_STARTUP_RUNS`` times (15) against a data dir holding 50 tasks; the
medians are reported. ``answer`` answers a BLOCKED task each run (one of 50 that wait), so it
is the whole command: start-up, lookup, the guarded transition and the answer's record. The
commands run as a user's do, with Python's bytecode cache (``PYTHONDONTWRITEBYTECODE`` is
dropped from their environment, and a first untimed run fills the cache). The baseline is
``python -c pass`` with the same interpreter, measured in the same run.

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
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import Store

NAME = "startup"
TITLE = "CLI start-up"
LIMIT_S = 0.5
CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def _time(argvs: list[list[str]], env: dict[str, str]) -> float:
    """The median wall time of each of ``argvs`` as a whole process (output discarded); each
    must succeed."""
    times = []
    for argv in argvs:
        started = time.perf_counter()
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
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
            for task in tasks:
                store.transition(task.id, TaskState.RUNNING, "claimed")
                store.transition(task.id, TaskState.BLOCKED, "question", question="Which one?")
        finally:
            store.close()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        task_id = tasks[0].id
        bare = _time([[sys.executable, "-c", "pass"]] * runs, env)
        commands = {
            "--version": [[CLAUDOMATOR, "--version"]] * runs,
            "list": [[CLAUDOMATOR, "list"]] * runs,
            "show": [[CLAUDOMATOR, "show", task_id]] * runs,
            "answer": [[CLAUDOMATOR, "answer", t.id, "yes"] for t in tasks[1 : runs + 1]],
        }
        for argvs in commands.values():  # untimed: fill the bytecode cache
            subprocess.run([*argvs[0][:1], "--help"], env=env, stdout=subprocess.DEVNULL)
        medians = {}
        for label, argvs in commands.items():
            medians[label] = _time(argvs, env)
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
