"""API: list and create tasks over HTTP with a big store.

A real uvicorn server (the app of ``claudomator serve``, without the pool, so the queued tasks
stay put) runs in its own process on 127.0.0.1 over a store holding ``BENCH_API_TASKS``
(10,000) tasks. httpx clients in this process measure:

* ``GET /api/tasks`` (the first page, 100 tasks) from one client, ``BENCH_API_LISTS`` (300)
  times: p50 and p99 latency;
* ``POST /api/tasks`` (one task each) from 32 concurrent clients, ``BENCH_API_CREATES`` (2,000)
  in all: throughput, p50 and p99 latency.

Targets: list p99 < 100 ms; creation >= 300 tasks/s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchlib import HERE, Figure, Result, env_int, isolated, log, percentile, scratch
from claudomator.config import load_settings
from claudomator.models import AgentConfig, Task
from claudomator.service import Service

NAME = "api"
TITLE = "API"
LIST_P99_MS = 100.0
CREATE_PER_S = 300.0
CLIENTS = 32


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill(service: Service, count: int) -> None:
    """``count`` tasks, inserted in batches through the store."""
    batch = 1000
    for start in range(0, count, batch):
        service.store.add_tasks(
            [
                Task(
                    name=f"task {i}",
                    agent=AgentConfig(
                        type="claude",
                        instructions=f"Do thing number {i}. " * 5,
                        project_dir=f"/srv/project{i % 7}",
                    ),
                    tags=("bench", f"t{i % 5}"),
                )
                for i in range(start, min(count, start + batch))
            ]
        )


def serve(port: int) -> None:
    """The server process: the API over the store of ``$CLAUDOMATOR_DATA_DIR``."""
    import uvicorn

    from claudomator.api import create_app

    settings = load_settings()
    service = Service.open(settings)
    uvicorn.run(create_app(service, settings), host="127.0.0.1", port=port, log_level="warning")


async def _wait_up(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited {proc.returncode}")
        try:
            if (await client.get("/api/health")).status_code < 500:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the API server did not start")


async def measure(
    url: str, proc: subprocess.Popen[bytes], lists: int, creates: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await _wait_up(client, proc)
        for _ in range(10):  # warm up
            (await client.get("/api/tasks")).raise_for_status()
        list_ms: list[float] = []
        for _ in range(lists):
            started = time.perf_counter()
            response = await client.get("/api/tasks")
            list_ms.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            if len(response.json()["tasks"]) != 100:
                raise RuntimeError("the first page does not hold 100 tasks")
        create_ms: list[float] = []
        counter = iter(range(creates))

        async def creator() -> None:
            for i in counter:
                body = {"name": f"new {i}", "agent": {"type": "claude", "instructions": "x"}}
                started = time.perf_counter()
                response = await client.post("/api/tasks", json=body)
                create_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    raise RuntimeError(f"create: {response.status_code} {response.text[:300]}")

        cpu, mine = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
        started = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(CLIENTS)))
        create_s = time.perf_counter() - started
        cpu, mine = cpu_seconds(proc.pid) - cpu, cpu_seconds(os.getpid()) - mine
    return {
        "list_ms": list_ms,
        "create_ms": create_ms,
        "create_s": create_s,
        "create_cpu": cpu,
        "client_cpu": mine,
    }


def run(size: str = "full") -> Result:
    count = env_int("BENCH_API_TASKS", 10_000, 500, size)
    lists = env_int("BENCH_API_LISTS", 300, 30, size)
    creates = env_int("BENCH_API_CREATES", 2000, 100, size)
    with scratch("api-") as root, isolated(root) as env:
        service = Service.open(load_settings())
        started = time.perf_counter()
        fill(service, count)
        log(f"  api: {count} tasks stored in {time.perf_counter() - started:.1f}s")
        service.close()
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", str(port)],
            env={**env, "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])},
        )
        try:
            got = asyncio.run(measure(f"http://127.0.0.1:{port}", server, lists, creates))
        finally:
            server.terminate()
            server.wait(30)
    list_ms, create_ms = got["list_ms"], got["create_ms"]
    rate = creates / got["create_s"]
    list_p99 = percentile(list_ms, 99)
    passed = list_p99 < LIST_P99_MS and rate >= CREATE_PER_S
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("list p50", percentile(list_ms, 50), "ms"),
            Figure("list p99", list_p99, "ms"),
            Figure("create throughput", rate, "tasks/s"),
            Figure("create p50", percentile(create_ms, 50), "ms"),
            Figure("create p99", percentile(create_ms, 99), "ms"),
            Figure("server CPU per create", got["create_cpu"] / creates * 1000, "ms"),
            Figure("client CPU per create", got["client_cpu"] / creates * 1000, "ms"),
        ],
        ratio=None,
        target=f"list p99 < {LIST_P99_MS:g} ms; create >= {CREATE_PER_S:g}/s",
        passed=passed,
        headline=f"list p99 {list_p99:.0f} ms; create {rate:.0f}/s",
        params={"tasks": count, "lists": lists, "creates": creates, "clients": CLIENTS},
    )


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "serve":
    serve(int(sys.argv[2]))
