"""Memory: the orchestrator's resident memory with many agents running at once.

The real pool (global limit raised to allow them all) runs ``BENCH_MEMORY_AGENTS`` (200) tasks
of a fake Claude agent that marks itself started and sleeps. The orchestrator is this process;
its RSS (``VmRSS`` in ``/proc/self/status``) is read once the pool has run a few tasks (so its
code and caches are loaded) and is idle, then again while every agent is running (the highest
of a few samples). Target: growth <= 1 MB per running agent.
"""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from benchlib import (
    Figure,
    Result,
    env_int,
    fake_claude,
    isolated,
    log,
    rss_kb,
    scratch,
    write_executable,
)
from claudomator.agents import build_registry
from claudomator.config import load_settings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service

NAME = "memory"
TITLE = "Memory per running agent"
TARGET_MB = 1.0


def sleeping_agent(directory: Path, started: Path) -> Path:
    """A fake Claude that says it started (a file named after its task) and sleeps."""
    script = f'#!/bin/sh\ntouch "{started}/$CLAUDOMATOR_TASK_ID"\nexec sleep 600\n'
    return write_executable(directory / "claude-sleeping", script)


def _tasks(count: int, label: str) -> list[Task]:
    return [
        Task(
            name=f"{label} {i}",
            agent=AgentConfig(type="claude", instructions=f"{label} {i}", skip_planning=True),
        )
        for i in range(count)
    ]


async def _settle(service: Service, count: int, states: set[TaskState], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        counts = service.store.count_by_state()
        if sum(counts.get(s, 0) for s in states) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"tasks did not settle: {counts}")
        await asyncio.sleep(0.2)


async def measure(root: Path, agents: int) -> dict[str, float]:
    started = root / "started"
    started.mkdir()
    with isolated(root) as env:
        warm_bin = fake_claude(root / "bin")
        settings = load_settings().model_copy(
            update={
                "claude_binary_path": str(warm_bin),
                "max_concurrent": agents,
                "kill_grace_seconds": 2.0,
            }
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
            # warm up: the code paths of a whole task, with a few at once
            service.submit(_tasks(16, "warm-up"))
            await _settle(service, 16, {TaskState.COMPLETED}, 120)
            await asyncio.sleep(0.5)
            gc.collect()
            before = rss_kb()
            sleeper = sleeping_agent(root / "bin", started)
            pool.runners = build_registry(
                settings.model_copy(update={"claude_binary_path": str(sleeper)})
            )
            t0 = time.monotonic()
            service.submit(_tasks(agents, "sleeper"))
            deadline = time.monotonic() + 600
            while sum(1 for _ in started.iterdir()) < agents:
                if time.monotonic() > deadline:
                    raise RuntimeError("the agents did not all start")
                await asyncio.sleep(0.2)
            ramp = time.monotonic() - t0
            if len(pool.running) != agents:
                raise RuntimeError(f"{len(pool.running)} tasks running, not {agents}")
            await asyncio.sleep(1.0)
            gc.collect()
            samples = []
            for _ in range(5):
                samples.append(rss_kb())
                await asyncio.sleep(0.2)
            during = max(samples)
        finally:
            await pool.shutdown(requeue=False)
            service.close()
    return {"before_kb": before, "during_kb": during, "ramp_s": ramp}


def run(size: str = "full") -> Result:
    agents = env_int("BENCH_MEMORY_AGENTS", 200, 20, size)
    with scratch("memory-") as root:
        got = asyncio.run(measure(root, agents))
    growth_mb = (got["during_kb"] - got["before_kb"]) / 1024
    per_agent = growth_mb / agents
    log(f"  memory: {got['before_kb'] / 1024:.1f} MB idle, {got['during_kb'] / 1024:.1f} MB busy")
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("RSS idle (after warm-up)", got["before_kb"] / 1024, "MB"),
            Figure(f"RSS with {agents} agents running", got["during_kb"] / 1024, "MB"),
            Figure("growth per running agent", per_agent, "MB"),
            Figure(f"time to start {agents} agents", got["ramp_s"], "s"),
        ],
        ratio=None,
        target=f"<= {TARGET_MB:g} MB per agent",
        passed=per_agent <= TARGET_MB,
        headline=f"{per_agent * 1024:.0f} KB per agent",
        params={"agents": agents},
    )
