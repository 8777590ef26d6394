"""A hostile fake agent, run by the real pool: what it plants in its sandbox's .git never harms
the next task or runs in our bookkeeping (issue 10, items 2 and 5, end to end).

The fake agent is a real executable configured as the Claude CLI: it runs the shell script
between ``<<<SH`` and ``SH>>>`` in its prompt inside its sandbox, then reports success in Claude
Code's stream-json.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from claudomator.agents import build_registry
from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git

AGENT = r"""#!{python}
import json, re, subprocess, sys
prompt = sys.argv[-1]
session = sys.argv[sys.argv.index("--session-id") + 1] if "--session-id" in sys.argv else ""
found = re.search(r"<<<SH\n(.*?)\nSH>>>", prompt, re.S)
if found:
    subprocess.run(["sh", "-c", found.group(1)], check=True)
def emit(event):
    event["session_id"] = session
    print(json.dumps(event), flush=True)
emit({{"type": "system", "subtype": "init", "model": "fake-model"}})
text = "## Summary\nDid it."
emit({{"type": "assistant", "message": {{"content": [{{"type": "text", "text": text}}]}}}})
emit({{"type": "result", "subtype": "success", "is_error": False, "result": text,
      "total_cost_usd": 0.001, "usage": {{"input_tokens": 3, "output_tokens": 5}}}})
"""


def fake_agent(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fake-claude"
    path.write_text(AGENT.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


async def run_one(pool: Pool, service: Service, store: Store, project: Path, script: str) -> Task:
    agent = AgentConfig(
        type="claude", instructions=f"<<<SH\n{script}\nSH>>>", project_dir=str(project)
    )
    [task] = service.submit([Task(name="hostile", agent=agent, timeout=60)])
    pool.wake()
    deadline = time.monotonic() + 60
    while not store.get_task(task.id).state.is_terminal:
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task.id} did not finish: {store.get_task(task.id).state}")
        await asyncio.sleep(0.05)
    return store.get_task(task.id)


def setup(tmp_path: Path, settings: Settings, store: Store, project: Path) -> tuple[Pool, Service]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(remote))
    git(project, "remote", "add", "local", str(remote))
    settings = settings.model_copy(
        update={"claude_binary_path": str(fake_agent(tmp_path / "bin")), "kill_grace_seconds": 1}
    )
    service = Service(settings, store)
    pool = Pool(
        settings, store, build_registry(settings), **pool_parts(settings, store), poll_interval=0.1
    )
    service.on_submit = pool.wake
    return pool, service


async def test_an_exclude_planted_by_one_task_does_not_eat_the_next_tasks_work(
    tmp_path: Path, settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    project = make_repo("shared", {"README.md": "shared\n"})
    pool, service = setup(tmp_path, settings, store, project)
    await pool.start()
    try:
        first = await run_one(
            pool, service, store, project, "mkdir -p .git/info && echo '*' >> .git/info/exclude"
        )
        second = await run_one(pool, service, store, project, "echo 'B work' > b-work.txt")
    finally:
        await pool.shutdown()

    assert first.state == TaskState.COMPLETED
    assert second.state == TaskState.COMPLETED
    [execution] = store.executions_of(second.id)
    assert len(execution.commits) == 1
    assert git(tmp_path / "remote.git", "show", "main:b-work.txt") == "B work"


PLANT = """
set -e
bin="$PWD/../../evil-bin"
mkdir -p "$bin" .git/hooks
for name in clean smudge textconv gpg fsmonitor pre-push pre-commit post-checkout; do
  {
    echo '#!/bin/sh'
    echo "echo ran >> $MARKERS/$name"
    echo "ROBUST_HOSTILE=$TOKEN sleep 600 </dev/null >/dev/null 2>&1 &"
    echo cat
  } > "$bin/$name"
  chmod +x "$bin/$name"
done
for hook in pre-push pre-commit post-checkout; do cp "$bin/$hook" .git/hooks/$hook; done
git config filter.evil.clean "$bin/clean"
git config filter.evil.smudge "$bin/smudge"
git config diff.evil.textconv "$bin/textconv"
git config commit.gpgSign true
git config gpg.program "$bin/gpg"
git config core.fsmonitor "$bin/fsmonitor"
echo '* filter=evil diff=evil' > .gitattributes
echo 'agent work' > work.txt
"""


async def test_planted_git_programs_never_run_after_the_agent(
    tmp_path: Path, settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    project = make_repo("target", {"README.md": "v1\n"})
    markers = tmp_path / "markers"
    markers.mkdir()
    token = os.urandom(8).hex()
    pool, service = setup(tmp_path, settings, store, project)
    script = f"MARKERS={markers}; TOKEN={token}\n{PLANT}"
    await pool.start()
    try:
        done = await run_one(pool, service, store, project, script)
        again = await run_one(pool, service, store, project, "echo again > again.txt")
    finally:
        await pool.shutdown()
    ran = sorted(p.name for p in markers.iterdir())
    alive = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _has_token(p, token)
    ]
    for pid in alive:
        os.kill(pid, 9)

    assert ran == []
    assert alive == []
    assert done.state == TaskState.COMPLETED, store.executions_of(done.id)[-1].error_msg
    assert again.state == TaskState.COMPLETED, store.executions_of(again.id)[-1].error_msg
    assert git(tmp_path / "remote.git", "show", "main:work.txt") == "agent work"


def _has_token(proc: Path, token: str) -> bool:
    try:
        return f"ROBUST_HOSTILE={token}".encode() in (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
