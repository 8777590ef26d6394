"""Drafting a task from a request: ``POST /api/tasks/elaborate`` over real HTTP (a served app,
a real SQLite store, a real OpenAI-compatible fake server), and ``claudomator elaborate`` run as
a real process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI

from claudomator.api import create_app
from claudomator.config import LocalModelSettings, Settings, load_settings
from claudomator.llm import LLMClient
from claudomator.models import Project, TaskState
from claudomator.service import Service
from claudomator.store import Store
from claudomator.taskfile import load_taskfile, parse_tasks
from conftest import MakeRepo
from fakes.openai_server import FakeOpenAI, JsonReply, Reply

SPEC: dict[str, Any] = {
    "name": "csv-export",
    "description": "Users asked for a CSV export of reports.",
    "agent": {
        "type": "claude",
        "instructions": "Add a CSV export to the reports page.\nAdd tests for it.",
        "max_budget_usd": 2.5,
    },
    "timeout": "20m",
    "priority": "high",
    "tags": ["backend"],
    "acceptance_criteria": "The export has a unit test.",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An app served by uvicorn in a thread."""

    def __init__(self, app: FastAPI, llm: LLMClient | None = None) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.llm = llm  # the app's model client: closed here, its owner, in the server's loop
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        finally:
            if self.llm is not None:
                await self.llm.aclose()

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


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo("webapp")


@pytest.fixture
def configured(
    settings: Settings, fake_openai: FakeOpenAI, project: Path, tmp_path: Path
) -> Settings:
    """A local model on the fake server, the project `webapp`, and no agent CLIs."""
    return settings.model_copy(
        update={
            "local_model": LocalModelSettings(endpoint=fake_openai.url, model="spec-model"),
            "projects": (Project(name="webapp", dir=str(project)),),
            "claude_binary_path": str(tmp_path / "no-such-claude"),
            "gemini_binary_path": str(tmp_path / "no-such-gemini"),
        }
    )


@pytest.fixture
def api(configured: Settings, store: Store) -> Iterator[httpx.Client]:
    service = Service(configured, store)
    llm = LLMClient(configured.local_model)  # as serve hands the app its runtime's
    app = create_app(service, configured, llm=llm)
    with Served(app, llm) as served, httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


# -- the API ---------------------------------------------------------------------------------


def test_a_spec_is_drafted_and_nothing_is_stored(
    api: httpx.Client, fake_openai: FakeOpenAI, project: Path
) -> None:
    fake_openai.set_script([JsonReply({**SPEC, "depends_on": ["x"]})])
    response = api.post(
        "/api/tasks/elaborate", json={"prompt": "add a CSV export", "project": "webapp"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "local"
    assert body["attempts"] == []
    assert body["notes"] == ["dropped unknown key 'depends_on'"]
    spec = body["spec"]
    assert spec["name"] == "csv-export"
    assert spec["agent"]["project_dir"] == str(project.resolve())
    assert spec["agent"]["instructions"] == SPEC["agent"]["instructions"]
    [request] = fake_openai.chat_requests
    assert request.body["response_format"] == {"type": "json_object"}
    assert "add a CSV export" in request.messages[-1]["content"]
    assert api.get("/api/tasks").json()["tasks"] == []  # drafting stores nothing
    created = api.post("/api/tasks", json=spec)  # the reviewed spec is what /api/tasks takes
    assert created.status_code == 201, created.text
    [task] = created.json()["tasks"]
    assert task["state"] == TaskState.QUEUED.value
    assert task["timeout"] == 1200
    assert task["agent"]["project_dir"] == str(project.resolve())


def test_a_project_added_over_the_api_is_known_by_name(
    api: httpx.Client, fake_openai: FakeOpenAI, make_repo: MakeRepo
) -> None:
    other = make_repo("service")
    added = api.post("/api/projects", json={"name": "service", "dir": str(other)})
    assert added.status_code == 201, added.text
    fake_openai.set_script([JsonReply(SPEC)])
    response = api.post(
        "/api/tasks/elaborate", json={"prompt": "add a CSV export", "project": "service"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["agent"]["project_dir"] == str(other.resolve())
    assert "service at" in fake_openai.chat_requests[-1].messages[-1]["content"]
    unknown = api.post("/api/tasks/elaborate", json={"prompt": "x", "project": "nope"})
    assert unknown.status_code == 422
    assert "webapp, service" in unknown.json()["error"]


def test_every_backend_failing_is_502_with_each_reason(
    api: httpx.Client, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.set_script([Reply("Happy to help! First, ...")])
    response = api.post("/api/tasks/elaborate", json={"prompt": "do the thing"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["error"].startswith("no backend produced a valid task spec")
    attempts = body["attempts"]
    assert [a["backend"] for a in attempts] == ["local", "claude", "gemini"]
    assert "did not reply with a JSON object" in attempts[0]["reason"]
    assert attempts[1]["reason"] == (
        f"'{tmp_path / 'no-such-claude'}' not found (set [agents.claude] binary_path)"
    )
    assert "not found (set [agents.gemini] binary_path)" in attempts[2]["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "body.prompt"),
        ({"prompt": "   "}, "body.prompt"),
        ({}, "body.prompt"),
        ({"prompt": "x" * 20001}, "body.prompt"),
        ({"prompt": "x", "colour": "red"}, "body.colour"),
        ({"prompt": "x", "project": "nope"}, "project"),
        ({"prompt": "x", "project": "/no/such/dir"}, "project"),
    ],
)
def test_bad_requests_are_422_and_ask_no_model(
    api: httpx.Client, fake_openai: FakeOpenAI, body: dict[str, object], field: str
) -> None:
    response = api.post("/api/tasks/elaborate", json=body)
    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["problems"]]
    assert fake_openai.chat_requests == []


def test_the_served_app_has_the_route_and_its_openapi_entry(
    configured: Settings, store: Store, fake_openai: FakeOpenAI
) -> None:
    service = Service(configured, store)
    llm = LLMClient(configured.local_model)  # as serve hands the app its runtime's
    app = create_app(service, configured, llm=llm)  # the route comes with the app
    fake_openai.set_script([JsonReply(SPEC)])
    with Served(app, llm) as served, httpx.Client(base_url=served.url, timeout=60) as client:
        assert client.post("/api/tasks/elaborate", json={"prompt": "p"}).status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert "/api/tasks/elaborate" in paths
    assert "502" in paths["/api/tasks/elaborate"]["post"]["responses"]


# -- the command line ------------------------------------------------------------------------

# `claudomator elaborate` exists once claudomator.cli imports claudomator.cli.intake; import it
# here explicitly so the test does not depend on that wiring.
ENTRY = "import claudomator.cli.intake; from claudomator.cli import main; main()"


def elaborate_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, "elaborate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(fake_openai: FakeOpenAI, project: Path, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{tmp_path / "no-such-claude"}"\n'
        f'gemini_binary_path = "{tmp_path / "no-such-gemini"}"\n'
        f'[[projects]]\nname = "webapp"\ndir = "{project}"\n'
        f'[local_model]\nendpoint = "{fake_openai.url}"\nmodel = "spec-model"\n',
        encoding="utf-8",
    )
    return {**os.environ, "CLAUDOMATOR_CONFIG": str(config)}


def test_cli_prints_a_ready_task_file_and_writes_it(
    cli_env: dict[str, str], fake_openai: FakeOpenAI, project: Path, tmp_path: Path
) -> None:
    fake_openai.set_script([JsonReply(SPEC)])
    out = tmp_path / "task.yaml"
    done = elaborate_cli(
        "add a CSV export", "--project", "webapp", "--out", str(out), env=cli_env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Drafted by local (`claudomator elaborate`).")
    assert "  instructions: |-\n    Add a CSV export to the reports page.\n" in done.stdout
    assert "description: Users asked" in done.stdout
    assert "model:" not in done.stdout  # empty fields are left out
    assert out.read_text(encoding="utf-8") == done.stdout
    assert f"Wrote {out}" in done.stderr
    [task] = load_taskfile(out)
    assert task.name == "csv-export"
    assert task.agent.project_dir == str(project.resolve())
    assert task.agent.instructions == SPEC["agent"]["instructions"]
    assert task.timeout == 1200
    assert stored_tasks() == []


def test_cli_submit_queues_the_task(
    cli_env: dict[str, str], fake_openai: FakeOpenAI, project: Path, tmp_path: Path
) -> None:
    fake_openai.set_script([JsonReply(SPEC)])
    done = elaborate_cli("add a CSV export", "-p", "webapp", "--submit", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [task] = stored_tasks()
    assert task.state == TaskState.QUEUED
    assert task.agent.project_dir == str(project.resolve())
    assert f"Queued csv-export ({task.id[:8]})." in done.stderr
    assert parse_tasks(yaml.safe_load(done.stdout), source="out", base_dir=tmp_path)


def test_cli_takes_a_relative_project_directory(
    cli_env: dict[str, str], fake_openai: FakeOpenAI, project: Path
) -> None:
    fake_openai.set_script([JsonReply(SPEC)])
    done = elaborate_cli("x", "--project", project.name, env=cli_env, cwd=project.parent)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["agent"]["project_dir"] == str(project.resolve())


def test_cli_failing_backends_exit_1_with_each_reason(
    cli_env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.set_script([Reply("not JSON")])
    done = elaborate_cli("do the thing", env=cli_env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "No backend produced a valid task:" in done.stderr
    assert "  local: the model did not reply with a JSON object" in done.stderr
    assert "  claude: " in done.stderr
    assert "  gemini: " in done.stderr
    assert "not found (set [agents.gemini] binary_path)" in done.stderr.replace("\n", "")


def test_cli_unknown_project_exits_2(
    cli_env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    done = elaborate_cli("x", "--project", "nope", env=cli_env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "unknown project 'nope'" in done.stderr
    assert fake_openai.chat_requests == []


def stored_tasks() -> list[Any]:
    settings = load_settings()
    if not settings.db_path.exists():
        return []
    store = Store.open(settings.db_path)
    try:
        return list(store.list_tasks())
    finally:
        store.close()
