"""Agent runners, one module per agent, and the registry that names them."""

from __future__ import annotations

import shutil

from claudomator.agents.base import Outcome, RunContext, Runner
from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.agents.local import LocalRunner
from claudomator.config import Settings

DEFAULT_AGENT = "claude"


def build_registry(settings: Settings) -> dict[str, Runner]:
    """Every runner this configuration can use, by agent name.

    Claude and Gemini are always registered (a missing CLI fails the task with a clear error);
    the local model only when ``[local_model]`` names an endpoint.
    """
    runners: dict[str, Runner] = {
        "claude": ClaudeRunner(settings.claude_binary_path),
        "gemini": GeminiRunner(settings.gemini_binary_path),
    }
    if settings.local_model.endpoint:
        runners["local"] = LocalRunner(settings.local_model)
    return runners


def installed(settings: Settings) -> set[str]:
    """Agents that can actually run here: CLIs found on PATH, a configured local model."""
    found = {
        name
        for name, binary in (
            ("claude", settings.claude_binary_path),
            ("gemini", settings.gemini_binary_path),
        )
        if shutil.which(binary)
    }
    if settings.local_model.endpoint and settings.local_model.model:
        found.add("local")
    return found


__all__ = ["DEFAULT_AGENT", "Outcome", "RunContext", "Runner", "build_registry", "installed"]
