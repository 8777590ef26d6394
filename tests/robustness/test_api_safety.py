"""Who may do what over the API, and what it refuses to take: each case over real HTTP on
127.0.0.1 against a real store, checking the answer names the problem and nothing is stored."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from robust import Served

from claudomator.config import Settings
from claudomator.store import Store
from conftest import MakeRepo

SECRET = "s3cret"
TOKEN = "the-api-token"
DEEP = 200_000


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
