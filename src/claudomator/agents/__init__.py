"""Agent runners, one module per agent, and the registry that names them (agents/registry.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from claudomator.agents.base import Capabilities, Outcome, RunContext, Runner
from claudomator.agents.registry import (
    DEFAULT_AGENT,
    AgentRegistry,
    AgentSpec,
    builtin_agents,
    default_registry,
)
from claudomator.config import Settings

if TYPE_CHECKING:
    from claudomator.llm import LLMClient


def build_registry(
    settings: Settings, registry: AgentRegistry | None = None, *, llm: LLMClient | None = None
) -> dict[str, Runner]:
    """Every runner this configuration can use, by agent name.

    Claude and Gemini are always there; the local model only when ``[local_model]`` names an
    endpoint and a model client ``llm`` is given. Whether each can run here is
    :mod:`claudomator.readiness`'s to say.
    """
    return (registry or default_registry()).runners(settings, llm=llm)


__all__ = [
    "DEFAULT_AGENT",
    "AgentRegistry",
    "AgentSpec",
    "Capabilities",
    "Outcome",
    "RunContext",
    "Runner",
    "build_registry",
    "builtin_agents",
    "default_registry",
]
