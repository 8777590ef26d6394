"""Settings from a real TOML file plus the environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pydantic
import pytest

from claudomator.config import (
    DEFAULT_CONFIG,
    Settings,
    config_path,
    load_settings,
    write_default_config,
)
from claudomator.errors import ConfigError
from claudomator.models import Delivery, Project


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return {"CLAUDOMATOR_DATA_DIR": str(data_dir)}


def test_defaults_without_a_file(env: dict[str, str], data_dir: Path) -> None:
    s = load_settings(env)
    assert s.data_dir == data_dir
    assert s.claude_binary_path == "claude"
    assert s.gemini_binary_path == "gemini"
    assert s.max_concurrent == 3
    assert s.agent_limits == {}
    assert s.default_timeout == 3600.0
    assert s.kill_grace_seconds == 10.0
    assert s.server_addr == "127.0.0.1:8484"
    assert s.workspace_root is None
    assert s.projects == ()
    assert s.local_model.endpoint == ""
    assert s.local_model.timeout_seconds == 120.0
    assert s.db_path == data_dir / "claudomator.db"
    assert s.logs_dir == data_dir / "logs"
    assert s.sandboxes_dir == data_dir / "sandboxes"
    assert s.scratch_dir == data_dir / "workspace"
    assert s.api_url == "http://127.0.0.1:8484"


def test_reads_config_toml_in_the_data_dir(env: dict[str, str], data_dir: Path) -> None:
    _write(data_dir / "config.toml", "max_concurrent = 5\nworkspace_root = '/srv/ws'\n")
    s = load_settings(env)
    assert s.max_concurrent == 5
    assert s.workspace_root == Path("/srv/ws")
    assert s.scratch_dir == Path("/srv/ws")


def test_env_data_dir_overrides_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = _write(tmp_path / "cfg.toml", f"data_dir = '{tmp_path / 'from-file'}'\n")
    s = load_settings({**env, "CLAUDOMATOR_CONFIG": str(cfg)})
    assert s.data_dir == tmp_path / "data"


def test_file_data_dir_used_without_env(tmp_path: Path, isolated_env: Path) -> None:
    cfg = _write(tmp_path / "cfg.toml", "data_dir = '~/claudo'\n")
    s = load_settings({"CLAUDOMATOR_CONFIG": str(cfg)})
    assert s.data_dir == isolated_env / "claudo"  # ~ expanded against the isolated HOME


def test_config_env_names_the_file(tmp_path: Path, env: dict[str, str], data_dir: Path) -> None:
    _write(data_dir / "config.toml", "max_concurrent = 5\n")
    named = _write(tmp_path / "elsewhere" / "mine.toml", "max_concurrent = 7\n")
    environ = {**env, "CLAUDOMATOR_CONFIG": str(named)}
    assert config_path(environ) == named
    assert load_settings(environ).max_concurrent == 7


def test_config_path_defaults_to_the_data_dir(env: dict[str, str], data_dir: Path) -> None:
    assert config_path(env) == data_dir / "config.toml"


def test_named_but_missing_file_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_settings({**env, "CLAUDOMATOR_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = _write(tmp_path / "broken.toml", "max_concurrent = = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_settings({**env, "CLAUDOMATOR_CONFIG": str(cfg)})
    assert str(info.value).startswith(f"{cfg}:")
    assert isinstance(info.value.__cause__, tomllib.TOMLDecodeError)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("max_concurent = 3\n", "max_concurent"),
        ("max_concurrent = 'many'\n", "max_concurrent"),
        ("max_concurrent = 0\n", "max_concurrent"),
        ("kill_grace_seconds = -1\n", "kill_grace_seconds"),
        ("default_timeout = 'soon'\n", "default_timeout"),
        ("[local_model]\nbogus = 1\n", "local_model.bogus"),
        ("[local_model]\ndefault_temperature = 3\n", "local_model.default_temperature"),
        ("[agent_limits]\nclaude = 'two'\n", "agent_limits.claude"),
        ("[[projects]]\nname = 'p'\n", "projects.0.dir"),
        ("[[projects]]\nname = 'p'\ndir = '/p'\ndelivery = 'email'\n", "projects.0.delivery"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, env: dict[str, str], toml: str, key: str) -> None:
    cfg = _write(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_settings({**env, "CLAUDOMATOR_CONFIG": str(cfg)})
    message = str(info.value)
    assert message.startswith(f"{cfg}:")
    assert re.search(rf"(^|[ ;]){re.escape(key)}:", message), message


def test_projects_agent_limits_and_local_model(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = _write(
        tmp_path / "c.toml",
        """
default_timeout = "1h30m"
server_addr = "0.0.0.0:9000"

[agent_limits]
claude = 2
gemini = 1

[[projects]]
name = "webapp"
dir = "/home/me/src/webapp"
build_command = ["make", "check"]
delivery = "branch"

[[projects]]
name = "lib"
dir = "/home/me/src/lib"

[local_model]
endpoint = "http://127.0.0.1:11434/v1"
model = "qwen2.5-coder:7b"
api_key = "k"
timeout_seconds = 30
default_temperature = 0.7
prefer_for_elaborate = true
""",
    )
    s = load_settings({**env, "CLAUDOMATOR_CONFIG": str(cfg)})
    assert s.default_timeout == 5400.0
    assert s.agent_limits == {"claude": 2, "gemini": 1}
    assert s.projects == (
        Project(
            name="webapp",
            dir="/home/me/src/webapp",
            build_command=("make", "check"),
            delivery=Delivery.BRANCH,
        ),
        Project(name="lib", dir="/home/me/src/lib"),
    )
    assert s.projects[1].build_command == ()
    assert s.projects[1].delivery == Delivery.AUTO
    lm = s.local_model
    assert lm.endpoint == "http://127.0.0.1:11434/v1"
    assert lm.model == "qwen2.5-coder:7b"
    assert lm.api_key == "k"
    assert lm.timeout_seconds == 30.0
    assert lm.default_temperature == 0.7
    assert lm.prefer_for_elaborate is True
    assert s.api_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(("value", "seconds"), [("'1h30m'", 5400.0), ("90", 90.0), ("2.5", 2.5)])
def test_default_timeout_forms(
    tmp_path: Path, env: dict[str, str], value: str, seconds: float
) -> None:
    cfg = _write(tmp_path / "c.toml", f"default_timeout = {value}\n")
    assert load_settings({**env, "CLAUDOMATOR_CONFIG": str(cfg)}).default_timeout == seconds


# -- the default config file ------------------------------------------------------------------


def test_write_default_config_loads_back_to_the_defaults(
    tmp_path: Path, env: dict[str, str], data_dir: Path
) -> None:
    path = write_default_config(data_dir / "config.toml", data_dir)
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert f'# data_dir = "{data_dir}"' in text
    assert all(not line.strip() or line.startswith("#") for line in text.splitlines())
    assert load_settings(env) == load_settings({**env, "CLAUDOMATOR_CONFIG": "/dev/null"})
    assert load_settings(env) == Settings(data_dir=data_dir)


def test_write_default_config_refuses_to_overwrite(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "config.toml", "max_concurrent = 9\n")
    with pytest.raises(ConfigError, match="already exists"):
        write_default_config(path, data_dir)
    assert path.read_text(encoding="utf-8") == "max_concurrent = 9\n"
    write_default_config(path, data_dir, force=True)
    assert path.read_text(encoding="utf-8") == DEFAULT_CONFIG.format(data_dir=data_dir)


def test_write_default_config_creates_parent_dirs(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "a" / "b" / "config.toml", tmp_path)
    assert path.is_file()


@pytest.mark.parametrize(
    "key",
    [
        "claude_binary_path",
        "gemini_binary_path",
        "max_concurrent",
        "default_timeout",
        "kill_grace_seconds",
        "server_addr",
        "webhook_url",
        "webhook_secret",
        "api_token",
    ],
)
def test_commented_values_are_the_real_defaults(tmp_path: Path, key: str) -> None:
    """The header says "the values shown are the defaults": uncommenting must change nothing."""
    lines = [ln for ln in DEFAULT_CONFIG.splitlines() if ln.startswith(f"# {key} = ")]
    assert len(lines) == 1, lines
    raw = tomllib.loads(lines[0][2:])
    shown = Settings.model_validate({"data_dir": tmp_path, **raw})
    assert getattr(shown, key) == getattr(Settings(data_dir=tmp_path), key)


# -- Settings helpers -------------------------------------------------------------------------


def test_project_for_matches_after_resolving(tmp_path: Path) -> None:
    real = tmp_path / "src" / "webapp"
    real.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    webapp = Project(name="webapp", dir=str(tmp_path / "src" / ".." / "src" / "webapp"))
    other = Project(name="other", dir=str(tmp_path / "other"))
    s = Settings(data_dir=tmp_path, projects=(other, webapp))
    assert s.project_for(str(real)) == webapp
    assert s.project_for(str(real) + "/") == webapp
    assert s.project_for(str(link)) == webapp
    assert s.project_for(str(tmp_path / "src")) is None
    assert s.project_for("") is None


def test_project_for_expands_home(tmp_path: Path, isolated_env: Path) -> None:
    (isolated_env / "proj").mkdir()
    proj = Project(name="p", dir="~/proj")
    s = Settings(data_dir=tmp_path, projects=(proj,))
    assert s.project_for(str(isolated_env / "proj")) == proj


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("127.0.0.1:8484", "http://127.0.0.1:8484"),
        ("[::]:9000", "http://127.0.0.1:9000"),
        (":7000", "http://127.0.0.1:7000"),
        ("example.org:80", "http://example.org:80"),
        ("[::1]:8484", "http://[::1]:8484"),
    ],
)
def test_api_url(tmp_path: Path, addr: str, url: str) -> None:
    assert Settings(data_dir=tmp_path, server_addr=addr).api_url == url


def test_settings_are_frozen_and_strict(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    with pytest.raises(pydantic.ValidationError):
        s.max_concurrent = 9  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Settings.model_validate({"data_dir": tmp_path, "nope": 1})


def test_conftest_settings_use_the_isolated_data_dir(settings: Settings, tmp_path: Path) -> None:
    assert settings.data_dir == tmp_path / "data"
