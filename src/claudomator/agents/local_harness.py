"""The ``local`` agent as a real coding agent: the local OpenAI-compatible model (Ollama, LM
Studio, vLLM, llama.cpp's server) drives an agent CLI that edits the sandbox, and its work is
delivered like any other agent's (``[local_model] harness``).

``harness = "chat"`` keeps the text-only chat runner (:mod:`claudomator.agents.local`).
``"opencode"`` runs OpenCode (:class:`~claudomator.agents.opencode.OpenCodeRunner`) and
``"qwen"`` Qwen Code (:class:`~claudomator.agents.qwen.QwenRunner`) against ``[local_model]
endpoint`` and ``model``, with ``api_key`` as its key (a local server ignores it). Empty (the
default): the first of :data:`HARNESSES` whose CLI is installed, else chat. The execution is the
``local`` agent's; its tokens are recorded and its cost is 0 (the model runs here).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.opencode import OpenCodeRunner, OpenCodeSettings
from claudomator.agents.qwen import QwenRunner
from claudomator.config import AgentSettings, LocalModelSettings, Settings
from claudomator.isolation.base import Launcher

logger = logging.getLogger(__name__)

CHAT = "chat"
HARNESSES = ("opencode", "qwen")  # the agent CLIs a local model can drive, in the order tried
KEY_VARIABLE = "CLAUDOMATOR_LOCAL_MODEL_KEY"  # how OpenCode is handed [local_model] api_key
NO_KEY = "local"  # what the CLI is given as its key when [local_model] api_key is empty


def resolve_harness(settings: Settings, which: Mapping[str, str | None] | None = None) -> str:
    """The harness ``[local_model] harness`` comes to here: as set, else the first of
    :data:`HARNESSES` whose binary is found (``which``: binary -> path, for tests), else
    :data:`CHAT`."""
    harness = settings.local_model.harness
    if harness:
        return harness
    for name in HARNESSES:
        binary = settings.agent_binary(name, name)
        found = which[binary] if which is not None and binary in which else shutil.which(binary)
        if found:
            return name
    return CHAT


class LocalQwenRunner(QwenRunner):
    """Qwen Code driven by the local model, as the ``local`` agent."""

    name = "local"
    label = "local model through Qwen Code"

    def __init__(
        self, binary: str, launcher: Launcher, local: LocalModelSettings, homes: Path
    ) -> None:
        provider = AgentSettings(model=local.model, base_url=local.endpoint)
        super().__init__(binary, launcher, agent=provider, homes=homes)
        self.key = local.api_key or NO_KEY

    def prepare(self, ctx: RunContext) -> tuple[RunContext, str]:
        prepared, model = super().prepare(ctx)
        env = {**prepared.env, "OPENAI_API_KEY": self.key}
        return dataclasses.replace(prepared, env=env), model

    async def run(self, ctx: RunContext) -> Outcome:
        outcome = await super().run(ctx)
        return dataclasses.replace(outcome, cost_usd=0.0, cost_reported=True)


class LocalOpenCodeRunner(OpenCodeRunner):
    """OpenCode driven by the local model, as the ``local`` agent."""

    name = "local"
    label = "local model through OpenCode"

    def __init__(
        self, binary: str, launcher: Launcher, local: LocalModelSettings, homes: Path
    ) -> None:
        provider = OpenCodeSettings(
            homes_dir=homes, model=local.model, base_url=local.endpoint, api_key_env=KEY_VARIABLE
        )
        super().__init__(binary, launcher, provider)
        self.key = local.api_key or NO_KEY

    def prepare(self, ctx: RunContext) -> tuple[RunContext, str]:
        keyed = dataclasses.replace(ctx, env={**ctx.env, KEY_VARIABLE: self.key})
        return super().prepare(keyed)

    async def run(self, ctx: RunContext) -> Outcome:
        outcome = await super().run(ctx)
        return dataclasses.replace(outcome, cost_usd=0.0, cost_reported=True)


def make_harness_runner(
    settings: Settings, launcher: Launcher
) -> LocalQwenRunner | LocalOpenCodeRunner | None:
    """The ``local`` agent's CLI runner, when ``[local_model]`` names an endpoint and the
    harness is a CLI's (None: the chat runner, or no local model)."""
    local = settings.local_model
    if not local.endpoint:
        return None
    harness = resolve_harness(settings)
    if harness == CHAT:
        return None
    logger.debug("local model %s drives %s", local.model, harness, extra={"action": "local"})
    binary = settings.agent_binary(harness, harness)
    kind = LocalOpenCodeRunner if harness == "opencode" else LocalQwenRunner
    return kind(binary, launcher, local, settings.homes_dir)
