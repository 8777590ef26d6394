"""Settings from a TOML file plus environment overrides, built once and passed down.

Where things come from, strongest first:

* ``CLAUDOMATOR_DATA_DIR`` overrides ``data_dir``;
* ``CLAUDOMATOR_CONFIG`` names the config file (default: ``<data dir>/config.toml``);
* the config file;
* the defaults below.
"""

from __future__ import annotations

import functools
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from claudomator.durations import parse_duration
from claudomator.errors import ConfigError
from claudomator.isolation import launcher_names
from claudomator.models import Project

logger = logging.getLogger(__name__)

ENV_CONFIG = "CLAUDOMATOR_CONFIG"
ENV_DATA_DIR = "CLAUDOMATOR_DATA_DIR"
DEPRECATED_BINARY_KEYS = ("claude_binary_path", "gemini_binary_path")
"""Flat keys that ``[agents.<name>] binary_path`` replaces; still read (a warning says so)."""


def binary_setting(agent: str) -> str:
    """The config key people are told to set for ``agent``'s binary (in messages)."""
    return f"[agents.{agent}] binary_path"


class AgentSettings(BaseModel):
    """One agent's ``[agents.<name>]`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    binary_path: str = ""  # the CLI to run (on PATH unless absolute); empty: the default


class IsolationSettings(BaseModel):
    """The ``[isolation]`` table: how agent processes are started (:mod:`claudomator.isolation`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    launcher: str = "plain"  # a module of claudomator/isolation/; "plain": no isolation

    @field_validator("launcher")
    @classmethod
    def _known(cls, value: str) -> str:
        known = launcher_names()
        if value not in known:
            raise ValueError(f"{value!r} is not a launcher; use one of: {', '.join(known)}")
        return value


class LocalModelSettings(BaseModel):
    """An OpenAI-compatible server (Ollama, LM Studio, vLLM) for cheap side jobs and text tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = ""  # e.g. http://127.0.0.1:11434/v1 ; empty: no local model
    model: str = ""
    api_key: str = ""
    timeout_seconds: float = Field(default=120.0, gt=0)
    default_temperature: float = Field(default=0.2, ge=0, le=2)
    prefer_for_elaborate: bool = False


MAX_RETENTION_DAYS = 36500


class RetentionSettings(BaseModel):
    """How long ended work is kept (see :mod:`claudomator.retention`); 0 keeps it forever."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # the log folder of each execution of a task that ended (COMPLETED, FAILED, ...) or was
    # deleted, that many days after it ended
    logs_days: int = Field(default=30, ge=0, le=MAX_RETENTION_DAYS, strict=True)
    # kept sandboxes of ended or deleted tasks (never those of PENDING, QUEUED, RUNNING,
    # BLOCKED or READY tasks)
    sandboxes_days: int = Field(default=7, ge=0, le=MAX_RETENTION_DAYS, strict=True)
    # `claudomator/*` branches in project repositories whose commits are all on another
    # branch, whose task ended or is unknown
    branches_days: int = Field(default=14, ge=0, le=MAX_RETENTION_DAYS, strict=True)
    # also branches with commits found nowhere else (work is lost): off unless set
    unmerged_branches_days: int = Field(default=0, ge=0, le=MAX_RETENTION_DAYS, strict=True)
    # how often a running orchestrator applies the policy (seconds or "1h"); 0: only `gc`
    every: float = Field(default=3600.0, ge=0)

    @field_validator("every", mode="before")
    @classmethod
    def _parse_every(cls, value: object) -> object:
        if not isinstance(value, bool) and value in (0, "0"):
            return 0.0
        return parse_duration(value) if isinstance(value, str | int | float) else value


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens, for agents that report no cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gemini-2.5-pro": ModelPrice(input_per_million=1.25, output_per_million=10.0),
    "gemini-2.5-flash": ModelPrice(input_per_million=0.30, output_per_million=2.50),
    "gemini-2.5-flash-lite": ModelPrice(input_per_million=0.10, output_per_million=0.40),
}


SQLITE_URL = "sqlite:///"  # the one kind of database_url accepted today


class Settings(BaseModel):
    """Every setting of Claudomator. Build with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    agents: dict[str, AgentSettings] = Field(default_factory=dict)  # [agents.<name>] tables
    # deprecated: [agents.claude] / [agents.gemini] binary_path (which win when both are set)
    claude_binary_path: str = "claude"
    gemini_binary_path: str = "gemini"
    max_concurrent: int = Field(default=3, ge=1)
    agent_limits: dict[str, int] = Field(default_factory=dict)  # per-agent max running
    default_timeout: float = Field(default=3600.0, gt=0)  # seconds
    kill_grace_seconds: float = Field(default=10.0, ge=0)
    on_restart: Literal["requeue", "fail"] = "requeue"  # tasks a dead orchestrator left running
    rate_limit_backoff_seconds: float = Field(default=30.0, gt=0)  # first wait without Retry-After
    rate_limit_backoff_max_seconds: float = Field(default=900.0, gt=0)
    quota_wait_seconds: float = Field(default=3600.0, gt=0)  # when a quota's reset is unknown
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    server_addr: str = "127.0.0.1:8484"
    # if set: every project directory must lie under it; project-less tasks get scratch
    # repositories there (else under <data_dir>/workspace, and projects may be anywhere)
    workspace_root: Path | None = None
    webhook_url: str = ""
    webhook_secret: str = ""
    api_token: str = ""
    # Web Push: PEM text or a path to a PEM file; empty: generated into the data dir
    vapid_private_key: str = Field(default="", repr=False)
    vapid_subject: str = "mailto:claudomator@localhost"  # who push services may contact
    projects: tuple[Project, ...] = ()
    local_model: LocalModelSettings = Field(default_factory=LocalModelSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    isolation: IsolationSettings = Field(default_factory=IsolationSettings)
    # names (besides the address serve listens on) that clients reach the API by, e.g. a
    # reverse proxy's public name: any other Host header is refused (DNS rebinding)
    allowed_hosts: tuple[str, ...] = ()
    # false: a subtask created with an agent's token works in its parent's project_dir only
    subtasks_any_project: bool = False
    # the database as a URL; only "sqlite:///<path>" today; empty: <data_dir>/claudomator.db
    database_url: str = ""

    @field_validator("vapid_subject")
    @classmethod
    def _contact(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: or https:// URL push services can contact")
        return value

    @field_validator("default_timeout", mode="before")
    @classmethod
    def _parse_timeout(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if value and not (value.startswith(SQLITE_URL) and len(value) > len(SQLITE_URL)):
            raise ValueError(
                f"{value!r} is not a supported database: use sqlite:///<path to a file> "
                "(or leave it unset for <data_dir>/claudomator.db)"
            )
        return value

    @property
    def db_path(self) -> Path:
        """The SQLite database file: ``database_url``'s path, else in the data dir."""
        if self.database_url:
            return Path(self.database_url.removeprefix(SQLITE_URL)).expanduser()
        return self.data_dir / "claudomator.db"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def sandboxes_dir(self) -> Path:
        return self.data_dir / "sandboxes"

    @property
    def scratch_dir(self) -> Path:
        return self.workspace_root or (self.data_dir / "workspace")

    @property
    def api_url(self) -> str:
        host, _, port = self.server_addr.rpartition(":")
        host = host or "127.0.0.1"
        if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - a bind-all address is reached locally
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def outside_workspace(self, project_dir: str) -> bool:
        """Whether ``project_dir`` lies outside ``workspace_root`` once ``..`` and symlinks are
        resolved (never, while ``workspace_root`` is unset)."""
        if self.workspace_root is None or not project_dir:
            return False
        root = self.workspace_root.expanduser().resolve()
        return not Path(project_dir).expanduser().resolve().is_relative_to(root)

    def agent_binary(self, name: str, default: str = "") -> str:
        """The binary of agent ``name``: ``[agents.<name>] binary_path``, else the deprecated
        flat ``<name>_binary_path``, else ``default`` (else the name itself)."""
        table = self.agents.get(name)
        if table is not None and table.binary_path:
            return table.binary_path
        flat = getattr(self, f"{name}_binary_path", None) if name.isidentifier() else None
        return flat if isinstance(flat, str) and flat else default or name

    def project_for(self, project_dir: str) -> Project | None:
        """The configured project whose ``dir`` is ``project_dir`` (after resolving), if any."""
        if not project_dir:
            return None
        wanted = Path(project_dir).expanduser().resolve()
        for project in self.projects:
            if Path(project.dir).expanduser().resolve() == wanted:
                return project
        return None


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


DEFAULT_CONFIG = """\
# Claudomator configuration. Every key is optional; the values shown are the defaults.
# The file is read from $CLAUDOMATOR_CONFIG, else <data_dir>/config.toml.

# Where the database, logs and sandboxes live. $CLAUDOMATOR_DATA_DIR overrides it.
# data_dir = "{data_dir}"

# The agent command-line tools: see the [agents.<name>] tables below. These older flat keys
# still work, but are deprecated (a warning says so); a table's binary_path wins over them.
# claude_binary_path = "claude"
# gemini_binary_path = "gemini"

# How many agents run at once, in total and per agent type.
# max_concurrent = 3
# [agent_limits]
# claude = 2

# Timeout for a task that sets none: seconds, or a duration such as "30m" or "1h30m".
# default_timeout = "1h"

# Seconds a stopped agent gets between SIGTERM and SIGKILL.
# kill_grace_seconds = 10

# Tasks left running by an orchestrator that died: "requeue" them or "fail" them.
# on_restart = "requeue"

# Rate limits: wait the provider's Retry-After, else 30 s doubling per strike up to 900 s.
# An exhausted quota without a stated reset makes the agent unavailable for quota_wait_seconds.
# rate_limit_backoff_seconds = 30
# rate_limit_backoff_max_seconds = 900
# quota_wait_seconds = 3600

# Prices (USD per million tokens) to estimate the cost of agents that report none (Gemini).
# Entries here are added to the built-in ones for gemini-2.5-pro/-flash/-flash-lite. A model
# without a price has an unknown cost, and a max_budget_usd on its tasks cannot be checked.
# [prices."gemini-2.5-pro"]
# input_per_million = 1.25
# output_per_million = 10.0

# Address of `claudomator serve`; agents get http://<server_addr> as CLAUDOMATOR_API_URL.
# server_addr = "127.0.0.1:8484"

# If set, every project directory (task files, the API, [[projects]]) must lie under it, and
# tasks without a project_dir get their scratch git repository there. Unset: projects may be
# anywhere and scratch repositories go to <data_dir>/workspace.
# workspace_root = "/srv/claudomator/workspace"

# Outgoing notifications and API protection.
# webhook_url = ""
# webhook_secret = ""
# api_token = ""
# serve refuses requests whose Host header is not the address it listens on (plus 127.0.0.1,
# localhost and [::1] when that is loopback or every interface) or one of these names. Listening
# on any other address needs api_token.
# allowed_hosts = ["claudomator.example.com"]
# Subtasks an agent creates with its token stay in its task's project unless this is true.
# subtasks_any_project = false

# Web Push to browsers that pressed "notify me" in the web UI. The VAPID key is generated into
# <data_dir>/vapid_private.pem unless set here (PEM text or a path to a PEM file).
# vapid_private_key = "/etc/claudomator/vapid.pem"
# vapid_subject = "mailto:you@example.com"

# The database, as a URL: only SQLite today ("sqlite:////abs/path/claudomator.db").
# Unset: <data_dir>/claudomator.db.
# database_url = ""

# Named projects. build_command is an argument list run in the sandbox before the
# autocommit (default: `make build` with a Makefile, `./gradlew build`, `go build ./...`).
# delivery: "auto" (push to a `local` remote or local-path `origin`, else a branch),
# "push", or "branch" (kept as claudomator/<short-id>-<name-slug> for review).
# [[projects]]
# name = "webapp"
# dir = "/home/me/src/webapp"
# build_command = ["make", "check"]
# delivery = "auto"
# review = false   # true: work kept as a branch waits READY for `accept` / `reject ID "feedback"`

# What a running orchestrator (and `claudomator gc`) removes once a task has ended
# (COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED, CANCELLED) or was deleted, that many days
# after; 0 keeps it forever. Nothing of a PENDING, QUEUED, RUNNING, BLOCKED or READY task is
# ever removed, nor a branch that is checked out. Task rows are kept.
# [retention]
# logs_days = 30               # <data_dir>/logs/<execution-id>/, deleted tasks' scratch repos
# sandboxes_days = 7           # kept sandboxes under <data_dir>/sandboxes/, unused warm trees
# branches_days = 14           # claudomator/* branches whose commits are on another branch
# unmerged_branches_days = 0   # claudomator/* branches with commits nowhere else (work lost)
# every = "1h"                 # how often serve/run apply it; 0: only `claudomator gc`

# How agent processes are started: "plain" runs them as they are, with your own rights (the
# sandbox is a private git copy, but nothing stops an agent reading or writing elsewhere).
# [isolation]
# launcher = "plain"

# One table per agent CLI: the binary to run (looked up on PATH unless absolute).
# [agents.claude]
# binary_path = "claude"
# [agents.gemini]
# binary_path = "gemini"

# A local OpenAI-compatible model (Ollama, LM Studio, vLLM).
# [local_model]
# endpoint = "http://127.0.0.1:11434/v1"
# model = "qwen2.5-coder:7b"
# api_key = ""
# timeout_seconds = 120
# default_temperature = 0.2
# prefer_for_elaborate = false
"""


def write_default_config(path: Path, data_dir: Path, *, force: bool = False) -> Path:
    """Write the commented default config to ``path``; refuse to overwrite unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEFAULT_CONFIG.format(data_dir=data_dir), encoding="utf-8")
    return path


def estimate_cost(
    prices: dict[str, ModelPrice], model: str, tokens_in: int, tokens_out: int
) -> float | None:
    """Estimated USD for a run, or None if the model has no price (exact or prefix match)."""
    price = prices.get(model)
    if price is None:
        matches = [name for name in prices if model.startswith(name)]
        price = prices[max(matches, key=len)] if matches else None
    if price is None:
        return None
    return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6
