"""Confinement over the API: a project's launcher, network, read-only paths and endpoints; a
task's isolation, refused (nothing stored) when it loosens its project's unless the operator
lets tasks; the confinement each execution recorded in its JSON."""

from __future__ import annotations

from pathlib import Path

import httpx
from test_api_tasks import Served

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import Execution, TaskState
from claudomator.store import Store
from conftest import MakeRepo


def _task(project: Path, **isolation: str) -> dict[str, object]:
    return {
        "name": "t",
        "agent": {"instructions": "x", "project_dir": str(project)},
        "isolation": isolation,
    }


TOKEN = "operator-token"


def test_a_project_sets_its_confinement_and_bad_values_name_the_field(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo("webapp")
    guarded = settings.model_copy(update={"api_token": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        Served(guarded, store) as served,
        httpx.Client(base_url=served.url, headers=auth) as client,
    ):
        body = {
            "name": "webapp",
            "dir": str(repo),
            "launcher": "bubblewrap",
            "network": "model-only",
            "read_only_paths": ["/srv/cache/npm"],
            "allowed_endpoints": ["https://registry.npmjs.org/"],
        }
        created = client.post("/api/projects", json=body)
        assert created.status_code == 201, created.text
        got = client.get("/api/projects/webapp").json()
        assert got["launcher"] == "bubblewrap"
        assert got["network"] == "model-only"
        assert got["read_only_paths"] == ["/srv/cache/npm"]
        assert got["allowed_endpoints"] == ["https://registry.npmjs.org"]
        for field, value, said in [
            ("launcher", "docker", "is not a launcher"),
            ("network", "closed", "is not a network policy"),
            ("read_only_paths", ["cache"], "is not an absolute path"),
            ("allowed_endpoints", ["npmjs.org"], "is not an endpoint"),
        ]:
            bad = client.put("/api/projects/webapp", json={**body, field: value})
            assert bad.status_code == 422, bad.text
            assert field in bad.text
            assert said in bad.text
        assert client.get("/api/projects/webapp").json()["launcher"] == "bubblewrap"


def test_an_open_api_never_loosens_a_project_s_confinement(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    """Without api_token any local process can use the API, a confined agent too: it may set a
    project as tight as the operator's [isolation] or tighter, never looser, nor widen what its
    agents may read or reach."""
    repo = make_repo("webapp")
    operator = settings.model_copy(
        update={"isolation": IsolationSettings(launcher="bubblewrap", network="model-only")}
    )
    with Served(operator, store) as served, httpx.Client(base_url=served.url) as client:
        base = {"name": "webapp", "dir": str(repo)}
        for field, value in [
            ("launcher", "plain"),
            ("launcher", "auto"),
            ("network", "open"),
            ("read_only_paths", ["/root"]),
            ("allowed_endpoints", ["https://evil.example"]),
        ]:
            refused = client.post("/api/projects", json={**base, field: value})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"].startswith(f"{field}: ")
            assert "set api_token" in refused.text
            assert client.get("/api/projects/webapp").status_code == 404  # nothing stored
        same = client.post("/api/projects", json={**base, "launcher": "bubblewrap"})
        assert same.status_code == 201, same.text
        looser = client.put("/api/projects/webapp", json={**base, "network": "open"})
        assert looser.status_code == 422, looser.text
        assert client.get("/api/projects/webapp").json()["network"] == ""


def test_a_task_may_tighten_but_not_loosen_its_project_s_confinement(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo("webapp")
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        project = {"name": "webapp", "dir": str(repo), "launcher": "bubblewrap"}
        assert client.post("/api/projects", json=project).status_code == 201
        looser = client.post("/api/tasks", json=_task(repo, launcher="plain"))
        assert looser.status_code == 422, looser.text
        assert "isolation.launcher" in looser.text
        assert 'project \\"webapp\\" launcher = \\"bubblewrap\\"' in looser.text
        assert "allow_task_override" in looser.text
        assert store.list_tasks() == []  # nothing stored
        tighter = client.post("/api/tasks", json=_task(repo, network="model-only"))
        assert tighter.status_code == 201, tighter.text
        [task] = tighter.json()["tasks"]
        assert task["isolation"] == {"launcher": "", "network": "model-only"}
        edit = client.patch(f"/api/tasks/{task['id']}", json={"isolation": {"launcher": "auto"}})
        assert edit.status_code == 422, edit.text
        assert "isolation.launcher" in edit.text
        assert store.get_task(task["id"]).isolation.launcher == ""
        unknown = client.post("/api/tasks", json=_task(repo, launcher="docker"))
        assert unknown.status_code == 422
        assert "isolation.launcher" in unknown.text


def test_the_operator_may_let_tasks_loosen(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo("webapp")
    isolation = IsolationSettings(network="model-only", allow_task_override=True)
    allowing = settings.model_copy(update={"isolation": isolation})
    with Served(allowing, store) as served, httpx.Client(base_url=served.url) as client:
        opened = client.post("/api/tasks", json=_task(repo, network="open"))
        assert opened.status_code == 201, opened.text
        [task] = opened.json()["tasks"]
        line = "bubblewrap, network open"
        store.add_execution(Execution(task_id=task["id"], confinement=line))
        [execution] = client.get(f"/api/tasks/{task['id']}/executions").json()
        assert execution["confinement"] == line
        detail = client.get(f"/api/tasks/{task['id']}").json()
        assert detail["executions"][0]["confinement"] == line


def test_an_agent_s_subtask_is_confined_at_least_as_its_parent(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    from claudomator import tokens

    repo = make_repo("webapp")
    # even where the operator lets tasks loosen: an agent never loosens its own confinement
    isolation = IsolationSettings(allow_task_override=True)
    guarded = settings.model_copy(update={"api_token": "master", "isolation": isolation})
    key = tokens.token_key(settings.data_dir)
    with Served(guarded, store) as served, httpx.Client(base_url=served.url) as client:
        master = {"Authorization": "Bearer master"}
        body = _task(repo, launcher="bubblewrap", network="model-only")
        [parent] = client.post("/api/tasks", json=body, headers=master).json()["tasks"]
        store.transition(parent["id"], TaskState.RUNNING, "claimed")
        execution = store.add_execution(Execution(task_id=parent["id"]))
        agent = {"Authorization": f"Bearer {tokens.mint(key, parent['id'], execution.id)}"}
        sub = {"name": "sub", "agent": {"instructions": "y"}}
        created = client.post("/api/tasks", json=sub, headers=agent)
        assert created.status_code == 201, created.text
        [made] = created.json()["tasks"]
        assert made["isolation"] == {"launcher": "bubblewrap", "network": "model-only"}
        for field, value in (("launcher", "plain"), ("network", "open")):
            looser = {**sub, "name": f"loose-{field}", "isolation": {field: value}}
            refused = client.post("/api/tasks", json=looser, headers=agent)
            assert refused.status_code == 403, refused.text
            assert f"isolation.{field}" in refused.text
            assert "parent task" in refused.text
        assert len(store.list_tasks()) == 2  # the parent and the one confined subtask
