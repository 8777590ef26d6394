"""The pool reads the queue a page at a time: tasks past the first pages are still claimed."""

from __future__ import annotations

import stat
from pathlib import Path

from agent_harness import make_task, wait_for

from claudomator.agents import build_registry
from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.models import TaskState
from claudomator.runtime import pool_parts
from claudomator.store import Store

RESULT = (
    '{"type":"result","subtype":"success","is_error":false,"result":"done",'
    '"session_id":"s","total_cost_usd":0,"usage":{"input_tokens":1,"output_tokens":1}}'
)


def fake_claude(directory: Path) -> Path:
    script = directory / "claude"
    script.write_text(f"#!/bin/sh\necho '{RESULT}'\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_a_task_behind_pages_of_waiting_tasks_is_claimed(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    cfg = settings.model_copy(
        update={"claude_binary_path": str(fake_claude(tmp_path)), "max_concurrent": 2}
    )
    [blocker] = store.add_tasks([make_task(None, name="blocker")], submit=False)  # stays PENDING
    waiting = [make_task(None, name=f"waits {i}", depends_on=(blocker.id,)) for i in range(5)]
    store.add_tasks(waiting)
    [free] = store.add_tasks([make_task(None, name="free")])
    pool = Pool(cfg, store, build_registry(cfg), **pool_parts(cfg, store), poll_interval=60.0)
    pool.CLAIM_PAGE = 2  # the free task is on the third page
    await pool.start()
    try:
        await wait_for(lambda: store.get_task(free.id).state == TaskState.COMPLETED, 60)
    finally:
        await pool.shutdown()
    assert all(store.get_task(t.id).state == TaskState.QUEUED for t in waiting)
