"""Who may do what over the API, and what it refuses to take: each case over real HTTP on
127.0.0.1 against a real store, checking the answer names the problem and nothing is stored."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from robust import Served, free_port

from claudomator import tokens
from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.errors import ConfigError
from claudomator.models import Commit, Execution, TaskState, utcnow
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo

SECRET = "s3cret"
TOKEN = "the-api-token"
DEEP = 200_000
CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo("project")


def _task(project: Path | str, name: str = "t", **fields: object) -> dict[str, object]:
    return {"name": name, "agent": {"instructions": "do it", "project_dir": str(project)}, **fields}


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "check_run",
        "Content-Type": "application/json",
    }


def _deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


# -- 14: bad input is a 4xx naming the field, and nothing is stored ---------------------------


@pytest.fixture
def api(settings: Settings, store: Store) -> Iterator[httpx.Client]:
    configured = settings.model_copy(update={"webhook_secret": SECRET})
    with Served(configured, store) as served, httpx.Client(base_url=served.url) as client:
        yield client


def _post_raw(client: httpx.Client, text: str) -> httpx.Response:
    """POST a task whose JSON is written by hand (lone surrogates, NaN, Infinity)."""
    headers = {"Content-Type": "application/json"}
    return client.post("/api/tasks", content=text.encode("ascii"), headers=headers)


BAD_TASKS: dict[str, tuple[str, list[str]]] = {
    # name: (JSON body with {project} filled in, words the error must hold)
    "NUL in project_dir": (
        '{"name": "t", "agent": {"instructions": "i", "project_dir": "{project}\\u0000x"}}',
        ["agent.project_dir", "NUL"],
    ),
    "lone surrogate in name": (
        '{"name": "a\\ud800b", "agent": {"instructions": "i", "project_dir": "{project}"}}',
        ["name", "unicode"],
    ),
    "lone surrogate in a tag": (
        '{"name": "t", "tags": ["\\udfff"], "agent": {"instructions": "i",'
        ' "project_dir": "{project}"}}',
        ["tags", "unicode"],
    ),
    "NUL in instructions": (
        '{"name": "t", "agent": {"instructions": "do\\u0000it", "project_dir": "{project}"}}',
        ["agent.instructions", "NUL"],
    ),
    "NUL in additional_args": (
        '{"name": "t", "agent": {"instructions": "i", "project_dir": "{project}",'
        ' "additional_args": ["--x", "a\\u0000b"]}}',
        ["agent.additional_args", "NUL"],
    ),
    "timeout 1e308": (
        '{"name": "t", "timeout": 1e308, "agent": {"instructions": "i",'
        ' "project_dir": "{project}"}}',
        ["timeout", "at most 2592000"],
    ),
    "timeout Infinity": (
        '{"name": "t", "timeout": Infinity, "agent": {"instructions": "i",'
        ' "project_dir": "{project}"}}',
        ["timeout", "finite"],
    ),
    "timeout NaN": (
        '{"name": "t", "timeout": NaN, "agent": {"instructions": "i", "project_dir": "{project}"}}',
        ["timeout"],
    ),
    "timeout negative": (
        '{"name": "t", "timeout": -1, "agent": {"instructions": "i", "project_dir": "{project}"}}',
        ["timeout", "positive"],
    ),
    "budget Infinity": (
        '{"name": "t", "agent": {"instructions": "i", "project_dir": "{project}",'
        ' "max_budget_usd": Infinity}}',
        ["agent.max_budget_usd"],
    ),
    "budget 1e308": (
        '{"name": "t", "agent": {"instructions": "i", "project_dir": "{project}",'
        ' "max_budget_usd": 1e308}}',
        ["agent.max_budget_usd", "100000"],
    ),
    "max_tokens huge": (
        '{"name": "t", "agent": {"instructions": "i", "project_dir": "{project}",'
        ' "max_tokens": 100000000000}}',
        ["agent.max_tokens", "10000000"],
    ),
}


def test_bad_task_fields_are_refused_by_name(
    api: httpx.Client, project: Path, store: Store
) -> None:
    failures = []
    for case, (body, words) in BAD_TASKS.items():
        response = _post_raw(api, body.replace("{project}", str(project)))
        error = response.text
        if response.status_code != 422:
            failures.append(f"{case}: {response.status_code} (not 422) {error[:300]}")
        missing = [w for w in words if w.lower() not in error.lower()]
        if missing:
            failures.append(f"{case}: the error does not say {missing}: {error[:300]}")
        if store.list_tasks(limit=10):
            failures.append(f"{case}: a task was stored")
            break
    assert not failures, "\n".join(failures)


def test_patch_and_answer_refuse_nul_too(api: httpx.Client, project: Path, store: Store) -> None:
    created = api.post("/api/tasks", json=_task(project), params={"submit": "false"})
    assert created.status_code == 201, created.text
    task_id = created.json()["tasks"][0]["id"]
    before = store.get_task(task_id)
    patched = api.patch(f"/api/tasks/{task_id}", json={"agent": {"instructions": "a\x00b"}})
    assert patched.status_code == 422, patched.text
    assert "agent.instructions" in patched.text
    deep = api.patch(f"/api/tasks/{task_id}", json={"timeout": 1e308})
    assert deep.status_code == 422, deep.text
    assert "timeout" in deep.text
    answered = api.post(f"/api/tasks/{task_id}/answer", json={"answer": "x\x00"})
    assert answered.status_code == 422, answered.text
    assert "answer" in answered.text
    assert store.get_task(task_id) == before


def test_a_signed_webhook_nested_200000_deep_is_a_400(api: httpx.Client, store: Store) -> None:
    body = _deep(DEEP)
    response = api.post("/api/webhooks/github", content=body, headers=_signed(body))
    assert response.status_code == 400, response.text[:300]
    assert "nested too deeply" in response.json()["error"]
    assert store.list_tasks(limit=10) == []


def test_the_token_is_checked_before_the_body_is_read(
    settings: Settings, store: Store, project: Path
) -> None:
    guarded = settings.model_copy(update={"api_token": TOKEN})
    with Served(guarded, store) as served, httpx.Client(base_url=served.url) as client:
        body = _deep(DEEP)
        headers = {"Content-Type": "application/json"}
        refused = client.post("/api/tasks", content=body, headers=headers)
        assert refused.status_code == 401, refused.text[:300]
        assert "API token" in refused.json()["error"]
        nul = _post_raw(client, '{"name": "\\u0000"}')
        assert nul.status_code == 401
        authorised = client.post(
            "/api/tasks", content=body, headers=headers | {"Authorization": f"Bearer {TOKEN}"}
        )
        assert 400 <= authorised.status_code < 500, authorised.text[:300]
    assert store.list_tasks(limit=10) == []


# -- 10: DNS rebinding and cross-site requests ------------------------------------------------


def test_a_foreign_host_is_refused_and_nothing_is_stored(
    api: httpx.Client, project: Path, store: Store
) -> None:
    rebound = {"Host": "evil.example:8484"}
    created = api.post("/api/tasks", json=_task(project), headers=rebound)
    assert created.status_code == 403, created.text
    error = created.json()["error"]
    assert "evil.example" in error
    assert "allowed_hosts" in error
    assert api.get("/api/tasks", headers=rebound).status_code == 403
    assert api.get("/", headers=rebound).status_code == 403  # the UI's page: same origin rules
    assert store.list_tasks(limit=10) == []
    port = api.base_url.port
    for name in ("127.0.0.1", "localhost", "[::1]"):
        assert api.get("/api/health", headers={"Host": f"{name}:{port}"}).status_code == 200


def test_a_cross_site_state_change_is_refused(
    api: httpx.Client, project: Path, store: Store
) -> None:
    port = api.base_url.port
    assert port is not None
    for origin in (
        "http://evil.example",
        f"http://localhost:{port + 1}",  # another local server's page
        "null",  # a sandboxed frame or a file:// page
        f"ftp://127.0.0.1:{port}",
    ):
        refused = api.post("/api/tasks", json=_task(project), headers={"Origin": origin})
        assert refused.status_code == 403, (origin, refused.text)
        assert "Origin" in refused.json()["error"]
    assert store.list_tasks(limit=10) == []
    # a read with a foreign Origin is the browser's business (no CORS headers: it cannot read)
    assert api.get("/api/tasks", headers={"Origin": "http://evil.example"}).status_code == 200
    same = api.post(
        "/api/tasks", json=_task(project), headers={"Origin": f"http://127.0.0.1:{port}"}
    )
    assert same.status_code == 201, same.text
    plain = api.post("/api/tasks", json=_task(project, "curl"))  # no Origin: curl, agents
    assert plain.status_code == 201, plain.text


def test_configured_names_are_allowed(settings: Settings, store: Store, project: Path) -> None:
    named = settings.model_copy(update={"allowed_hosts": ("claudomator.example.com",)})
    with Served(named, store) as served, httpx.Client(base_url=served.url) as client:
        proxied = {"Host": "claudomator.example.com", "Origin": "https://claudomator.example.com"}
        created = client.post("/api/tasks", json=_task(project), headers=proxied)
        assert created.status_code == 201, created.text
        assert client.get("/api/tasks", headers={"Host": "other.example.com"}).status_code == 403


def test_the_signed_webhook_is_exempt_from_the_host_check(api: httpx.Client) -> None:
    body = b'{"zen": "hi", "repository": {"name": "r", "full_name": "o/r"}}'
    headers = _signed(body) | {"X-GitHub-Event": "ping", "Host": "hooks.example.org"}
    pong = api.post("/api/webhooks/github", content=body, headers=headers)
    assert pong.status_code == 200, pong.text
    assert pong.json()["pong"] is True
    unsigned = {"X-GitHub-Event": "ping", "Host": "hooks.example.org"}
    assert api.post("/api/webhooks/github", content=body, headers=unsigned).status_code == 401


def test_serve_refuses_a_network_address_without_a_token(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    env = dict(os.environ, CLAUDOMATOR_CONFIG=str(config))
    done = subprocess.run(
        [CLAUDOMATOR, "serve", "--addr", f"0.0.0.0:{free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    error = " ".join(done.stderr.split())
    assert "api_token" in error, error
    assert "0.0.0.0" in error, error
    assert "Traceback" not in done.stderr


def test_create_app_on_a_network_address_needs_a_token(settings: Settings, store: Store) -> None:
    service = Service(settings, store)
    with pytest.raises(ConfigError, match="api_token"):
        create_app(service, settings, listen_host="192.0.2.10")
    guarded = settings.model_copy(update={"api_token": TOKEN})
    app = create_app(Service(guarded, store), guarded, listen_host="0.0.0.0")
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/api/health").status_code == 200
    lan = TestClient(app, base_url="http://192.0.2.10")  # an interface's address: configure it
    assert lan.get("/api/health").status_code == 403


# -- 11: an agent token is valid only while its execution runs, inside its parent's project ----


class Running:
    """A task RUNNING with one execution, as a pool leaves it while the agent works."""

    def __init__(self, client: httpx.Client, store: Store, project: Path | str, name: str) -> None:
        created = client.post(
            "/api/tasks", json=_task(project, name), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert created.status_code == 201, created.text
        self.task_id: str = created.json()["tasks"][0]["id"]
        self.store = store
        store.transition(self.task_id, TaskState.RUNNING, "claimed")
        self.execution = store.add_execution(Execution(task_id=self.task_id))
        key = _key()
        self.token = tokens.mint(key, self.task_id, self.execution.id)
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def end(self) -> None:
        done = self.execution.model_copy(
            update={"status": TaskState.COMPLETED, "end_time": utcnow(), "exit_code": 0}
        )
        self.store.save_execution(done)
        self.store.transition(self.task_id, TaskState.COMPLETED, "done")


def _key() -> bytes:
    """The agent-token key of the test's data dir (the one ``settings`` and ``store`` use)."""
    return tokens.token_key(Path(os.environ["CLAUDOMATOR_DATA_DIR"]))


@pytest.fixture(params=["with api_token", "without api_token"])
def served(
    request: pytest.FixtureRequest, settings: Settings, store: Store
) -> Iterator[httpx.Client]:
    token = TOKEN if request.param == "with api_token" else ""
    configured = settings.model_copy(update={"api_token": token})
    with Served(configured, store) as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_the_token_of_an_ended_execution_is_refused(
    served: httpx.Client, store: Store, project: Path
) -> None:
    parent = Running(served, store, project, "parent")
    assert served.get(f"/api/tasks/{parent.task_id}", headers=parent.auth).status_code == 200
    made = served.post("/api/tasks", json=_task(project, "child"), headers=parent.auth)
    assert made.status_code == 201, made.text
    parent.end()
    count = len(store.list_tasks(limit=100))
    late = served.post("/api/tasks", json=_task(project, "late"), headers=parent.auth)
    assert late.status_code == 401, late.text
    assert "expired" in late.json()["error"]
    assert parent.execution.id in late.json()["error"]
    assert served.get(f"/api/tasks/{parent.task_id}", headers=parent.auth).status_code == 401
    assert len(store.list_tasks(limit=100)) == count


def test_a_token_for_another_tasks_execution_is_refused(
    served: httpx.Client, store: Store, project: Path
) -> None:
    one, two = Running(served, store, project, "one"), Running(served, store, project, "two")
    key = _key()
    crossed = tokens.mint(key, one.task_id, two.execution.id)  # validly signed, wrong pairing
    headers = {"Authorization": f"Bearer {crossed}"}
    refused = served.post("/api/tasks", json=_task(project, "x"), headers=headers)
    assert refused.status_code == 401, refused.text
    forged = {"Authorization": f"Bearer {tokens.mint(b'k' * 32, one.task_id, one.execution.id)}"}
    assert served.post("/api/tasks", json=_task(project), headers=forged).status_code == 401
    legacy = {"Authorization": f"Bearer ct1.{one.task_id}.{'0' * 40}"}
    assert served.post("/api/tasks", json=_task(project), headers=legacy).status_code == 401
    assert served.get("/api/tasks", headers=one.auth).status_code == 403  # the token's limits
    assert {t.name for t in store.list_tasks(limit=100)} == {"one", "two"}


def test_a_subtask_stays_in_its_parents_project(
    served: httpx.Client, store: Store, project: Path, make_repo: MakeRepo
) -> None:
    other = make_repo("other")
    parent = Running(served, store, project, "parent")
    for where in ("/", str(other), str(project / "sub")):
        (project / "sub").mkdir(exist_ok=True)
        refused = served.post("/api/tasks", json=_task(where, "escape"), headers=parent.auth)
        assert refused.status_code == 403, (where, refused.text)
        error = refused.json()["error"]
        assert "agent.project_dir" in error
        assert "subtasks_any_project" in error
    assert [t.name for t in store.list_tasks(limit=100)] == ["parent"]
    inherit = {"name": "inherit", "agent": {"instructions": "do it"}}
    made = served.post("/api/tasks", json=inherit, headers=parent.auth)
    assert made.status_code == 201, made.text
    [child] = made.json()["tasks"]
    assert child["agent"]["project_dir"] == str(project.resolve())
    assert child["parent_task_id"] == parent.task_id
    same = served.post("/api/tasks", json=_task(project, "same"), headers=parent.auth)
    assert same.status_code == 201, same.text


def test_subtasks_any_project_lets_an_operator_allow_more(
    settings: Settings, store: Store, project: Path, make_repo: MakeRepo
) -> None:
    other = make_repo("other")
    configured = settings.model_copy(update={"api_token": TOKEN, "subtasks_any_project": True})
    with Served(configured, store) as server, httpx.Client(base_url=server.url) as client:
        parent = Running(client, store, project, "parent")
        made = client.post("/api/tasks", json=_task(other, "elsewhere"), headers=parent.auth)
        assert made.status_code == 201, made.text


FAKE_AGENT = """#!{python}
import json, os
with open(os.environ["TOKEN_OUT"], "w") as fh:
    fh.write(os.environ["CLAUDOMATOR_API_TOKEN"])
text = "## Summary\\nDone."
for event in (
    {{"type": "system", "subtype": "init", "model": "fake"}},
    {{"type": "assistant", "message": {{"content": [{{"type": "text", "text": text}}]}}}},
    {{"type": "result", "subtype": "success", "is_error": False, "result": text,
      "total_cost_usd": 0.0, "usage": {{"input_tokens": 1, "output_tokens": 1}}}},
):
    print(json.dumps(event), flush=True)
"""


def test_the_token_an_agent_was_given_dies_with_its_run(
    tmp_path: Path, settings: Settings, store: Store, project: Path
) -> None:
    agent = tmp_path / "fake-claude"
    agent.write_text(FAKE_AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    config = tmp_path / "config.toml"
    # unconfined: the fake agent hands its token to the test through a file outside its sandbox
    config.write_text(f'claude_binary_path = "{agent}"\n[isolation]\nlauncher = "plain"\n')
    taskfile = tmp_path / "task.yaml"
    taskfile.write_text(
        f"name: t\nagent: {{type: claude, instructions: i, project_dir: {project}}}\n"
    )
    out = tmp_path / "token"
    env = dict(os.environ, CLAUDOMATOR_CONFIG=str(config), TOKEN_OUT=str(out))
    done = subprocess.run(
        [CLAUDOMATOR, "run", str(taskfile)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    token = out.read_text()
    assert token.startswith("ct2.")
    [task] = store.list_tasks(limit=10)
    assert task.state == TaskState.COMPLETED
    [execution] = store.executions_of(task.id)
    assert tokens.grant_of(_key(), token) == tokens.AgentGrant(task.id, execution.id)
    with Served(settings, store) as server, httpx.Client(base_url=server.url) as client:
        late = client.post(
            "/api/tasks", json=_task(project, "late"), headers={"Authorization": f"Bearer {token}"}
        )
    assert late.status_code == 401, late.text
    assert len(store.list_tasks(limit=10)) == 1


# -- 12: the docs, the metrics and every route need the token; logs follow no symlink ---------


def test_every_route_and_the_docs_need_the_token(settings: Settings, store: Store) -> None:
    guarded = settings.model_copy(update={"api_token": TOKEN})
    app = create_app(Service(guarded, store), guarded)
    with Served(guarded, store) as server, httpx.Client(base_url=server.url) as client:
        open_ = []
        for path, operations in app.openapi()["paths"].items():
            concrete = path.replace("{", "x").replace("}", "x")
            for method in operations:
                answer = client.request(method.upper(), concrete, content=b"{}")
                if answer.status_code != 401:
                    open_.append(f"{method.upper()} {path}: {answer.status_code}")
        assert open_ == ["GET /api/health: 200"]  # the webhook refuses unsigned deliveries itself
        for path in ("/openapi.json", "/metrics"):
            assert client.get(path).status_code == 401, path
            authorised = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert authorised.status_code == 200, path
        # the docs page is a shell that fetches /openapi.json with the token: no data in it
        page = client.get("/docs")
        assert page.status_code == 200
        assert "/paths" not in page.text
        assert "Claudomator API" in page.text
        assert client.get("/redoc").status_code == 404  # ReDoc needs a CDN: not offered
        assert client.get("/").status_code == 200  # the web UI's shell holds no data
        assert client.get("/static/js/api.js").status_code == 200


def test_the_log_api_follows_no_symlink_the_agent_planted(
    api: httpx.Client, store: Store, settings: Settings, project: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "home" / "secret.txt"
    secret.write_text("TOP SECRET")
    [task] = api.post("/api/tasks", json=_task(project)).json()["tasks"]
    executions = {}

    def execution(kind: str) -> str:
        made = Execution(
            task_id=task["id"],
            commits=(Commit(hash="ab" * 20, message="m"),),
            status=TaskState.COMPLETED,
            end_time=utcnow(),  # ended: following its log ends too
        )
        folder = settings.logs_dir / made.id
        if kind == "folder symlink":  # the whole log folder points elsewhere
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            for name in ("stdout.log", "stderr.log", "changes.diff"):
                (elsewhere / name).symlink_to(secret)
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.symlink_to(elsewhere, target_is_directory=True)
        else:
            folder.mkdir(parents=True)
            for name in ("stdout.log", "stderr.log", "changes.diff"):
                planted = folder / name
                if kind == "symlink":
                    planted.symlink_to(secret)
                elif kind == "fifo":
                    os.mkfifo(planted)
                elif kind == "hard link":
                    os.link(secret, planted)
                else:
                    planted.write_text(f"plain {name}")
        store.add_execution(
            made.model_copy(
                update={
                    "stdout_path": str(folder / "stdout.log"),
                    "stderr_path": str(folder / "stderr.log"),
                }
            )
        )
        return made.id

    for kind in ("symlink", "fifo", "hard link", "folder symlink", "plain"):
        executions[kind] = execution(kind)
    urls = ["log", "log?stream=stderr", "diff", "log/follow"]
    failures = []
    for kind, execution_id in executions.items():
        for url in urls:
            answer = api.get(f"/api/executions/{execution_id}/{url}", timeout=5)
            expected = 200 if kind == "plain" else 403
            if answer.status_code != expected or "TOP SECRET" in answer.text:
                failures.append(f"{kind} {url}: {answer.status_code} {answer.text[:200]}")
            elif kind != "plain" and "not served" not in answer.json()["error"]:
                failures.append(f"{kind} {url}: the error does not say why: {answer.text[:200]}")
    assert not failures, "\n".join(failures)
    plain = api.get(f"/api/executions/{executions['plain']}/diff")
    assert plain.text == "plain changes.diff"


def test_a_data_dir_moved_under_the_api_is_noticed(settings: Settings, store: Store) -> None:
    with Served(settings, store) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/api/health").status_code == 200
        moved = settings.data_dir.with_name("data-moved")
        settings.data_dir.rename(moved)
        answer = client.get("/api/health")
        assert answer.status_code == 503, answer.text
        assert str(settings.data_dir) in answer.json()["error"]
        assert "moved" in answer.json()["error"]
        settings.data_dir.mkdir()  # even a fresh folder at the old place does not fool it
        assert client.get("/api/tasks").status_code == 503
    assert not tokens.key_path(settings.data_dir).exists()  # no second key was made


def test_serve_stops_when_its_data_dir_is_moved(tmp_path: Path) -> None:
    data = Path(os.environ["CLAUDOMATOR_DATA_DIR"])
    config = tmp_path / "config.toml"
    config.write_text("")
    port = free_port()
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
        env=dict(os.environ, CLAUDOMATOR_CONFIG=str(config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                assert server.poll() is None, server.communicate()[1]
                time.sleep(0.1)
        data.rename(tmp_path / "data-moved")
        _, stderr = server.communicate(timeout=20)  # it stops by itself
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    text = " ".join(stderr.split())
    assert "data dir was moved" in text, text[-2000:]
    assert not tokens.key_path(data).exists()


def test_minting_never_makes_a_second_key(tmp_path: Path) -> None:
    data = tmp_path / "served-data"
    key = tokens.token_key(data)  # what serve loaded at start
    data.rename(tmp_path / "moved")
    data.mkdir()  # the pool re-creates folders at the old place
    assert tokens.agent_token(data, "task", "execution") == ""  # no token rather than a new key
    assert not tokens.key_path(data).exists()
    token = tokens.agent_token(tmp_path / "moved", "task", "execution")
    assert tokens.grant_of(key, token) == tokens.AgentGrant("task", "execution")


def test_a_signed_webhook_with_a_nul_in_the_check_name_is_a_400(
    api: httpx.Client, store: Store, project: Path
) -> None:
    registered = api.post("/api/projects", json={"name": "project", "dir": str(project)})
    assert registered.status_code == 201, registered.text
    payload = (
        '{"action": "completed", "check_run": {"name": "ci\\u0000x", "conclusion": "failure",'
        ' "head_sha": "' + "ab" * 20 + '", "html_url": "https://github.com/o/project",'
        ' "output": {}}, "repository": {"name": "project", "full_name": "o/project"}}'
    ).encode()
    answer = api.post("/api/webhooks/github", content=payload, headers=_signed(payload))
    assert answer.status_code == 400, answer.text[:300]
    assert "NUL" in answer.json()["error"]
    assert store.list_tasks(limit=10) == []


def test_a_nul_in_the_url_is_refused_by_name(api: httpx.Client, store: Store) -> None:
    cases = {
        "/api/tasks?project=/a%00b": "query.project",
        "/api/tasks?tag=x&parent=%00": "query.parent",
        "/api/tasks/%00": "path",
        "/api/executions/x%00/log": "path",
    }
    for url, field in cases.items():
        answer = api.get(url)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["problems"][0]["field"] == field, (url, answer.text)
    assert api.put("/api/projects/a%00", json={"name": "a", "dir": "/"}).status_code == 422
    assert store.projects() == []
