"""A table of bad inputs for every entry point: a clear error naming what and where; nothing
stored. Task files and the config go through the real CLI; the rest over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from robust import Served
from typer.testing import CliRunner

from claudomator.cli import app
from claudomator.config import Settings
from claudomator.store import Store
from conftest import MakeRepo

SECRET = "s3cret"


@pytest.fixture
def places(tmp_path: Path, make_repo: MakeRepo) -> dict[str, Path]:
    """A workspace root with a project in it, a project outside it, a symlink leading out."""
    inside = make_repo("ws/project")
    outside = make_repo("outside")
    (tmp_path / "ws" / "escape").symlink_to(outside)
    return {"ws": tmp_path / "ws", "inside": inside, "outside": outside}


def task_count(db: Path) -> int:
    if not db.exists():
        return 0
    store = Store.open(db)
    try:
        return len(store.list_tasks(limit=10_000))
    finally:
        store.close()


# -- task files (claudomator run) ------------------------------------------------------------

TASK_FILES: dict[str, tuple[str | bytes, list[str]]] = {
    "invalid yaml": ("name: [unclosed", ["invalid YAML", "line"]),
    "not utf-8": (b"name: \xff\xfe\n", ["not UTF-8"]),
    "empty": ("", ["empty"]),
    "unknown key": ("name: x\ncolour: red\nagent: {instructions: i}", ["colour", "unknown key"]),
    "no instructions": ("name: x\nagent: {type: claude}", ["agent.instructions", "missing"]),
    "unknown agent": ("name: x\nagent: {type: robot, instructions: i}", ["agent.type", "robot"]),
    "bad timeout": ("name: x\ntimeout: forever\nagent: {instructions: i}", ["timeout"]),
    "absurd timeout": ("name: x\ntimeout: 100000000\nagent: {instructions: i}", ["at most"]),
    "NUL in instructions": (
        'name: x\nagent: {instructions: "a\\0b"}',
        ["agent.instructions", "NUL"],
    ),
    "NUL in a name": ('name: "a\\0"\nagent: {instructions: i}', ["name", "NUL"]),
    "id traversal": ("id: ../../etc/passwd\nname: x\nagent: {instructions: i}", ["id"]),
    "missing project": (
        "name: x\nagent: {instructions: i, project_dir: /nonexistent/p}",
        ["agent.project_dir", "does not exist"],
    ),
    "cycle": (
        "tasks:\n- {name: a, depends_on: [b], agent: {instructions: i}}\n"
        "- {name: b, depends_on: [a], agent: {instructions: i}}",
        ["depends_on", "cycle"],
    ),
    "outside workspace": (
        "name: x\nagent: {instructions: i, project_dir: {outside}}",
        ["agent.project_dir", "outside workspace_root"],
    ),
    "dot-dot out of the workspace": (
        "name: x\nagent: {instructions: i, project_dir: {ws}/project/../../outside}",
        ["agent.project_dir", "outside workspace_root"],
    ),
    "symlink out of the workspace": (
        "name: x\nagent: {instructions: i, project_dir: {ws}/escape}",
        ["agent.project_dir", "outside workspace_root"],
    ),
}


@pytest.mark.parametrize("case", list(TASK_FILES))
def test_bad_task_file(
    case: str,
    tmp_path: Path,
    places: dict[str, Path],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'workspace_root = "{places["ws"]}"\n')
    monkeypatch.setenv("CLAUDOMATOR_CONFIG", str(config))
    content, words = TASK_FILES[case]
    taskfile = tmp_path / "tasks.yaml"
    if isinstance(content, bytes):
        taskfile.write_bytes(content)
    else:
        taskfile.write_text(
            content.replace("{outside}", str(places["outside"])).replace("{ws}", str(places["ws"]))
        )
    result = CliRunner().invoke(app, ["run", str(taskfile)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert str(taskfile) in text
    for word in words:
        assert word in text, text
    assert task_count(settings.db_path) == 0


# -- the TOML config -------------------------------------------------------------------------

CONFIGS = {
    "invalid toml": ("max_concurrent = ", ["invalid TOML"]),
    "unknown key": ("colour = 1", ["colour"]),
    "wrong type": ('max_concurrent = "many"', ["max_concurrent"]),
    "out of range": ("max_concurrent = 0", ["max_concurrent"]),
    "bad duration": ('default_timeout = "soon"', ["default_timeout"]),
    "bad choice": ('on_restart = "explode"', ["on_restart"]),
    "project outside workspace": (
        'workspace_root = "{ws}"\n[[projects]]\nname = "p"\ndir = "{outside}"',
        ["projects.0.dir", "outside workspace_root"],
    ),
}


@pytest.mark.parametrize("case", [*CONFIGS, "missing file"])
def test_bad_config(
    case: str,
    tmp_path: Path,
    places: dict[str, Path],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    if case == "missing file":
        words = ["does not exist"]
    else:
        content, words = CONFIGS[case]
        config.write_text(content.format(ws=places["ws"], outside=places["outside"]))
    monkeypatch.setenv("CLAUDOMATOR_CONFIG", str(config))
    taskfile = tmp_path / "ok.yaml"
    taskfile.write_text(f"name: x\nagent: {{instructions: i, project_dir: {places['inside']}}}")
    result = CliRunner().invoke(app, ["run", str(taskfile)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert str(config) in text
    for word in words:
        assert word in text, text
    assert task_count(settings.db_path) == 0


# -- the HTTP API: bodies, query parameters, file names, webhooks ------------------------------


@pytest.fixture
def api(settings: Settings, store: Store, places: dict[str, Path]) -> Iterator[httpx.Client]:
    confined = settings.model_copy(
        update={"workspace_root": places["ws"], "webhook_secret": SECRET}
    )
    with Served(confined, store) as served, httpx.Client(base_url=served.url) as client:
        yield client


def agent(project: object) -> dict[str, object]:
    return {"instructions": "i", "project_dir": str(project)}


API_CASES: dict[str, tuple[str, str, dict[str, object], int, list[str]]] = {
    # name: (method, path, request kwargs, status, words in the error)
    "body not json": (
        "POST", "/api/tasks",
        {"content": b"{nope", "headers": {"Content-Type": "application/json"}}, 422, ["JSON"],
    ),
    "body an array": ("POST", "/api/tasks", {"json": []}, 422, ["body"]),
    "no agent": ("POST", "/api/tasks", {"json": {"name": "x"}}, 422, ["agent"]),
    "unknown field": (
        "POST", "/api/tasks", {"json": {"name": "x", "agent": agent("{inside}"), "colour": 1}},
        422, ["colour"],
    ),
    "relative project": (
        "POST", "/api/tasks", {"json": {"name": "x", "agent": agent("rel/dir")}},
        422, ["agent.project_dir", "absolute"],
    ),
    "project outside workspace": (
        "POST", "/api/tasks", {"json": {"name": "x", "agent": agent("{outside}")}},
        422, ["agent.project_dir", "outside workspace_root"],
    ),
    "dot-dot out of the workspace": (
        "POST", "/api/tasks", {"json": {"name": "x", "agent": agent("{ws}/project/../../outside")}},
        422, ["agent.project_dir", "outside workspace_root"],
    ),
    "symlink out of the workspace (batch)": (
        "POST", "/api/tasks",
        {"json": {"tasks": [{"name": "ok", "agent": agent("{inside}")},
                            {"name": "x", "agent": agent("{ws}/escape")}]}},
        422, ["outside workspace_root"],
    ),
    "id traversal": (
        "POST", "/api/tasks", {"json": {"id": "../../x", "name": "x", "agent": agent("{inside}")}},
        422, ["id"],
    ),
    "negative timeout": (
        "POST", "/api/tasks", {"json": {"name": "x", "timeout": -5, "agent": agent("{inside}")}},
        422, ["timeout"],
    ),
    "unknown dependency": (
        "POST", "/api/tasks",
        {"json": {"name": "x", "depends_on": ["nope"], "agent": agent("{inside}")}},
        422, ["unknown task id", "nope"],
    ),
    "unknown parent": (
        "POST", "/api/tasks",
        {"json": {"name": "x", "parent_task_id": "nope", "agent": agent("{inside}")}},
        422, ["nope"],
    ),
    "unknown story": (
        "POST", "/api/tasks",
        {"json": {"name": "x", "story_id": "nope", "agent": agent("{inside}")}},
        422, ["story_id", "nope"],
    ),
    "patch project outside workspace": (
        "PATCH", "/api/tasks/{existing}", {"json": {"agent": {"project_dir": "{outside}"}}},
        422, ["agent.project_dir", "outside workspace_root"],
    ),
    "project dir relative": (
        "POST", "/api/projects", {"json": {"name": "p", "dir": "rel"}}, 422, ["dir", "absolute"],
    ),
    "project dir outside workspace": (
        "POST", "/api/projects", {"json": {"name": "p", "dir": "{outside}"}},
        422, ["dir", "outside workspace_root"],
    ),
    "project dir dot-dot": (
        "POST", "/api/projects", {"json": {"name": "p", "dir": "{ws}/../outside"}},
        422, ["dir", "outside workspace_root"],
    ),
    "limit zero": ("GET", "/api/tasks", {"params": {"limit": 0}}, 422, ["limit"]),
    "limit not a number": ("GET", "/api/tasks", {"params": {"limit": "ten"}}, 422, ["limit"]),
    "offset negative": ("GET", "/api/tasks", {"params": {"offset": -1}}, 422, ["offset"]),
    "unknown state": ("GET", "/api/tasks", {"params": {"state": "BOGUS"}}, 422, ["state"]),
    "unknown parent filter": ("GET", "/api/tasks", {"params": {"parent": "zzzz"}}, 404, ["zzzz"]),
    "task id traversal": ("GET", "/api/tasks/..%2F..%2Fetc%2Fpasswd", {}, 404, ["Not Found"]),
    "task id dot-dot": ("GET", "/api/tasks/..", {}, 404, ["Not Found"]),
    "task id backslashes": ("GET", "/api/tasks/..%5C..%5Cetc", {}, 404, ["no task", "etc"]),
    "execution id traversal": (
        "GET", "/api/executions/..%2F..%2Fetc%2Fpasswd/log", {}, 404, ["Not Found"],
    ),
    "execution id backslashes": (
        "GET", "/api/executions/..%5Cetc/log", {}, 404, ["no execution", "etc"],
    ),
    "log stream not a stream": (
        "GET", "/api/executions/x/log", {"params": {"stream": "../passwd"}}, 422, ["stream"],
    ),
    "log offset negative": (
        "GET", "/api/executions/x/log", {"params": {"offset": -1}}, 422, ["offset"],
    ),
    "answer empty": (
        "POST", "/api/tasks/{existing}/answer", {"json": {"answer": ""}}, 422, ["answer"],
    ),
    "webhook unsigned": (
        "POST", "/api/webhooks/github", {"json": {}, "headers": {"X-GitHub-Event": "ping"}},
        401, ["X-Hub-Signature-256"],
    ),
    "webhook body not json": ("POST", "/api/webhooks/github", {"signed": b"{nope"}, 400, ["JSON"]),
    "webhook body an array": ("POST", "/api/webhooks/github", {"signed": b"[1]"}, 400, ["object"]),
    "webhook without event": (
        "POST", "/api/webhooks/github", {"signed": b"{}", "event": ""}, 400, ["X-GitHub-Event"],
    ),
    "webhook form without payload": (
        "POST", "/api/webhooks/github",
        {"signed": b"a=1", "content_type": "application/x-www-form-urlencoded"},
        400, ["payload"],
    ),
    "webhook repository traversal": (
        "POST", "/api/webhooks/github",
        {"signed": json.dumps({
            "action": "completed",
            "check_run": {"name": "ci", "conclusion": "failure", "head_sha": "ab" * 20,
                          "html_url": "https://github.com/x/y", "output": {}},
            "repository": {"name": "../../etc", "full_name": "../../etc"},
        }).encode(), "event": "check_run"},
        202, ["matches no project"],
    ),
}  # fmt: skip


def _fill(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        for key, path in names.items():
            value = value.replace("{" + key + "}", path)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def test_bad_api_inputs(api: httpx.Client, places: dict[str, Path], store: Store) -> None:
    """Every case of ``API_CASES`` against one server (a server per case would be slow)."""
    existing = api.post("/api/tasks", json={"name": "existing", "agent": agent(places["inside"])})
    assert existing.status_code == 201, existing.text
    existing_id = existing.json()["tasks"][0]["id"]
    before = store.get_task(existing_id)
    names = {k: str(v) for k, v in places.items()} | {"existing": existing_id}
    failures = []
    for case, (method, path, kwargs, status, words) in API_CASES.items():
        response = api.request(method, str(_fill(path, names)), **_request(kwargs, names))
        error = " ".join(response.text.split())
        if response.status_code != status:
            failures.append(f"{case}: {response.status_code} (not {status}) {error}")
        missing = [w for w in words if w not in error]
        if missing:
            failures.append(f"{case}: the error does not say {missing}: {error}")
        if [t.id for t in store.list_tasks(limit=100)] != [existing_id]:
            failures.append(f"{case}: a task was stored")
            break
        if store.get_task(existing_id) != before:
            failures.append(f"{case}: the existing task changed")
            break
        if store.projects():
            failures.append(f"{case}: a project was stored")
            break
    assert not failures, "\n".join(failures)


def _request(kwargs: dict[str, object], names: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments for a case; ``signed`` bodies get a valid GitHub signature."""
    filled = _fill(kwargs, names)
    assert isinstance(filled, dict)
    if "signed" not in filled:
        return filled
    body = filled["signed"]
    assert isinstance(body, bytes)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content": body,
        "headers": {
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Event": filled.get("event", "check_run"),
            "Content-Type": filled.get("content_type", "application/json"),
        },
    }
