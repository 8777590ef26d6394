"""Projects over the API, next to those of the config file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_api_tasks import Served

from claudomator import projects
from claudomator.config import Settings, load_settings
from claudomator.errors import ConfigError
from claudomator.models import Delivery, Project
from claudomator.store import Store
from conftest import MakeRepo


def test_project_crud_next_to_config_projects(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    configured_dir = make_repo("configured")
    api_dir = make_repo("webapp")
    cfg = settings.model_copy(
        update={"projects": (Project(name="configured", dir=str(configured_dir)),)}
    )
    with Served(cfg, store) as served, httpx.Client(base_url=served.url) as client:
        body = {"name": "webapp", "dir": str(api_dir), "build_command": ["make", "check"]}
        created = client.post("/api/projects", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "api"
        assert client.post("/api/projects", json=body).status_code == 409
        clash = {"name": "configured", "dir": str(api_dir)}
        assert client.post("/api/projects", json=clash).status_code == 409
        listed = client.get("/api/projects").json()["projects"]
        assert [(p["name"], p["source"]) for p in listed] == [
            ("configured", "config"),
            ("webapp", "api"),
        ]
        replaced = client.put(
            "/api/projects/webapp",
            json={"name": "ignored", "dir": str(api_dir), "delivery": "branch", "review": True},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["name"] == "webapp"
        # the pool finds API projects by directory (build command, delivery, review)
        found = projects.by_dir(cfg, store, str(api_dir))
        assert found is not None
        assert (found.delivery, found.review) == (Delivery.BRANCH, True)
        bad = client.post("/api/projects", json={"name": "x", "dir": "relative/dir"})
        assert bad.status_code == 422
        missing = client.post("/api/projects", json={"name": "x", "dir": str(tmp_path / "nope")})
        assert missing.status_code == 422
        assert client.post("/api/projects", json={"name": "x"}).status_code == 422
        assert client.put("/api/projects/configured", json=clash).status_code == 422
        assert client.delete("/api/projects/configured").status_code == 422
        assert client.get("/api/projects/configured").json()["source"] == "config"
        assert client.delete("/api/projects/webapp").status_code == 204
        assert client.get("/api/projects/webapp").status_code == 404
        assert client.delete("/api/projects/webapp").status_code == 404


def test_project_names_are_repository_names(
    settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    repo = make_repo("webapp")
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        for name in ("../etc", "web app", "a/b/c", ".hidden", "owner/.."):
            refused = client.post("/api/projects", json={"name": name, "dir": str(repo)})
            assert refused.status_code == 422, (name, refused.text)
            assert "is not a project name" in refused.json()["error"]
        owned = client.post("/api/projects", json={"name": "octo-org/webapp", "dir": str(repo)})
        assert owned.status_code == 201, owned.text
    assert [p.name for p in store.projects()] == ["octo-org/webapp"]


def test_a_config_file_with_a_bad_project_name_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[projects]]\nname = "my app"\ndir = "{tmp_path}"\n')
    with pytest.raises(ConfigError, match="is not a project name"):
        load_settings({"CLAUDOMATOR_CONFIG": str(config), "CLAUDOMATOR_DATA_DIR": str(tmp_path)})
