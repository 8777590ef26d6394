"""The config file's tables besides the top level: ``[agents.<name>]``, ``[isolation]``,
``[local_model]`` and ``[retention]`` (held by :class:`~claudomator.config.settings.Settings`)."""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from claudomator.durations import parse_duration
from claudomator.isolation import launcher_names
from claudomator.isolation._choice import CHOICES
from claudomator.isolation.base import NETWORKS, OPEN
from claudomator.isolation.policy import check_env_patterns, origin

logger = logging.getLogger(__name__)


def binary_setting(agent: str) -> str:
    """The config key people are told to set for ``agent``'s binary (in messages)."""
    return f"[agents.{agent}] binary_path"


_VARIABLE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


class AgentSettings(BaseModel):
    """One agent's ``[agents.<name>]`` table: the same shape for every agent. From it the
    runner writes the CLI's own provider configuration per task, in the task's private home
    (docs/agents.md §3b for Codex's ``config.toml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # the CLI to run (on PATH unless absolute); empty: the default. Also read as ``binary``
    binary_path: str = ""
    model: str = ""  # the default model of its tasks (a task's own ``model`` wins); "": the CLI's
    base_url: str = ""  # the provider endpoint (http[s]://host[:port][/path]); "": the CLI's
    # the name of the environment variable that holds the API key (never the key itself)
    api_key_env: str = ""
    args: tuple[str, ...] = ()  # extra arguments for every run, before the task's own

    @model_validator(mode="before")
    @classmethod
    def _binary(cls, data: object) -> object:
        """``binary`` is another name of ``binary_path`` (not both)."""
        if isinstance(data, dict) and "binary" in data:
            if "binary_path" in data:
                raise ValueError("set binary or binary_path, not both (they are the same)")
            data = {("binary_path" if k == "binary" else k): v for k, v in data.items()}
        return data

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or not origin(value)):
            raise ValueError(
                f"{value!r} is not an endpoint URL; write http[s]://host[:port][/path] "
                "(e.g. https://api.openai.com/v1)"
            )
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _variable(cls, value: str) -> str:
        if value and not _VARIABLE.match(value):
            # the value is not repeated: it may be the key itself, put here by mistake
            raise ValueError(
                "not an environment variable name (letters, digits and _): name the variable "
                "that holds the key, never the key itself"
            )
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value != value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not a model name (no spaces)")
        return value


class IsolationSettings(BaseModel):
    """The ``[isolation]`` table: how agent processes are started (:mod:`claudomator.isolation`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # a module of claudomator/isolation/ ("plain": no isolation; "bubblewrap": confined, the
    # orchestrator refuses to start without bwrap), or "auto" (the default): bubblewrap when
    # it can run here, else plain with a warning (claudomator.isolation._choice)
    launcher: str = "auto"
    # "open": the agents use the host's network; "model-only": each gets a network namespace
    # whose only way out is a proxy that lets through its model endpoints and the API
    network: str = OPEN
    # more URLs (scheme://host[:port]) a model-only agent may reach (a package registry)
    allowed_endpoints: tuple[str, ...] = ()
    # host paths every confined agent may read (a shared package cache); projects add theirs
    read_only_paths: tuple[str, ...] = ()
    # true: a task may loosen its project's confinement (isolation, network); a task may
    # always tighten it
    allow_task_override: bool = False
    # more environment variables (names or shell patterns) every confined agent and its build
    # check get, beyond their allow-list: e.g. ["NPM_TOKEN", "GOPRIVATE"]
    pass_env: tuple[str, ...] = ()

    @field_validator("pass_env")
    @classmethod
    def _pass_env(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_env_patterns(value)

    @field_validator("launcher")
    @classmethod
    def _known(cls, value: str) -> str:
        known = tuple(dict.fromkeys((*launcher_names(), *CHOICES)))
        if value not in known:
            raise ValueError(f"{value!r} is not a launcher; use one of: {', '.join(known)}")
        return value

    @field_validator("allowed_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not origin(url) or origin(url) != url.rstrip("/"):
                raise ValueError(
                    f"{url!r} is not an endpoint; write scheme://host[:port] "
                    "(e.g. https://registry.npmjs.org)"
                )
        return tuple(url.rstrip("/") for url in value)

    @field_validator("read_only_paths")
    @classmethod
    def _absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        return value

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        if value not in NETWORKS:
            raise ValueError(
                f"{value!r} is not a network policy; use one of: {', '.join(NETWORKS)}"
            )
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
    # what `type: local` tasks run: "chat" (text answers, no edits), "opencode" or "qwen" (the
    # model drives that agent CLI, which edits the sandbox); "": the first installed, else chat
    harness: str = ""

    @field_validator("harness")
    @classmethod
    def _harness(cls, value: str) -> str:
        known = ("chat", "opencode", "qwen")
        if value and value not in known:
            raise ValueError(f"{value!r} is not a harness; use one of: {', '.join(known)}")
        return value


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
