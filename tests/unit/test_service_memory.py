"""The service over the in-memory store: the fast tier needs no database file (or SQLAlchemy)."""

from __future__ import annotations

import subprocess
import sys

from claudomator.config import Settings
from claudomator.models import AgentConfig, Story, Task, TaskCost, TaskState
from claudomator.service import Service
from claudomator.store import open_store


def _task(name: str) -> Task:
    return Task(name=name, agent=AgentConfig(instructions=f"do {name}"))


def test_submit_find_cancel_and_intake_over_memory(settings: Settings) -> None:
    service = Service(settings, open_store("memory://"))
    story = service.create_story(Story(name="s"))
    [a] = service.submit([_task("alpha").model_copy(update={"story_id": story.id})])
    assert service.get(a.id[:6]).id == a.id  # an id prefix
    assert service.get("alpha").id == a.id  # a name
    assert service.cancel(a.id).state == TaskState.CANCELLED
    assert service.story_progress(story.id) == {"CANCELLED": 1}
    stored, holder = service.submit_once("event-1", _task("beta"))
    assert stored is not None
    assert holder == ""
    again, holder = service.submit_once("event-1", _task("beta-again"))
    assert again is None
    assert holder == stored.id
    assert service.task_costs([a.id]) == {a.id: TaskCost()}
    assert not settings.db_path.exists()


def test_the_memory_store_loads_no_sqlalchemy() -> None:
    code = (
        "import sys; from claudomator.store import open_store; "
        "open_store('memory://').add_tasks([]); print('sqlalchemy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
