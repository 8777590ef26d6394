"""The GitHub webhook over real HTTP: signed deliveries become queued CI-fix tasks.

A served app on 127.0.0.1 (the router included as ``create_app`` will), a real SQLite store,
real git repositories, and for enrichment a real fake OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from claudomator.api import create_app
from claudomator.config import LocalModelSettings, Settings
from claudomator.llm import LLMClient
from claudomator.models import Project
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git
from fakes.openai_server import FakeOpenAI, Hang, Reply

SECRET = "It's a Secret to Everybody"
SHA = "d6fde92930d4715a2b49857d24b940956b26d2d3"
CHECK_URL = "https://github.com/octo-org/webapp/actions/runs/9361803475/job/25769410432"
RUN_URL = "https://github.com/octo-org/webapp/actions/runs/9361803475"

REPOSITORY: dict[str, Any] = {
    "id": 812345678,
    "node_id": "R_kgDOMGsZTg",
    "name": "webapp",
    "full_name": "octo-org/webapp",
    "private": True,
    "owner": {"login": "octo-org", "id": 6811672, "type": "Organization"},
    "html_url": "https://github.com/octo-org/webapp",
    "default_branch": "main",
}

SENDER: dict[str, Any] = {"login": "octocat", "id": 583231, "type": "User"}

# What GitHub sends for `check_run` (action "completed"), trimmed of URL fields we never read.
CHECK_RUN_FAILED: dict[str, Any] = {
    "action": "completed",
    "check_run": {
        "id": 25769410432,
        "name": "test (3.11)",
        "node_id": "CR_kwDOMGsZTs8AAAAF_9nNgA",
        "head_sha": SHA,
        "external_id": "ca395085-040a-526b-2ce8-bdc85f692774",
        "url": "https://api.github.com/repos/octo-org/webapp/check-runs/25769410432",
        "html_url": CHECK_URL,
        "details_url": CHECK_URL,
        "status": "completed",
        "conclusion": "failure",
        "started_at": "2026-11-25T09:12:03Z",
        "completed_at": "2026-11-25T09:13:41Z",
        "output": {
            "title": "Process completed with exit code 1.",
            "summary": "2 failed, 118 passed in 31.02s",
            "text": None,
            "annotations_count": 1,
        },
        "check_suite": {
            "id": 24466307015,
            "head_branch": "feature/login",
            "head_sha": SHA,
            "status": "completed",
            "conclusion": "failure",
            "before": "8f6e4c1b1e0f7a5b2c3d4e5f60718293a4b5c6d7",
            "after": SHA,
            "pull_requests": [],
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        },
        "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        "pull_requests": [
            {
                "url": "https://api.github.com/repos/octo-org/webapp/pulls/42",
                "id": 1906584851,
                "number": 42,
                "head": {"ref": "feature/login", "sha": SHA, "repo": {"id": 812345678}},
                "base": {"ref": "main", "sha": "8f6e4c1b1e0f7a5b2c3d4e5f60718293a4b5c6d7"},
            }
        ],
    },
    "repository": REPOSITORY,
    "organization": {"login": "octo-org", "id": 6811672},
    "sender": SENDER,
}

WORKFLOW_RUN_FAILED: dict[str, Any] = {
    "action": "completed",
    "workflow_run": {
        "id": 9361803475,
        "name": "CI",
        "node_id": "WFR_kwLOMGsZTs8AAAACLgUv0w",
        "head_branch": "main",
        "head_sha": SHA,
        "path": ".github/workflows/ci.yml",
        "display_title": "Add login form",
        "run_number": 318,
        "event": "push",
        "status": "completed",
        "conclusion": "timed_out",
        "workflow_id": 98765432,
        "url": "https://api.github.com/repos/octo-org/webapp/actions/runs/9361803475",
        "html_url": RUN_URL,
        "pull_requests": [],
        "created_at": "2026-11-25T09:11:58Z",
        "updated_at": "2026-11-25T09:43:41Z",
        "run_attempt": 1,
        "run_started_at": "2026-11-25T09:11:58Z",
        "head_commit": {
            "id": SHA,
            "message": "Add login form",
            "timestamp": "2026-11-25T09:11:50Z",
        },
        "repository": {"id": 812345678, "name": "webapp", "full_name": "octo-org/webapp"},
    },
    "workflow": {
        "id": 98765432,
        "name": "CI",
        "path": ".github/workflows/ci.yml",
        "state": "active",
    },
    "repository": REPOSITORY,
    "sender": SENDER,
}

PING: dict[str, Any] = {
    "zen": "Keep it logically awesome.",
    "hook_id": 512345678,
    "hook": {
        "type": "Repository",
        "id": 512345678,
        "name": "web",
        "active": True,
        "events": ["check_run", "workflow_run"],
        "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://ci.example/"},
    },
    "repository": REPOSITORY,
    "sender": SENDER,
}


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def with_(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``payload`` with dotted paths replaced: with_(p, **{"a.b": 1})."""
    copied = copy.deepcopy(payload)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = copied
        for part in parents:
            node = node[part]
        node[last] = value
    return copied


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The API with the GitHub router, served by uvicorn in a thread."""

    def __init__(self, settings: Settings, store: Store, *, plan_timeout: float = 10.0) -> None:
        self.service = Service(settings, store)
        # the process's one model client, as serve hands it the runtime's; closed by its owner
        self.llm = LLMClient(settings.local_model)
        app = create_app(self.service, settings, github_plan_timeout=plan_timeout, llm=self.llm)
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        finally:
            await self.llm.aclose()  # in the loop its connections belong to

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


def deliver(
    client: httpx.Client,
    event: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = SECRET,
    sig: str | bytes | None = None,
    content_type: str = "application/json",
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
) -> httpx.Response:
    """POST a delivery the way GitHub does (signed with ``secret`` unless ``sig`` is given)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers: dict[str, str | bytes] = {
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/8e03811",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "512345678",
    }
    if sig is not None:
        headers["X-Hub-Signature-256"] = sig
    elif secret is not None:
        headers["X-Hub-Signature-256"] = signature(body, secret)
    raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in headers.items()}
    return client.post("/api/webhooks/github", content=body, headers=raw)


@pytest.fixture
def webapp(make_repo: MakeRepo) -> Path:
    return make_repo("webapp")


@pytest.fixture
def hooked(settings: Settings, webapp: Path) -> Settings:
    return settings.model_copy(
        update={
            "webhook_secret": SECRET,
            "projects": (Project(name="webapp", dir=str(webapp)),),
        }
    )


@pytest.fixture
def served(hooked: Settings, store: Store) -> Iterator[Served]:
    with Served(hooked, store) as server:
        yield server


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        yield http


def all_tasks(store: Store) -> list[Any]:
    return store.list_tasks()


def test_a_failed_check_run_becomes_one_queued_task(
    client: httpx.Client, store: Store, webapp: Path
) -> None:
    response = deliver(client, "check_run", CHECK_RUN_FAILED)
    assert response.status_code == 201, response.text
    task = response.json()["task"]
    assert task["state"] == "QUEUED"
    assert task["name"] == "fix CI: test (3.11) on feature/login"
    assert task["tags"] == ["ci", "github"]
    assert task["agent"]["type"] == ""  # the classifier chooses
    assert task["agent"]["project_dir"] == str(webapp)
    instructions = task["agent"]["instructions"]
    for expected in (
        "octo-org/webapp",
        "feature/login",
        SHA,
        "test (3.11)",
        "failure",
        CHECK_URL,
        "#42",
        "2 failed, 118 passed",
    ):
        assert expected in instructions
    assert "## Suggested plan" not in instructions  # no local model configured
    [stored] = all_tasks(store)
    assert stored.id == task["id"]
    assert stored.agent.instructions == instructions


def test_a_failed_workflow_run_becomes_a_task(client: httpx.Client, store: Store) -> None:
    response = deliver(client, "workflow_run", WORKFLOW_RUN_FAILED)
    assert response.status_code == 201, response.text
    task = response.json()["task"]
    assert task["name"] == "fix CI: CI on main"
    instructions = task["agent"]["instructions"]
    for expected in ("octo-org/webapp", "main", SHA, "CI", "timed_out", RUN_URL, "ci.yml"):
        assert expected in instructions
    assert len(all_tasks(store)) == 1


@pytest.mark.parametrize(
    ("sig", "secret"),
    [
        (None, None),  # no signature header
        ("", None),  # empty header
        ("sha256=" + "0" * 64, None),  # wrong digest
        (None, "another secret"),  # signed with another secret
        ("sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", None),  # the old SHA-1 header form
        (b"sha256=\xff\xe9", None),  # not even hex (raw non-ASCII bytes)
    ],
)
def test_unsigned_or_badly_signed_deliveries_are_refused(
    client: httpx.Client, store: Store, sig: str | bytes | None, secret: str | None
) -> None:
    response = deliver(client, "check_run", CHECK_RUN_FAILED, sig=sig, secret=secret)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert all_tasks(store) == []


def test_a_signature_of_another_body_is_refused(client: httpx.Client, store: Store) -> None:
    other = json.dumps(with_(CHECK_RUN_FAILED, **{"check_run.conclusion": "success"})).encode()
    response = deliver(client, "check_run", CHECK_RUN_FAILED, sig=signature(other))
    assert response.status_code == 401
    assert all_tasks(store) == []


def test_without_a_configured_secret_every_delivery_is_refused(
    hooked: Settings, store: Store
) -> None:
    unset = hooked.model_copy(update={"webhook_secret": ""})
    with Served(unset, store) as server, httpx.Client(base_url=server.url) as http:
        for secret in ("", SECRET, None):
            response = deliver(http, "check_run", CHECK_RUN_FAILED, secret=secret)
            assert response.status_code == 401
            assert "not configured" in response.json()["error"]
        assert deliver(http, "ping", PING, secret="").status_code == 401
    assert all_tasks(store) == []


def test_a_replayed_delivery_makes_no_second_task(client: httpx.Client, store: Store) -> None:
    first = deliver(client, "check_run", CHECK_RUN_FAILED)
    assert first.status_code == 201
    task_id = first.json()["task"]["id"]
    again = deliver(client, "check_run", CHECK_RUN_FAILED, delivery="another-delivery-id")
    assert again.status_code == 200
    assert again.json() == {"duplicate": task_id}
    rerun = with_(CHECK_RUN_FAILED, **{"check_run.id": 25769999999})  # a re-run, same check
    assert deliver(client, "check_run", rerun).json() == {"duplicate": task_id}
    assert [t.id for t in all_tasks(store)] == [task_id]
    # another check, or the same check on another commit, is another failure
    other_check = with_(CHECK_RUN_FAILED, **{"check_run.name": "lint"})
    assert deliver(client, "check_run", other_check).status_code == 201
    other_sha = with_(CHECK_RUN_FAILED, **{"check_run.head_sha": "a" * 40})
    assert deliver(client, "check_run", other_sha).status_code == 201
    assert len(all_tasks(store)) == 3


def test_concurrent_identical_deliveries_make_one_task(served: Served, store: Store) -> None:
    count = 6
    barrier = threading.Barrier(count)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            barrier.wait()
            response = deliver(http, "check_run", CHECK_RUN_FAILED)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (count - 1) + [201], [r.text for r in responses]
    [created] = [r.json()["task"]["id"] for r in responses if r.status_code == 201]
    assert {r.json()["duplicate"] for r in responses if r.status_code == 200} == {created}
    assert [t.id for t in all_tasks(store)] == [created]


def test_a_repository_without_a_project_is_ignored(client: httpx.Client, store: Store) -> None:
    stranger = with_(
        CHECK_RUN_FAILED,
        **{"repository.name": "billing", "repository.full_name": "octo-org/billing"},
    )
    response = deliver(client, "check_run", stranger)
    assert response.status_code == 202
    assert "octo-org/billing" in response.json()["ignored"]
    assert all_tasks(store) == []


def test_a_project_may_be_named_like_the_full_repository_name(
    settings: Settings, store: Store, webapp: Path
) -> None:
    named = settings.model_copy(
        update={
            "webhook_secret": SECRET,
            "projects": (Project(name="octo-org/webapp", dir=str(webapp)),),
        }
    )
    with Served(named, store) as server, httpx.Client(base_url=server.url) as http:
        response = deliver(http, "workflow_run", WORKFLOW_RUN_FAILED)
    assert response.status_code == 201, response.text
    assert response.json()["task"]["agent"]["project_dir"] == str(webapp)


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("check_run", with_(CHECK_RUN_FAILED, **{"check_run.conclusion": "success"}), "success"),
        (
            "check_run",
            with_(CHECK_RUN_FAILED, **{"check_run.conclusion": "cancelled"}),
            "cancelled",
        ),
        ("check_run", with_(CHECK_RUN_FAILED, action="created"), "created"),
        (
            "workflow_run",
            with_(WORKFLOW_RUN_FAILED, **{"workflow_run.conclusion": "success"}),
            "success",
        ),
        ("workflow_run", with_(WORKFLOW_RUN_FAILED, action="in_progress"), "in_progress"),
        ("push", {"ref": "refs/heads/main", "repository": REPOSITORY}, "push"),
    ],
)
def test_what_is_no_failure_is_ignored_with_a_reason(
    client: httpx.Client, store: Store, event: str, payload: dict[str, Any], reason: str
) -> None:
    response = deliver(client, event, payload)
    assert response.status_code == 202
    assert reason in response.json()["ignored"]
    assert all_tasks(store) == []


def test_ping_answers_pong_and_names_the_project(client: httpx.Client, store: Store) -> None:
    response = deliver(client, "ping", PING)
    assert response.status_code == 200
    assert response.json() == {"pong": True, "project": "webapp"}
    organisation_hook = {k: v for k, v in PING.items() if k != "repository"}
    assert deliver(client, "ping", organisation_hook).json() == {"pong": True, "project": None}
    assert all_tasks(store) == []


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", "application/json", "not JSON"),
        (b"\xff\xfe\x00", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "not an object"),
        (json.dumps({"action": "completed"}).encode(), "application/json", "check_run"),
        (
            json.dumps(with_(CHECK_RUN_FAILED, **{"check_run.head_sha": None})).encode(),
            "application/json",
            "check_run.head_sha",
        ),
        (b"zen=hello", "application/x-www-form-urlencoded", "payload"),
        (b"", "application/json", "not JSON"),
    ],
)
def test_malformed_bodies_are_refused_with_400(
    client: httpx.Client, store: Store, body: bytes, content_type: str, message: str
) -> None:
    response = deliver(client, "check_run", body, content_type=content_type)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert all_tasks(store) == []


def test_a_delivery_without_an_event_header_is_refused(client: httpx.Client) -> None:
    body = json.dumps(CHECK_RUN_FAILED).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body)}
    response = client.post("/api/webhooks/github", content=body, headers=headers)
    assert response.status_code == 400
    assert "X-GitHub-Event" in response.json()["error"]


def test_form_encoded_deliveries_work(client: httpx.Client, store: Store) -> None:
    """GitHub's default content type sends the JSON in a `payload` form field."""
    body = urlencode({"payload": json.dumps(CHECK_RUN_FAILED)}).encode()
    response = deliver(client, "check_run", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.text
    assert len(all_tasks(store)) == 1


def test_the_webhook_needs_no_api_token_but_its_signature(hooked: Settings, store: Store) -> None:
    guarded = hooked.model_copy(update={"api_token": "s3cret-token"})
    with Served(guarded, store) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/tasks").status_code == 401
        assert deliver(http, "check_run", CHECK_RUN_FAILED, secret=None).status_code == 401
        assert deliver(http, "check_run", CHECK_RUN_FAILED).status_code == 201
        schema = http.get("/openapi.json", headers={"Authorization": "Bearer s3cret-token"})
        paths = schema.json()["paths"]  # the schema is guarded like the API it describes
    assert "/api/webhooks/github" in paths


def test_neither_the_secret_nor_a_signature_is_logged(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(CHECK_RUN_FAILED).encode()
    good = signature(body)
    deliver(client, "check_run", CHECK_RUN_FAILED, sig="sha256=" + "1" * 64)
    deliver(client, "check_run", CHECK_RUN_FAILED)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "github_webhook" in text  # the route did log
    for secret in (SECRET, good, good.removeprefix("sha256="), "1" * 64):
        assert secret not in text


# -- enrichment by the local model ------------------------------------------------------------

CLAUDE_MD = "# webapp\n\nRun the tests with `make check` (pytest under tox); never edit vendor/.\n"


@pytest.fixture
def rich_webapp(tmp_path: Path) -> Path:
    repo = tmp_path / "rich" / "webapp"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "CLAUDE.md").write_text(CLAUDE_MD + "x" * 6000 + "TAIL-NOT-SENT", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs: CLAUDE.md")
    for n in range(1, 7):
        (repo / f"f{n}.txt").write_text(str(n), encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"feat: step {n}")
    git(repo, "commit", "-q", "--allow-empty", "-m", "fix(login): handle empty password")
    return repo


def enriched_settings(settings: Settings, repo: Path, endpoint: str) -> Settings:
    return settings.model_copy(
        update={
            "webhook_secret": SECRET,
            "projects": (Project(name="webapp", dir=str(repo)),),
            "local_model": LocalModelSettings(endpoint=endpoint, model="qwen2.5-coder:7b"),
        }
    )


def test_a_local_model_adds_a_project_aware_plan(
    settings: Settings, store: Store, rich_webapp: Path
) -> None:
    plan = "1. Run `make check`.\n2. Fix tests/test_login.py.\n3. Commit."
    with (
        FakeOpenAI([Reply(plan)]) as fake,
        Served(enriched_settings(settings, rich_webapp, fake.url), store) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        response = deliver(http, "check_run", CHECK_RUN_FAILED)
        [request] = fake.chat_requests
    assert response.status_code == 201, response.text
    instructions = response.json()["task"]["agent"]["instructions"]
    assert instructions.startswith("A CI check failed")
    assert f"## Suggested plan\n\n{plan}" in instructions
    sent = "\n".join(str(m["content"]) for m in request.messages)
    assert "fix(login): handle empty password" in sent  # the last commit's subject
    assert "feat: step 3" in sent  # the fifth-last commit
    assert "feat: step 2" not in sent  # the sixth-last is not
    assert "Run the tests with `make check`" in sent  # CLAUDE.md ...
    assert "TAIL-NOT-SENT" not in sent  # ... its first 4 KB only
    assert SHA in sent  # the template too
    assert "test (3.11)" in sent


def test_a_hanging_local_model_leaves_the_template(
    settings: Settings, store: Store, rich_webapp: Path
) -> None:
    hooked = enriched_settings(settings, rich_webapp, "")
    with FakeOpenAI([Hang(60), Reply("too late")]) as fake:
        hooked = hooked.model_copy(
            update={"local_model": hooked.local_model.model_copy(update={"endpoint": fake.url})}
        )
        with (
            Served(hooked, store, plan_timeout=0.5) as server,
            httpx.Client(base_url=server.url, timeout=30) as http,
        ):
            started = time.monotonic()
            response = deliver(http, "check_run", CHECK_RUN_FAILED)
            elapsed = time.monotonic() - started
        assert len(fake.chat_requests) == 1  # it was asked, and did not answer in time
    assert response.status_code == 201, response.text
    instructions = response.json()["task"]["agent"]["instructions"]
    assert "## Suggested plan" not in instructions
    assert "too late" not in instructions
    assert SHA in instructions
    assert elapsed < 5


def test_an_unreachable_local_model_leaves_the_template(
    settings: Settings, store: Store, rich_webapp: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with (
        Served(enriched_settings(settings, rich_webapp, dead), store) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        response = deliver(http, "workflow_run", WORKFLOW_RUN_FAILED)
    assert response.status_code == 201, response.text
    assert "## Suggested plan" not in response.json()["task"]["agent"]["instructions"]
