"""Agent runners, one module per agent, and the registry that names them."""

from __future__ import annotations

from claudomator.agents.base import Outcome, RunContext, Runner
from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.agents.local import LocalRunner
from claudomator.config import Settings

DEFAULT_AGENT = "claude"


def build_registry(settings: Settings) -> dict[str, Runner]:
    """Every runner this configuration can use, by agent name.

    Claude and Gemini are always registered; the local model only when ``[local_model]`` names
    an endpoint. Whether each can run here is :mod:`claudomator.readiness`'s to say.
    """
    runners: dict[str, Runner] = {
        "claude": ClaudeRunner(settings.claude_binary_path),
        "gemini": GeminiRunner(settings.gemini_binary_path),
    }
    if settings.local_model.endpoint:
        runners["local"] = LocalRunner(settings.local_model)
    return runners


__all__ = ["DEFAULT_AGENT", "Outcome", "RunContext", "Runner", "build_registry"]
