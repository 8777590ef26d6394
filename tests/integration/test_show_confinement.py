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


def test_run_refuses_a_task_file_that_loosens_the_confinement(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[isolation]\nnetwork = "model-only"\n', encoding="utf-8")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "name: loose\nisolation:\n  network: open\nagent:\n  instructions: hi\n", encoding="utf-8"
    )
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config)}
    done = subprocess.run(
        [CLAUDOMATOR, "run", "--dry-run", str(tasks)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f'{tasks}:loose:isolation.network: "open" is looser than [isolation] network' in (
        done.stderr
    )
    assert "nothing was stored" in done.stderr
    store = Store.open(load_settings(env).db_path)
    try:
        assert store.list_tasks() == []
    finally:
        store.close()
