"""Agent runners, one module per agent, and the registry that names them."""

from __future__ import annotations

from claudomator.agents.base import Outcome, RunContext, Runner
from claudomator.agents.claude import ClaudeRunner
from claudomator.config import Settings

DEFAULT_AGENT = "claude"


def build_registry(settings: Settings) -> dict[str, Runner]:
    """Every runner this configuration can use, by agent name."""
    return {"claude": ClaudeRunner(settings.claude_binary_path)}


__all__ = ["DEFAULT_AGENT", "Outcome", "RunContext", "Runner", "build_registry"]
