"""What the rest of the code needs to know about one agent: an :class:`AgentSpec` (its name,
profile, capabilities, how its runner is built, its binary and credentials, its one-shot call).
An agent module builds its own spec from this (a plugin's too), and
:class:`~claudomator.agents.registry.AgentRegistry` registers it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claudomator.agents.base import Capabilities, Runner
from claudomator.agents.oneshot import OneShot
from claudomator.config import Settings, binary_setting
from claudomator.isolation.base import Launcher

if TYPE_CHECKING:
    from claudomator.llm import LLMClient


@dataclass(frozen=True)
class AgentSpec:
    """One agent, as the registry knows it."""

    name: str  # the ``agent.type`` of a task
    profile: str  # one line for the models that choose an agent or write a task
    capabilities: Capabilities
    # the runner for these settings, spawning through the launcher given (a CLI runner's
    # constructor takes it), or None when the settings do not configure this agent
    make_runner: Callable[[Settings, Launcher], Runner | None] | None = None
    # instead, for an agent that spawns nothing but asks a model server: its runner, given the
    # process's one model client (None when the settings do not configure it)
    make_model_runner: Callable[[Settings, LLMClient], Runner | None] | None = None
    # the binary a CLI agent runs (None: not a CLI); see :meth:`Settings.agent_binary`
    default_binary: str | None = None
    one_shot: OneShot | None = None  # how to ask it one question for JSON, if it can
    install_hint: str = ""  # how to install its CLI, for "not found" messages
    # whether the CLI will find credentials in this environment, and where (None: cannot tell)
    credentials: Callable[[Mapping[str, str]], tuple[bool | None, str]] | None = None
    login_hint: str = ""  # how to give it credentials, when none were found
    # why the settings do not configure it (empty when they do); for agents without a CLI
    unconfigured: Callable[[Settings], tuple[str, ...]] | None = None

    def binary(self, settings: Settings) -> str:
        """The binary the settings name for this agent ("" if it runs none)."""
        if self.default_binary is None:
            return ""
        return settings.agent_binary(self.name, self.default_binary)

    @property
    def binary_setting(self) -> str:
        """The config key that names the binary, for messages."""
        return binary_setting(self.name)
