"""Every setting of Claudomator, validated: :class:`Settings` (built by
:func:`claudomator.config.loading.load_settings`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from claudomator.config.prices import DEFAULT_PRICES, ModelPrice
from claudomator.config.sections import (
    AgentSettings,
    IsolationSettings,
    LocalModelSettings,
    RetentionSettings,
)
from claudomator.durations import parse_duration
from claudomator.models import Project

logger = logging.getLogger(__name__)


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
    def homes_dir(self) -> Path:
        """Confined agents' private homes, one per task (the bubblewrap launcher's)."""
        return self.data_dir / "homes"

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
