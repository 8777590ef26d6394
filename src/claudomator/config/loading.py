"""Loading :class:`~claudomator.config.settings.Settings` from the config file and the
environment (the precedence is in the package docstring)."""

from __future__ import annotations

import functools
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import platformdirs
from pydantic import ValidationError

from claudomator.config.prices import DEFAULT_PRICES
from claudomator.config.settings import Settings
from claudomator.errors import ConfigError

logger = logging.getLogger(__name__)


ENV_CONFIG = "CLAUDOMATOR_CONFIG"
ENV_DATA_DIR = "CLAUDOMATOR_DATA_DIR"
DEPRECATED_BINARY_KEYS = ("claude_binary_path", "gemini_binary_path")
"""Flat keys that ``[agents.<name>] binary_path`` replaces; still read (a warning says so)."""


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The data directory before the config file is read."""
    if environ.get(ENV_DATA_DIR):
        return Path(environ[ENV_DATA_DIR]).expanduser()
    return Path(platformdirs.user_data_dir("claudomator", appauthor=False))


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file is (it may not exist)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    return default_data_dir(env) / "config.toml"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (if any) and the environment into :class:`Settings`."""
    env = os.environ if environ is None else environ
    path = config_path(env)
    raw: dict[str, object] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    elif env.get(ENV_CONFIG):
        raise ConfigError(f"{path}: config file named by {ENV_CONFIG} does not exist")
    if env.get(ENV_DATA_DIR):
        raw["data_dir"] = env[ENV_DATA_DIR]
    prices = raw.get("prices")
    if isinstance(prices, dict):
        raw["prices"] = {**{k: v.model_dump() for k, v in DEFAULT_PRICES.items()}, **prices}
    raw.setdefault("data_dir", str(default_data_dir(env)))
    for key in DEPRECATED_BINARY_KEYS:
        if key in raw:
            _warn_deprecated(key, str(path))
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
    for index, project in enumerate(settings.projects):
        if settings.outside_workspace(project.dir):
            raise ConfigError(
                f"{path}: projects.{index}.dir: {project.dir} is outside "
                f"workspace_root {settings.workspace_root}"
            )
    return settings.model_copy(update={"data_dir": settings.data_dir.expanduser()})


@functools.cache
def _warn_deprecated(key: str, path: str) -> None:
    """Say once per process and file that a flat binary key is deprecated."""
    name = key.removesuffix("_binary_path")
    logger.warning(
        "%s: %s is deprecated; write it as binary_path in an [agents.%s] table",
        path,
        key,
        name,
        extra={"action": "config"},
    )
