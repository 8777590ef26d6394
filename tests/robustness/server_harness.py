"""The orchestrator of ``claudomator serve`` in the test's event loop: a Runtime and the API
served by a real uvicorn on 127.0.0.1, plus a fake Claude CLI the test lets finish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from robust import free_port

from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.runtime import Runtime
from claudomator.service import Service

GATED_AGENT = r'''#!{python}
"""Fake Claude Code: notes each run, waits for <state>/<task>.go (or all.go), writes a file,
finishes."""
import json, os, sys, time

state = {state!r}
task = os.environ["CLAUDOMATOR_TASK_ID"]
session = sys.argv[sys.argv.index("--session-id") + 1] if "--session-id" in sys.argv else ""
with open(os.path.join(state, task + ".runs"), "a") as fh:
    fh.write("run\n")
while not any(os.path.exists(os.path.join(state, f)) for f in (task + ".go", "all.go")):
    time.sleep(0.02)
with open(f"work-{{task}}.txt", "w") as fh:
    fh.write("done\n")
text = "## Summary\nDid it."
for event in (
    {{"type": "system", "subtype": "init", "model": "fake-model"}},
    {{"type": "assistant", "message": {{"content": [{{"type": "text", "text": text}}]}}}},
    {{"type": "result", "subtype": "success", "is_error": False, "result": text,
      "total_cost_usd": 0.001, "usage": {{"input_tokens": 3, "output_tokens": 5}}}},
):
    event["session_id"] = session
    print(json.dumps(event), flush=True)
'''


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class DatabaseLock:
    """Another process (``python -c`` with sqlite3) holding ``BEGIN EXCLUSIVE`` on ``db``."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked", "the lock was not taken"

    def release(self) -> None:
        """Commit and end the other process (it is killed if it does not end)."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.communicate("\n", timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        assert self.proc.returncode == 0


def gated_agent(bin_dir: Path, state: Path) -> Path:
    """The fake agent executable; a task's run ends once ``<state>/<task id>.go`` (or
    ``<state>/all.go``) exists."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "gated-claude"
    path.write_text(GATED_AGENT.format(python=sys.executable, state=str(state)), encoding="utf-8")
    path.chmod(0o755)
    return path


def runs_of(state: Path, task_id: str) -> int:
    path = state / f"{task_id}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """GET ``url``: (status, body)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
        return response.status, response.read().decode()


async def get_json(url: str) -> Any:
    _, body = await asyncio.to_thread(get, url)
    return json.loads(body)


@contextlib.asynccontextmanager
async def serving(settings: Settings, service: Service) -> AsyncIterator[str]:
    """The pool and the API of ``serve`` running in this loop; yields the base URL."""
    port = free_port()
    runtime = Runtime(settings, service=service)
    app = create_app(service, settings, llm=runtime.llm, launcher=runtime.launcher)  # as serve
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    async with runtime:
        job = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if job.done():
                    job.result()
                await asyncio.sleep(0.02)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await job
