"""Dispatch overhead: many tasks of a trivial agent through Claudomator vs a plain asyncio loop.

The agent is :func:`benchlib.fake_claude`, a shell script that prints a valid Claude stream-json
run and exits. Claudomator runs it through the real pool, the real Claude runner (its argv, its
process group, its log files and stream parser), sandboxes and store, for tasks without a
project directory. The baseline launches the same executable with the same kind of argv from a
plain asyncio loop at the same parallelism, reading its stdout to the end.

Sizes: ``BENCH_DISPATCH_TASKS`` (500), ``BENCH_DISPATCH_PARALLEL`` (8), ``BENCH_DISPATCH_RUNS``
(3; the median run of each side is reported, the two sides alternate).

For scale, one more pair of runs uses an agent that sleeps one second before it answers
(``BENCH_DISPATCH_SLOW_TASKS``, 96 tasks; 0 skips it): the same fixed cost per task against
an agent that does something.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

from benchlib import Figure, Result, env_int, fake_claude, isolated, log, median, scratch
from claudomator.agents import build_registry
from claudomator.config import load_settings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service

NAME = "dispatch"
TITLE = "Dispatch overhead"
TARGET = 1.25

_DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CANCELLED}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children waited for so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


async def baseline(binary: Path, tasks: int, parallel: int) -> tuple[float, float]:
    """Seconds (wall, CPU) for ``tasks`` launches of ``binary`` by a plain asyncio loop."""
    gate = asyncio.Semaphore(parallel)

    async def one(index: int) -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                str(binary),
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--",
                f"task {index}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"the fake agent exited {proc.returncode}")

    cpu = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(tasks)))
    return time.perf_counter() - started, cpu_seconds() - cpu


async def through_claudomator(
    root: Path, binary: Path, tasks: int, parallel: int
) -> tuple[float, float]:
    """Seconds (wall, CPU) from submitting ``tasks`` tasks to all of them recorded COMPLETED."""
    with isolated(root) as env:
        settings = load_settings().model_copy(
            update={"claude_binary_path": str(binary), "max_concurrent": parallel}
        )
        service = Service.open(settings)
        pool = Pool(
            settings,
            service.store,
            build_registry(settings),
            **pool_parts(settings, service.store),
            base_env=env,
        )
        service.on_submit = pool.wake
        await pool.start()
        try:
            batch = [
                Task(
                    name=f"noop {i}",
                    agent=AgentConfig(type="claude", instructions=f"task {i}", skip_planning=True),
                )
                for i in range(tasks)
            ]
            cpu = cpu_seconds()
            started = time.perf_counter()
            service.submit(batch)
            while True:
                counts = service.store.count_by_state()
                if sum(counts.get(s, 0) for s in _DONE) >= tasks:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started, cpu_seconds() - cpu
            done = service.store.count_by_state()
            if done.get(TaskState.COMPLETED, 0) != tasks:
                failed = service.store.list_tasks(states=[TaskState.FAILED], limit=1)
                why = failed[0].summary if failed else ""
                events = service.store.events(failed[0].id) if failed else []
                raise RuntimeError(f"not all tasks completed: {done}; {why} {events[-1:]}")
            return elapsed
        finally:
            await pool.shutdown()
            service.close()


def run(size: str = "full") -> Result:
    tasks = env_int("BENCH_DISPATCH_TASKS", 500, 40, size)
    parallel = env_int("BENCH_DISPATCH_PARALLEL", 8, 8, size)
    runs = env_int("BENCH_DISPATCH_RUNS", 3, 1, size)
    base_s: list[tuple[float, float]] = []
    ours_s: list[tuple[float, float]] = []
    with scratch("dispatch-") as root:
        binary = fake_claude(root / "bin")
        for r in range(runs):
            order = ("base", "ours") if r % 2 == 0 else ("ours", "base")
            for side in order:
                if side == "base":
                    base_s.append(asyncio.run(baseline(binary, tasks, parallel)))
                else:
                    work = root / f"run{r}"
                    ours_s.append(asyncio.run(through_claudomator(work, binary, tasks, parallel)))
            log(
                f"  dispatch run {r + 1}: baseline {base_s[-1][0]:.2f}s"
                f" ({base_s[-1][1]:.2f}s CPU), claudomator {ours_s[-1][0]:.2f}s"
                f" ({ours_s[-1][1]:.2f}s CPU)"
            )
        slow_tasks = env_int("BENCH_DISPATCH_SLOW_TASKS", 96, 0, size)
        slow = fake_claude(root / "bin", sleep=1.0)
        slow_ratio = 0.0
        if slow_tasks:
            slow_base = asyncio.run(baseline(slow, slow_tasks, parallel))[0]
            slow_ours = asyncio.run(through_claudomator(root / "slow", slow, slow_tasks, parallel))
            slow_ratio = slow_ours[0] / slow_base
            log(f"  dispatch, 1 s agent: baseline {slow_base:.2f}s, ours {slow_ours[0]:.2f}s")
    base, ours = median([w for w, _ in base_s]), median([w for w, _ in ours_s])
    base_cpu, ours_cpu = median([c for _, c in base_s]), median([c for _, c in ours_s])
    ratio = ours / base
    per_task_ms = (ours - base) / tasks * 1000
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("baseline (asyncio loop)", base, "s"),
            Figure("claudomator", ours, "s"),
            Figure("throughput", tasks / ours, "tasks/s"),
            Figure("overhead per task (wall)", per_task_ms, "ms"),
            Figure("overhead per task (per slot)", per_task_ms * parallel, "ms"),
            Figure("CPU per task, baseline", base_cpu / tasks * 1000, "ms"),
            Figure("CPU per task, claudomator", ours_cpu / tasks * 1000, "ms"),
            Figure("ratio with a 1 s agent", slow_ratio, "x"),
        ],
        ratio=ratio,
        target=f"ratio <= {TARGET}",
        passed=ratio <= TARGET,
        headline=f"{ratio:.1f}x; +{per_task_ms:.1f} ms/task",
        params={"tasks": tasks, "parallel": parallel, "runs": runs},
        notes=[
            "runs (wall s, CPU s): baseline "
            + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in base_s)
            + "; claudomator "
            + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in ours_s)
        ],
    )
