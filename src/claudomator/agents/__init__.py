"""Agent runners, one module per agent, and the registry that names them (agents/registry.py)."""

from __future__ import annotations

from claudomator.agents.base import Capabilities, Outcome, RunContext, Runner
from claudomator.agents.registry import (
    DEFAULT_AGENT,
    AgentRegistry,
    AgentSpec,
    builtin_agents,
    default_registry,
)
from claudomator.config import Settings


def build_registry(settings: Settings, registry: AgentRegistry | None = None) -> dict[str, Runner]:
    """Every runner this configuration can use, by agent name.

    Claude and Gemini are always there; the local model only when ``[local_model]`` names an
    endpoint. Whether each can run here is :mod:`claudomator.readiness`'s to say.
    """
    return (registry or default_registry()).runners(settings)


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
