"""``claudomator show`` says the task's own isolation and the confinement each execution got."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Execution, Task, TaskIsolation
from claudomator.store import Store

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def test_show_says_how_each_execution_was_confined() -> None:
    store = Store.open(load_settings().db_path)
    try:
        isolation = TaskIsolation(launcher="bubblewrap", network="model-only")
        task = Task(name="confined", agent=AgentConfig(instructions="hi"), isolation=isolation)
        [stored] = store.add_tasks([task])
        fell_back = "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH)"
        store.add_execution(Execution(task_id=stored.id, confinement=fell_back))
    finally:
        store.close()
    done = subprocess.run(
        [CLAUDOMATOR, "show", stored.id],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "isolation launcher bubblewrap, network model-only" in text
    assert f"confined {fell_back}" in text
