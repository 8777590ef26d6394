"""Choosing an agent (and model) for a task that did not pin one.

Asked in order, first usable answer wins:

1. the local model, in JSON mode, told which agents are available, how busy each is and which
   are rate-limited or out of quota;
2. the Gemini CLI with the same prompt (the registry's one-shot call, ``-o json``), if the local
   model is not configured or gave no usable answer;
3. otherwise the pool's own rule: the least-loaded available agent.

The Gemini call is started through the launcher the runners got, with the (absent) project
read-only (:func:`~claudomator.agents.oneshot.ask_json`). The choice and its reason are
recorded in the task's history by the pool. (Why a *run* failed
is :func:`claudomator.ratelimit.classify`'s business, not this module's.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claudomator.agents.oneshot import OneShotFailed, ask_json
from claudomator.agents.registry import AgentRegistry, default_registry
from claudomator.isolation.base import Confinement
from claudomator.models import Task

if TYPE_CHECKING:
    from claudomator.isolation.base import Launcher
    from claudomator.llm import LLMClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """The agent (and model) picked for a task, and why."""

    agent: str
    model: str = ""
    reason: str = ""


# Picks an agent for a task that pinned none: (task, available agents, running counts,
# blocked agents with the reason) -> choice. See :mod:`claudomator.chooser`.
Chooser = Callable[[Task, list[str], dict[str, int], dict[str, str]], Awaitable[Choice]]

AGENT_PROFILES = {spec.name: spec.profile for spec in default_registry()}
"""The built-in agents' one-line profiles (a registry's own are in its specs)."""

_SYSTEM = (
    "You route software tasks to coding agents. Reply with one JSON object: "
    '{"agent": <one of the available agents>, "model": <model name or "">, '
    '"reason": <one short sentence>}.'
)


def choice_prompt(
    task: Task,
    available: list[str],
    counts: Mapping[str, int],
    blocked: Mapping[str, str],
    profiles: Mapping[str, str] = AGENT_PROFILES,
) -> str:
    agents = "\n".join(
        f"- {name}: {profiles.get(name, 'an agent')} (running now: {counts.get(name, 0)})"
        for name in available
    )
    limited = "\n".join(f"- {name}: {why}" for name, why in blocked.items()) or "- none"
    return (
        f"Available agents:\n{agents}\n\nUnavailable agents (do not choose):\n{limited}\n\n"
        f"Task name: {task.name}\nDescription: {task.description or '-'}\n"
        f"Instructions:\n{task.agent.instructions[:4000]}"
    )


def parse_choice(data: object, available: list[str], source: str) -> Choice | None:
    """A :class:`Choice` from a model's JSON answer, or None if it names no available agent."""
    if not isinstance(data, dict):
        return None
    agent = str(data.get("agent") or "").strip().lower()
    if agent not in available:
        return None
    model = data.get("model")
    reason = str(data.get("reason") or "no reason given").strip()
    return Choice(agent, model if isinstance(model, str) else "", f"{source}: {reason}")


class AgentChooser:
    """Picks agents for unpinned tasks; an instance is the pool's ``chooser``."""

    def __init__(
        self,
        llm: LLMClient | None,
        *,
        gemini_binary: str = "",
        gemini_model: str = "gemini-2.5-flash",
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        registry: AgentRegistry | None = None,
        launcher: Launcher,
        confinement: Confinement | None = None,
    ) -> None:
        self.llm = llm
        self.launcher = launcher  # starts the Gemini CLI: the one the runners got
        # its network policy: the runs' (None: the open network)
        self.confinement = confinement
        self.gemini_binary = gemini_binary
        self.gemini_model = gemini_model
        self.env = dict(env) if env is not None else None
        self.timeout = timeout
        self.registry = registry or default_registry()
        self.profiles = {spec.name: spec.profile for spec in self.registry}
        self._gemini_down_until = 0.0  # after a failure, skip the CLI for a while

    GEMINI_COOLDOWN = 600.0  # seconds

    async def __call__(
        self,
        task: Task,
        available: list[str],
        counts: dict[str, int],
        blocked: dict[str, str],
    ) -> Choice:
        prompt = choice_prompt(task, available, counts, blocked, self.profiles)
        choice = await self._ask_local(prompt, available)
        if choice is None:
            choice = await self._ask_gemini(prompt, available)
        if choice is None:
            least = min(available, key=lambda name: counts.get(name, 0))
            choice = Choice(least, "", "least-loaded available agent (no classifier answered)")
        logger.info(
            "task %s -> %s (%s)", task.id, choice.agent, choice.reason, extra={"action": "choose"}
        )
        return choice

    async def _ask_local(self, prompt: str, available: list[str]) -> Choice | None:
        if self.llm is None or not self.llm.available:
            return None
        from claudomator.llm import LLMError  # the model SDK: only with a local model

        try:
            data = await self.llm.complete_json(_SYSTEM, prompt, timeout=self.timeout)
        except LLMError as exc:
            logger.warning("local chooser failed: %s", exc, extra={"action": "choose"})
            return None
        return parse_choice(data, available, "local model")

    async def _ask_gemini(self, prompt: str, available: list[str]) -> Choice | None:
        spec = self.registry.get("gemini")
        if spec is None or spec.one_shot is None or not self.gemini_binary:
            return None
        if time.monotonic() < self._gemini_down_until:
            return None
        try:
            data = await ask_json(
                spec.one_shot,
                self.gemini_binary,
                f"{_SYSTEM}\n\n{prompt}",
                model=self.gemini_model,
                env=self.env,
                time_limit=self.timeout,
                setting=spec.binary_setting,
                launcher=self.launcher,
                confinement=self.confinement,
            )
        except OneShotFailed as exc:
            if exc.kind in ("failed", "timed_out"):
                self._gemini_down_until = time.monotonic() + self.GEMINI_COOLDOWN
                logger.warning("Gemini chooser failed: %s", exc, extra={"action": "choose"})
            return None
        return parse_choice(data, available, "Gemini CLI")
