"""The service is given its collaborators where it is built (issue 12: the runtime, or
Service.open, is the composition root); importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from claudomator.config import Settings
from claudomator.logs import LocalLogStore
from claudomator.models import AgentConfig, Execution, Task, TaskState
from claudomator.sandbox import Sandboxes
from claudomator.service import Service
from claudomator.store import Store


def test_open_takes_the_log_store_and_the_sandboxes(settings: Settings) -> None:
    logs = LocalLogStore(settings.logs_dir)
    made: list[Sandboxes] = []

    def sandboxes() -> Sandboxes:
        made.append(Sandboxes(settings.sandboxes_dir))
        return made[-1]

    service = Service.open(settings, logs=logs, sandboxes=sandboxes)
    try:
        assert service.logs is logs
        assert service.sandboxes is sandboxes
        assert not made  # made only when accept needs it
    finally:
        service.close()
    default = Service.open(settings)
    try:
        assert isinstance(default.logs, LocalLogStore)
        assert default.logs.root == settings.logs_dir
    finally:
        default.close()


def test_accept_releases_through_the_sandboxes_it_was_given(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    asked: list[Path] = []

    class Recording(Sandboxes):
        def reopen(self, sandbox_dir: Path, project_dir: Path) -> None:
            asked.append(sandbox_dir)

    given = Recording(tmp_path / "boxes")
    service = Service(settings, store, sandboxes=lambda: given)
    project = tmp_path / "project"
    project.mkdir()
    [task] = store.add_tasks(
        [Task(name="t", agent=AgentConfig(instructions="x", project_dir=str(project)))]
    )
    for state in (TaskState.RUNNING, TaskState.READY):
        store.transition(task.id, state, "test")
    box = tmp_path / "boxes" / "box-1"
    store.add_execution(Execution(task_id=task.id, status=TaskState.READY, sandbox_dir=str(box)))
    assert service.accept(task.id).state == TaskState.COMPLETED
    assert asked == [box]


def test_importing_the_service_loads_no_agent_sandbox_or_database_module() -> None:
    code = (
        "import sys, claudomator.service; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'asyncio'} "
        "or m.startswith(('claudomator.agents', 'claudomator.sandbox', 'claudomator.readiness'))))"
    )
    src = Path(__file__).resolve().parents[2] / "src"  # this checkout
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src)},
    )
    assert loaded.stdout.strip() == "[]"


def test_the_runtime_gives_the_service_its_pools_sandboxes(settings: Settings) -> None:
    from claudomator.runtime import Runtime

    runtime = Runtime(settings, base_env={"PATH": "/usr/bin:/bin"})
    try:
        assert runtime.service.sandboxes() is runtime.pool.sandboxes
    finally:
        runtime.service.close()
