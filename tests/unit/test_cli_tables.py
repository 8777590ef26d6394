"""The live table of `claudomator run` keeps its ACTIVITY column readable on an 80-column
terminal, and names print as written."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from claudomator.cli.common import task_table
from claudomator.config import Settings
from claudomator.models import AgentConfig, Execution, Task, TaskState
from claudomator.service import Service
from claudomator.store import Store


def test_activity_is_visible_at_80_columns(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    log = settings.logs_dir / "run-1" / "stdout.log"  # the logs are read from the log store
    log.parent.mkdir(parents=True)
    event = {
        "type": "assistant",
        "message": {"content": [{"type": "text", "text": "Reading the parser"}]},
    }
    log.write_text(json.dumps(event) + "\n", encoding="utf-8")
    name = "a rather long task name that goes on and on [/]"
    [task] = store.add_tasks([Task(name=name, agent=AgentConfig(instructions="x"))])
    store.transition(task.id, TaskState.RUNNING, "claimed")
    store.add_execution(Execution(task_id=task.id, agent="claude", stdout_path=str(log)))
    service = Service(settings, store)
    console = Console(width=80, record=True, color_system=None)
    console.print(task_table(service, [store.get_task(task.id)], activity=True))
    text = console.export_text()
    assert "Reading the" in text
    assert "a rather long task" in text
    assert all(len(line) <= 80 for line in text.splitlines())
