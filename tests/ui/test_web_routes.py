"""The web UI's server side: page paths answer the shell, files are served from the package
only, the service worker may control the whole origin, and nothing there needs the token."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.service import Service
from claudomator.store import Store
from claudomator.web import STATIC_DIR, ui_url


@pytest.fixture
def client(settings: Settings, store: Store) -> TestClient:
    guarded = settings.model_copy(update={"api_token": "s3cret"})
    # the app answers to the names it listens on, not TestClient's default "testserver"
    return TestClient(create_app(Service(guarded, store), guarded), base_url="http://127.0.0.1")


@pytest.mark.parametrize(
    "path", ["/", "/new", "/projects", "/stories", "/agents", "/tasks/abc", "/tasks/abc/edit"]
)
def test_every_page_path_answers_the_shell_without_a_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert client.get("/api/tasks").status_code == 401  # the data still needs it


def test_static_files_and_the_service_worker(client: TestClient) -> None:
    for module in sorted((STATIC_DIR / "js").glob("*.js")):
        response = client.get(f"/static/js/{module.name}")
        assert response.status_code == 200, module.name
        assert response.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    worker = client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["service-worker-allowed"] == "/"
    assert "notificationclick" in worker.text


@pytest.mark.parametrize(
    "path",
    ["/static/nope.js", "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/js"],
)
def test_nothing_outside_the_static_folder_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_the_ui_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()["paths"]
    assert not [p for p in paths if not p.startswith(("/api/", "/metrics"))]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8484/"),
        ("0.0.0.0", "http://127.0.0.1:8484/"),
        ("", "http://127.0.0.1:8484/"),
        ("::1", "http://[::1]:8484/"),
        ("example.org", "http://example.org:8484/"),
    ],
)
def test_ui_url(host: str, url: str) -> None:
    assert ui_url(host, 8484) == url
    assert httpx.URL(url).port == 8484


@pytest.mark.parametrize("path", ["/nope", "/tasks/abc/nope", "/apis", "/static-files", "/a/b/c"])
def test_an_unknown_page_path_answers_the_shell_with_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in response.text  # "page not found"
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/static/js/nope.js", "/metrics/x"])
def test_unknown_api_and_file_paths_keep_a_json_404(client: TestClient, path: str) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    response = client.get(path, headers=auth)
    assert response.status_code == 404
    assert "error" in response.json()
    assert client.post("/api/nope", headers=auth).status_code == 404
    assert client.get("/favicon.ico").headers["content-type"].startswith("application/json")
