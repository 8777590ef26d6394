"""A task file's ``isolation:`` and a config file's ``[[projects]]`` confinement fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudomator.config import load_settings
from claudomator.errors import ConfigError, TaskFileError
from claudomator.models import TaskIsolation
from claudomator.taskfile import parse_tasks


def test_a_task_file_sets_its_isolation(tmp_path: Path) -> None:
    document = {
        "name": "t",
        "agent": {"instructions": "x"},
        "isolation": {"launcher": "bubblewrap", "network": "model-only"},
    }
    [task] = parse_tasks(document, source="tasks.yaml", base_dir=tmp_path)
    assert task.isolation == TaskIsolation(launcher="bubblewrap", network="model-only")
    bare_task = {"name": "u", "agent": {"instructions": "y"}}
    [bare] = parse_tasks(bare_task, source="f", base_dir=tmp_path)
    assert bare.isolation == TaskIsolation()


@pytest.mark.parametrize(
    ("isolation", "field", "said"),
    [
        ({"launcher": "docker"}, "isolation.launcher", "is not a launcher"),
        ({"network": "closed"}, "isolation.network", "is not a network policy"),
        ({"paths": ["/x"]}, "isolation.paths", "expected one of: launcher, network"),
    ],
)
def test_a_bad_isolation_names_the_file_task_and_field(
    tmp_path: Path, isolation: dict[str, object], field: str, said: str
) -> None:
    document = {"name": "t", "agent": {"instructions": "x"}, "isolation": isolation}
    with pytest.raises(TaskFileError) as caught:
        parse_tasks(document, source="tasks.yaml", base_dir=tmp_path)
    text = str(caught.value)
    assert f"tasks.yaml:t:{field}" in text
    assert said in text


def _load(tmp_path: Path, text: str) -> object:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings({"CLAUDOMATOR_CONFIG": str(config), "CLAUDOMATOR_DATA_DIR": str(tmp_path)})


def test_a_configured_project_sets_its_confinement(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[[projects]]\nname = "web"\ndir = "/srv/web"\nlauncher = "bubblewrap"\n'
        'network = "model-only"\nread_only_paths = ["/srv/cache"]\n'
        'allowed_endpoints = ["https://registry.npmjs.org"]\n',
    )
    [project] = settings.projects  # type: ignore[attr-defined]
    assert (project.launcher, project.network) == ("bubblewrap", "model-only")
    assert project.read_only_paths == ("/srv/cache",)
    assert project.allowed_endpoints == ("https://registry.npmjs.org",)


def test_a_configured_project_s_bad_path_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, '[[projects]]\nname = "web"\ndir = "/srv/web"\nread_only_paths = ["c"]\n')
    assert "read_only_paths" in str(caught.value)
    assert "is not an absolute path" in str(caught.value)
