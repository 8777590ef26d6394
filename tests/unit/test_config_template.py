"""The default config file's commented examples are valid config: every example table and key,
uncommented, loads (so what `claudomator init` shows a user can be used as it is)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from claudomator.config import load_settings
from claudomator.config.template import write_default_config

_TABLE = re.compile(r"^# (\[\[?[A-Za-z0-9_.\"-]+\]\]?)\s*$")
_KEY = re.compile(r"^# ([a-z_]+ = .*)$")


def uncommented(text: str) -> str:
    """The example tables and keys of the template, uncommented (prose stays out): the keys
    outside any example table first, as TOML wants top-level keys, then the tables."""
    top: list[str] = []
    tables: list[str] = []
    table = False  # in an example table, until the next blank line
    for line in text.splitlines():
        if not line.strip():
            table = False
        elif not line.startswith("#"):
            top.append(line)
        elif header := _TABLE.match(line):
            table = True
            tables.append(header.group(1))
        elif key := _KEY.match(line):
            (tables if table else top).append(key.group(1))
    return "\n".join([*top, *tables]) + "\n"


def test_every_example_in_the_default_config_loads(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "config.toml", tmp_path / "data")
    example = uncommented(path.read_text(encoding="utf-8"))
    raw = tomllib.loads(example)
    assert {"isolation", "agents", "projects", "retention", "local_model"} <= set(raw)
    assert set(raw["agents"]) >= {"claude", "gemini", "codex", "qwen"}
    config = tmp_path / "example.toml"
    config.write_text(example, encoding="utf-8")
    settings = load_settings({"CLAUDOMATOR_CONFIG": str(config)})
    assert settings.isolation.launcher == "auto"
    assert settings.agents["codex"].api_key_env == "OPENAI_API_KEY"
    [project] = settings.projects
    assert project.read_only_paths == ("/srv/cache/npm",)
