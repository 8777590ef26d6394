"""The store contract for confinement: a project's launcher, network, read-only paths and
endpoints, a task's isolation, and the confinement an execution recorded, on every backend."""

from __future__ import annotations

from claudomator.models import (
    AgentConfig,
    Execution,
    Project,
    Task,
    TaskIsolation,
    TaskState,
)
from claudomator.store.base import Store
from contract import backends

store = backends.store  # the fixture: each test runs on every backend


def test_a_project_keeps_its_confinement(store: Store) -> None:
    web = Project(
        name="web",
        dir="/srv/web",
        launcher="bubblewrap",
        network="model-only",
        read_only_paths=("/srv/cache/npm", "/opt/tools"),
        allowed_endpoints=("https://registry.npmjs.org",),
    )
    store.save_project(web, create=True)
    store.save_project(Project(name="plain", dir="/srv/plain"), create=True)
    [plain, loaded] = store.projects()
    assert loaded == web
    assert (plain.launcher, plain.network, plain.read_only_paths) == ("", "", ())
    opened = web.model_copy(update={"launcher": "auto", "read_only_paths": ()})
    store.save_project(opened, create=False)
    assert store.projects()[1] == opened


def test_a_task_keeps_its_isolation(store: Store) -> None:
    isolation = TaskIsolation(launcher="bubblewrap", network="model-only")
    task = Task(name="t", agent=AgentConfig(instructions="x"), isolation=isolation)
    [stored, bare] = store.add_tasks([task, Task(name="u", agent=AgentConfig(instructions="y"))])
    assert store.get_task(stored.id).isolation == isolation
    assert store.get_task(bare.id).isolation == TaskIsolation()
    assert {t.id: t.isolation for t in store.list_tasks()}[stored.id] == isolation
    looser = stored.model_copy(update={"isolation": TaskIsolation(network="open")})
    store.replace_task(looser, only_in=(TaskState.QUEUED,))
    assert store.get_task(stored.id).isolation == TaskIsolation(network="open")


def test_an_execution_records_its_confinement(store: Store) -> None:
    [task] = store.add_tasks([Task(name="t", agent=AgentConfig(instructions="x"))])
    execution = Execution(task_id=task.id)
    store.add_execution(execution)
    assert store.get_execution(execution.id).confinement == ""
    line = "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH)"
    store.save_execution(execution.model_copy(update={"confinement": line}))
    assert store.get_execution(execution.id).confinement == line
    assert [e.confinement for e in store.executions_of(task.id)] == [line]
    assert store.latest_executions([task.id])[task.id].confinement == line
