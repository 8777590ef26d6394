"""The HTTP API over real HTTP: a served app on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from claudomator.api import create_app
from claudomator.api.app import MAX_BODY_BYTES
from claudomator.config import Settings
from claudomator.models import Execution, Project, TaskState
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An app served by uvicorn in a thread."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.service = Service(settings, store)
        self.port = free_port()
        config = uvicorn.Config(
            create_app(self.service, settings), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextlib.contextmanager
def serve_cli(
    tmp_path: Path, model_url: str, claude_bin: str
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A real `claudomator serve` (token "tok") whose Claude CLI talks to ``model_url``: a
    client for it once it answers, and the environment it runs in (for other CLI commands)."""
    env = claude_env(model_url, tmp_path / "agent-home")
    env["CLAUDOMATOR_DATA_DIR"] = os.environ["CLAUDOMATOR_DATA_DIR"]
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = tmp_path / "config.toml"
    config.write_text(f'claude_binary_path = "{claude_bin}"\napi_token = "tok"\n')
    env["CLAUDOMATOR_CONFIG"] = str(config)
    port = free_port()
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        auth = {"Authorization": "Bearer tok"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/api/health")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield client, env
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture
def api(settings: Settings, store: Store) -> Iterator[httpx.Client]:
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        yield client


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo()


def task_body(project: Path, name: str = "t", **extra: object) -> dict[str, object]:
    return {"name": name, "agent": {"instructions": "do", "project_dir": str(project)}, **extra}


def test_create_get_and_list(api: httpx.Client, project: Path) -> None:
    created = api.post("/api/tasks", json=task_body(project, timeout="10m", priority="high"))
    assert created.status_code == 201, created.text
    [task] = created.json()["tasks"]
    assert task["state"] == "QUEUED"
    assert task["timeout"] == 600
    detail = api.get(f"/api/tasks/{task['id'][:8]}")
    assert detail.status_code == 200
    body = detail.json()
    assert body["task"]["id"] == task["id"]
    assert [e["to_state"] for e in body["events"]] == ["PENDING", "QUEUED"]
    assert body["executions"] == []
    listed = api.get("/api/tasks", params={"state": "QUEUED"}).json()["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]
    assert api.get("/api/tasks", params={"state": "FAILED"}).json()["tasks"] == []


def test_batch_resolves_dependencies_by_name(api: httpx.Client, project: Path) -> None:
    batch = {
        "tasks": [
            task_body(project, "first"),
            task_body(project, "second", depends_on=["first"]),
        ]
    }
    response = api.post("/api/tasks", json=batch)
    assert response.status_code == 201, response.text
    first, second = response.json()["tasks"]
    assert second["depends_on"] == [first["id"]]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"name": "x", "agent": {"instructions": "i"}, "colour": "red"}, "colour", 422),
        ({"name": "x", "agent": {}}, "agent.instructions", 422),
        (
            {"name": "x", "agent": {"instructions": "i", "project_dir": "rel/dir"}},
            "agent.project_dir",
            422,
        ),
        ({"name": "x", "timeout": "soon", "agent": {"instructions": "i"}}, "timeout", 422),
        ({"tasks": []}, "tasks", 422),
    ],
)
def test_invalid_tasks_are_refused_naming_the_field(
    api: httpx.Client, body: dict[str, object], field: str, status: int
) -> None:
    response = api.post("/api/tasks", json=body)
    assert response.status_code == status, response.text
    problems = response.json()["problems"]
    assert field in [p["field"] for p in problems]
    assert api.get("/api/tasks").json()["tasks"] == []  # nothing half-written


def test_malformed_and_oversized_bodies(api: httpx.Client) -> None:
    bad = api.post("/api/tasks", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422
    assert "error" in bad.json()
    huge = api.post(
        "/api/tasks",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert "over" in huge.json()["error"]


@pytest.mark.parametrize("path", ["/api/tasks", "/api/projects", "/api/stories"])
def test_a_chunked_body_over_the_limit_is_refused_too(api: httpx.Client, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = api.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "over" in response.json()["error"]
    assert api.get("/api/tasks").json()["tasks"] == []
    small = api.post(
        "/api/stories",
        content=iter([b'{"name": ', b'"ok"}']),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 201, small.text


def test_actions_and_their_refusals(api: httpx.Client, project: Path) -> None:
    [task] = api.post("/api/tasks", json=task_body(project)).json()["tasks"]
    assert api.post(f"/api/tasks/{task['id']}/retry").status_code == 409  # not ended
    answer = api.post(f"/api/tasks/{task['id']}/answer", json={"answer": "yes"})
    assert answer.status_code == 409  # not BLOCKED
    assert "BLOCKED" in answer.json()["error"] or "QUEUED" in answer.json()["error"]
    assert api.post(f"/api/tasks/{task['id']}/answer", json={"answer": ""}).status_code == 422
    assert api.post(f"/api/tasks/{task['id']}/accept").status_code == 409  # not READY
    rejected = api.post(f"/api/tasks/{task['id']}/reject", json={"feedback": "more"})
    assert rejected.status_code == 409
    assert api.post(f"/api/tasks/{task['id']}/reject", json={}).status_code == 422
    cancelled = api.post(f"/api/tasks/{task['id']}/cancel")
    assert cancelled.json()["state"] == "CANCELLED"
    assert api.post(f"/api/tasks/{task['id']}/cancel").status_code == 409
    retried = api.post(f"/api/tasks/{task['id']}/retry")
    assert retried.json()["state"] == "QUEUED"
    missing = api.get("/api/tasks/nope-nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no task with id, id prefix or name 'nope-nope'"}
    assert api.get("/api/agents").status_code == 200
    assert api.get("/api/executions/nope").status_code == 404


def test_token_guards_everything_but_health(settings: Settings, store: Store) -> None:
    guarded = settings.model_copy(update={"api_token": "s3cret-token"})
    with Served(guarded, store) as served, httpx.Client(base_url=served.url) as client:
        assert client.get("/api/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            refused = client.get("/api/tasks", headers=headers)
            assert refused.status_code == 401
            assert "API token" in refused.json()["error"]
        ok = client.get("/api/tasks", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200


def test_openapi_lists_every_route(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/api/health",
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/cancel",
        "/api/tasks/{task_id}/retry",
        "/api/tasks/{task_id}/answer",
        "/api/tasks/{task_id}/accept",
        "/api/tasks/{task_id}/reject",
        "/api/agents",
        "/api/executions/{execution_id}",
        "/api/executions/{execution_id}/log",
    ):
        assert path in paths
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["DeliveryRecord"]["properties"]) == {
        "how",
        "project_dir",
        "remote",
        "url",
        "branch",
        "rebased",
    }
    assert "delivery" in schemas["Execution"]["properties"]


@pytest.mark.cli
def test_a_task_posted_to_serve_runs_with_the_real_cli(
    tmp_path: Path, project: Path, claude_bin: str
) -> None:
    with (
        FakeAnthropic(
            [ToolUse("Bash", {"command": "echo api > api.txt"}), Text("## Summary\nvia the API")]
        ) as fake,
        serve_cli(tmp_path, fake.url, claude_bin) as (client, _env),
    ):
        created = client.post("/api/tasks", json=task_body(project, "from-api"))
        assert created.status_code == 201, created.text
        task_id = created.json()["tasks"][0]["id"]
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = client.get(f"/api/tasks/{task_id}").json()["task"]["state"]
            if state not in ("QUEUED", "RUNNING"):
                break
            time.sleep(0.2)
        detail = client.get(f"/api/tasks/{task_id}").json()
        [execution] = detail["executions"]
        one = client.get(f"/api/executions/{execution['id']}").json()
        log = client.get(f"/api/executions/{execution['id']}/log")
        tail = client.get(
            f"/api/executions/{execution['id']}/log",
            params={"offset": int(log.headers["x-next-offset"]) - 200},
        )
        diff = client.get(f"/api/executions/{execution['id']}/diff")
    assert state == TaskState.COMPLETED.value, json.dumps(detail["executions"])[-500:]
    assert detail["task"]["summary"] == "via the API"
    assert one["status"] == "COMPLETED"
    assert one["commits"][0]["message"] == "from-api"  # the task's name
    assert one["delivery"]["how"] == "branch"
    assert one["delivery"]["branch"] == kept_branch(project, task_id)
    assert json.loads(log.text.splitlines()[0])["subtype"] == "init"
    assert json.loads(log.text.splitlines()[-1])["type"] == "result"
    assert len(tail.text) == 200
    assert log.text.endswith(tail.text)
    assert git(project, "show", f"{kept_branch(project, task_id)}:api.txt") == "api"
    assert diff.status_code == 200
    assert diff.headers["content-type"].startswith("text/plain")
    assert "+++ b/api.txt" in diff.text
    assert "\n+api\n" in diff.text


def test_update_while_queued_and_delete_unless_running(
    api: httpx.Client, project: Path, store: Store
) -> None:
    first, second = api.post(
        "/api/tasks",
        json={"tasks": [task_body(project, "first"), task_body(project, "second")]},
    ).json()["tasks"]
    changed = api.patch(
        f"/api/tasks/{second['id']}",
        json={"priority": "high", "timeout": "30m", "agent": {"model": "sonnet"}},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["priority"], body["timeout"]) == ("high", 1800)
    assert body["agent"]["model"] == "sonnet"
    assert body["agent"]["instructions"] == "do"  # merged, not replaced
    assert body["state"] == "QUEUED"
    dep = api.patch(f"/api/tasks/{second['id']}", json={"depends_on": [first["id"]]})
    assert dep.json()["depends_on"] == [first["id"]]
    cycle = api.patch(f"/api/tasks/{first['id']}", json={"depends_on": [second["id"]]})
    assert cycle.status_code == 422
    assert "cycle" in cycle.json()["error"]
    assert api.patch(f"/api/tasks/{first['id']}", json={"state": "COMPLETED"}).status_code == 422
    bad = api.patch(f"/api/tasks/{first['id']}", json={"timeout": "soon"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "timeout"
    relative = api.patch(f"/api/tasks/{first['id']}", json={"agent": {"project_dir": "src/app"}})
    assert relative.status_code == 422  # no working directory to be relative to over HTTP
    assert [(p["field"], p["message"]) for p in relative.json()["problems"]] == [
        ("agent.project_dir", "must be an absolute path over the API")
    ]

    store.transition(first["id"], TaskState.RUNNING, "claimed")
    assert api.patch(f"/api/tasks/{first['id']}", json={"priority": "low"}).status_code == 409
    assert api.delete(f"/api/tasks/{first['id']}").status_code == 409
    assert api.delete(f"/api/tasks/{second['id']}").status_code == 204
    assert api.get(f"/api/tasks/{second['id']}").status_code == 404
    assert api.delete(f"/api/tasks/{second['id']}").status_code == 404


def test_agent_tokens_may_only_create_subtasks_and_read_their_task(
    settings: Settings, store: Store, project: Path
) -> None:
    from claudomator import tokens

    guarded = settings.model_copy(update={"api_token": "master"})
    key = tokens.token_key(settings.data_dir)
    with Served(guarded, store) as served, httpx.Client(base_url=served.url) as client:
        master = {"Authorization": "Bearer master"}
        parent, other = client.post(
            "/api/tasks",
            json={"tasks": [task_body(project, "parent"), task_body(project, "other")]},
            headers=master,
        ).json()["tasks"]
        store.transition(parent["id"], TaskState.RUNNING, "claimed")
        execution = store.add_execution(Execution(task_id=parent["id"]))
        agent = {"Authorization": f"Bearer {tokens.mint(key, parent['id'], execution.id)}"}
        created = client.post("/api/tasks", json=task_body(project, "sub"), headers=agent)
        assert created.status_code == 201, created.text
        [sub] = created.json()["tasks"]
        assert sub["parent_task_id"] == parent["id"]
        foreign = task_body(project, "sneaky", parent_task_id=other["id"])
        assert client.post("/api/tasks", json=foreign, headers=agent).status_code == 403
        assert client.get(f"/api/tasks/{parent['id']}", headers=agent).status_code == 200
        assert client.get(f"/api/tasks/{other['id']}", headers=agent).status_code == 403
        assert client.get("/api/tasks", headers=agent).status_code == 403
        assert client.post(f"/api/tasks/{other['id']}/cancel", headers=agent).status_code == 403
        forged = {"Authorization": f"Bearer {tokens.mint(b'x' * 32, parent['id'], execution.id)}"}
        assert client.post("/api/tasks", json=task_body(project), headers=forged).status_code == 401


@pytest.mark.cli
def test_an_agent_creates_a_subtask_through_the_api_with_its_token(
    tmp_path: Path, project: Path, claude_bin: str
) -> None:
    create = (
        'curl -sf -X POST "$CLAUDOMATOR_API_URL/api/tasks" '
        '-H "Authorization: Bearer $CLAUDOMATOR_API_TOKEN" -H "Content-Type: application/json" '
        '-d "{\\"name\\": \\"child\\", \\"agent\\": {\\"instructions\\": \\"TASK-CHILD\\", '
        '\\"project_dir\\": \\"$CLAUDOMATOR_PROJECT_DIR\\"}}"'
    )
    with FakeAnthropic() as fake:
        fake.route("TASK-PARENT", [ToolUse("Bash", {"command": create}), Text("## Summary\nsplit")])
        fake.route(
            "TASK-CHILD",
            [ToolUse("Bash", {"command": "echo child > child.txt"}), Text("## Summary\nchild")],
        )
        with serve_cli(tmp_path, fake.url, claude_bin) as (client, env):
            body = task_body(project, "parent")
            body["agent"] = {"instructions": "TASK-PARENT", "project_dir": str(project)}
            created = client.post("/api/tasks", json=body)
            parent_id = created.json()["tasks"][0]["id"]
            deadline = time.monotonic() + 90
            tasks: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                tasks = client.get("/api/tasks").json()["tasks"]
                if len(tasks) == 2 and all(t["state"] == "COMPLETED" for t in tasks):
                    break
                time.sleep(0.3)
            listing = subprocess.run(
                [CLAUDOMATOR, "list"], env=env, capture_output=True, text=True, check=False
            ).stdout
    by_name = {t["name"]: t for t in tasks}
    assert set(by_name) == {"parent", "child"}, tasks
    assert all(t["state"] == "COMPLETED" for t in tasks), tasks
    assert by_name["child"]["parent_task_id"] == parent_id
    assert "└ child" in listing
    child_id = str(by_name["child"]["id"])
    assert git(project, "show", f"{kept_branch(project, child_id)}:child.txt") == "child"


def test_list_pages_and_filters_by_parent(api: httpx.Client, project: Path) -> None:
    [parent] = api.post("/api/tasks", json=task_body(project, "parent")).json()["tasks"]
    batch = {
        "tasks": [task_body(project, f"child-{i}", parent_task_id=parent["id"]) for i in range(5)]
    }
    children = api.post("/api/tasks", json=batch).json()["tasks"]
    first = api.get("/api/tasks", params={"parent": parent["id"][:8], "limit": 3}).json()["tasks"]
    rest = api.get("/api/tasks", params={"parent": parent["id"], "offset": 3}).json()["tasks"]
    assert len(first) == 3
    assert len(rest) == 2
    assert {t["id"] for t in first + rest} == {c["id"] for c in children}
    everything = api.get("/api/tasks", params={"limit": 1000}).json()["tasks"]
    assert len(everything) == 6
    assert api.get("/api/tasks", params={"parent": "nope-nope"}).status_code == 404


def test_list_filters_by_project_and_tags(
    api: httpx.Client, make_repo: MakeRepo, settings: Settings, store: Store
) -> None:
    web, cli = make_repo("web"), make_repo("cli")
    batch = {
        "tasks": [
            task_body(web, "w-ui", tags=["ui", "urgent"]),
            task_body(web, "w-db", tags=["db"]),
            task_body(cli, "c-ui", tags=["ui"]),
            {"name": "scratch", "agent": {"instructions": "x"}, "tags": ["urgent"]},
        ]
    }
    assert api.post("/api/tasks", json=batch).status_code == 201
    Service(settings, store).save_project(Project(name="web", dir=str(web)), create=True)

    def names(**params: str | list[str]) -> set[str]:
        response = api.get("/api/tasks", params=params)
        assert response.status_code == 200, response.text
        return {t["name"] for t in response.json()["tasks"]}

    assert names(project="web") == {"w-ui", "w-db"}
    assert names(project=str(cli)) == {"c-ui"}
    assert names(tag="ui") == {"w-ui", "c-ui"}
    assert names(tag=["ui", "urgent"]) == {"w-ui"}
    assert names(tag="urgent", project="web") == {"w-ui"}
    assert names(tag="nothing") == set()
    unknown = api.get("/api/tasks", params={"project": "no-such-project"})
    assert unknown.status_code == 404
    assert "no-such-project" in unknown.json()["error"]
    # an edit moves the task between filters
    [c_ui] = api.get("/api/tasks", params={"tag": "ui", "project": str(cli)}).json()["tasks"]
    edited = api.patch(f"/api/tasks/{c_ui['id']}", json={"tags": ["db"]})
    assert edited.status_code == 200, edited.text
    assert names(tag="db") == {"w-db", "c-ui"}
    assert names(tag="ui") == {"w-ui"}
    # a deleted task leaves no tag behind
    assert api.delete(f"/api/tasks/{c_ui['id']}").status_code == 204
    assert names(tag="db") == {"w-db"}


def test_bad_tags_are_refused_naming_the_tag(api: httpx.Client, project: Path) -> None:
    for tags, message in (([" padded"], "blank"), (["x" * 101], "at most 100"), ([""], "at least")):
        response = api.post("/api/tasks", json=task_body(project, "t", tags=tags))
        assert response.status_code == 422, response.text
        assert "tags.0" in response.text
        assert message in response.text
    assert api.get("/api/tasks").json()["tasks"] == []


def test_drafts_are_stored_pending_and_submitted_later(api: httpx.Client, project: Path) -> None:
    created = api.post("/api/tasks", params={"submit": "false"}, json=task_body(project, "draft"))
    assert created.status_code == 201, created.text
    [draft] = created.json()["tasks"]
    assert draft["state"] == "PENDING"
    edited = api.patch(f"/api/tasks/{draft['id']}", json={"priority": "high"})
    assert edited.json()["priority"] == "high"
    submitted = api.post(f"/api/tasks/{draft['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "QUEUED"
    again = api.post(f"/api/tasks/{draft['id']}/submit")
    assert again.status_code == 409
    assert "QUEUED" in again.json()["error"]
    history = api.get(f"/api/tasks/{draft['id']}").json()["events"]
    assert [(e["from_state"], e["to_state"]) for e in history] == [
        (None, "PENDING"),
        ("PENDING", "QUEUED"),
    ]


def test_diff_of_an_execution_that_delivered_nothing_is_404(
    api: httpx.Client, store: Store, project: Path, tmp_path: Path
) -> None:
    [task] = api.post("/api/tasks", json=task_body(project)).json()["tasks"]
    assert api.get("/api/executions/nope/diff").status_code == 404
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    execution = store.add_execution(
        Execution(task_id=task["id"], stdout_path=str(log_dir / "stdout.log"))
    )
    (log_dir / "changes.diff").write_text("stale")  # without commits it is not served
    listed = api.get(f"/api/tasks/{task['id'][:8]}/executions")
    assert [e["id"] for e in listed.json()] == [execution.id]
    assert api.get("/api/tasks/nope-nope/executions").status_code == 404
    response = api.get(f"/api/executions/{execution.id}/diff")
    assert response.status_code == 404
    assert "diff" in response.json()["error"]


def test_the_list_says_where_to_follow_the_events_from(
    api: httpx.Client, store: Store, project: Path
) -> None:
    assert api.get("/api/tasks").json()["last_event_id"] == 0
    [task] = api.post("/api/tasks", json=task_body(project)).json()["tasks"]
    page = api.get("/api/tasks").json()
    history = api.get(f"/api/tasks/{task['id']}").json()["events"]
    assert page["last_event_id"] == max(e["id"] for e in history)
    store.transition(task["id"], TaskState.RUNNING, "claimed")
    newer = store.events_since(page["last_event_id"])
    assert [(e.task_id, e.to_state) for e in newer] == [(task["id"], TaskState.RUNNING)]


# -- issue 11 items 11, 12, 13 (fix/valid) -----------------------------------------------------


def test_every_problem_of_a_body_at_once(api: httpx.Client, project: Path) -> None:
    body = task_body(project, timeout="forever", depends_on=["nope"], story_id="nope")
    refused = api.post("/api/tasks", json=body)
    assert refused.status_code == 422
    fields = {p["field"] for p in refused.json()["problems"]}
    assert {"timeout", "depends_on", "story_id"} <= fields


def test_refusals_say_the_state_and_what_allows_it(api: httpx.Client, project: Path) -> None:
    [task] = api.post("/api/tasks", json=task_body(project, name="named-one")).json()["tasks"]
    retry = api.post(f"/api/tasks/{task['id']}/retry")
    assert retry.status_code == 409
    assert retry.json()["error"] == (
        f"task {task['id']} is QUEUED: only FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED "
        "tasks can be retried"
    )
    answer = api.post(f"/api/tasks/{task['id']}/answer", json={"answer": "yes"})
    assert "is QUEUED, not BLOCKED" in answer.json()["error"]
    assert api.get("/api/tasks/named-one").json()["task"]["id"] == task["id"]


def test_a_body_that_is_not_json_says_how_to_send_it(api: httpx.Client) -> None:
    refused = api.post("/api/tasks", content=b"name: x", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 422
    assert "Content-Type: application/json" in refused.json()["error"]
    assert "valid dictionary" not in refused.json()["error"]
