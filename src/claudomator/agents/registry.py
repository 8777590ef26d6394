"""The agents Claudomator knows: one :class:`AgentSpec` each, in an :class:`AgentRegistry`.

A spec says everything the rest of the code needs about an agent: its name, a one-line profile
(for the chooser's and elaborate's prompts), its :class:`Capabilities`, how its binary is found
in the settings, how to build its runner, and how to ask it one question for one JSON answer
(:class:`~claudomator.agents.oneshot.OneShot`, used by the chooser and by elaborate).

The agents come from the ``claudomator.agents`` entry points (:data:`ENTRY_POINT_GROUP`):
Claudomator's own, ``builtin`` (:func:`builtin_agents`), first, then every installed package's
in name order, each registered with :meth:`AgentRegistry.register` exactly as the built-ins are
(see docs/design.md, "Adding an agent"). An entry point names an :class:`AgentSpec`, a list of
them, or a callable returning either. A plugin that fails to load, or names an agent already
registered, is skipped with a warning naming it: one broken package never stops the
orchestrator. Nothing is registered at import time: :func:`default_registry` builds a new
registry each call, and :class:`~claudomator.runtime.Runtime` builds the one it runs with.

This module stays light (the command line imports it through :mod:`claudomator.readiness`):
the local model's runner, which needs the model SDK, is imported only when it is built.

The registry builds no long-lived object of its own beyond the launcher: a runner that talks to
a model server is handed the process's one :class:`~claudomator.llm.LLMClient` (its owner, the
:class:`~claudomator.runtime.Runtime`, closes it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.agents import claude, codex, gemini, opencode, qwen
from claudomator.agents.base import Capabilities, Runner
from claudomator.agents.cli import CliRunner
from claudomator.agents.oneshot import OneShot
from claudomator.agents.spec import AgentSpec as AgentSpec  # re-exported: where specs were
from claudomator.config import Settings
from claudomator.errors import ConfigError
from claudomator.isolation import build_launcher
from claudomator.isolation.base import Launcher
from claudomator.isolation.plain import PlainLauncher

if TYPE_CHECKING:
    from claudomator.isolation._choice import Choice
    from claudomator.isolation._select import SelectingLauncher
    from claudomator.llm import LLMClient

logger = logging.getLogger(__name__)

DEFAULT_AGENT = "claude"


class AgentRegistry:
    """The agents known to one orchestrator, by name, in registration order."""

    def __init__(self) -> None:
        self._specs: dict[str, AgentSpec] = {}

    def register(self, spec: AgentSpec) -> AgentSpec:
        """Add ``spec``; a second agent of the same name is a :class:`ConfigError`."""
        if not spec.name or not spec.name.isidentifier():
            raise ConfigError(f"agent name {spec.name!r}: use letters, digits and _")
        if spec.name in self._specs:
            raise ConfigError(f"agent {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[AgentSpec]:
        return iter(self._specs.values())

    def __getitem__(self, name: str) -> AgentSpec:
        return self._specs[name]

    def get(self, name: str) -> AgentSpec | None:
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def runners(
        self,
        settings: Settings,
        launcher: Launcher | None = None,
        *,
        llm: LLMClient | None = None,
    ) -> dict[str, Runner]:
        """Every runner these settings configure, by agent name, all spawning through one
        launcher: ``launcher``, else the one ``[isolation] launcher`` names, built here once
        (:meth:`launcher`). A model-server agent's runner gets ``llm``; without one it has none.
        """
        launcher = launcher or self.launcher(settings)
        runners: dict[str, Runner] = {}
        for spec in self:
            runner = None
            if spec.make_runner is not None:
                runner = spec.make_runner(settings, launcher)
            # (an agent may have both: the local model drives a CLI, else it chats)
            if runner is None and spec.make_model_runner is not None and llm is not None:
                runner = spec.make_model_runner(settings, llm)
            if runner is not None:
                runners[spec.name] = runner
        return runners

    @staticmethod
    def launcher(settings: Settings, choice: Choice | None = None) -> SelectingLauncher:
        """The launcher ``[isolation] launcher`` names (``auto`` resolved on this machine, or
        ``choice``, what it already came to; an explicit ``bubblewrap`` that cannot run is a
        ConfigError), new: build it once and hand it to :meth:`runners` and to the one-shot
        calls (:func:`~claudomator.agents.oneshot.ask_json`). It starts a process whose
        :class:`~claudomator.isolation.base.Access` names another launcher (a project's or a
        task's) through that one, built when first needed
        (:class:`~claudomator.isolation._select.SelectingLauncher`)."""
        from claudomator.isolation._choice import resolve, with_launcher  # "auto" resolved here
        from claudomator.isolation._select import SelectingLauncher

        choice = choice or resolve(settings)
        chosen = with_launcher(settings, choice.required())
        own = build_launcher(chosen.isolation.launcher, chosen)
        return SelectingLauncher(settings, choice, own)


def _declared_paths(runner: type[CliRunner]) -> Callable[[Mapping[str, str]], tuple[Path, ...]]:
    """The CLI's own paths as its runner declares them (:meth:`CliRunner.agent_paths`), for
    the :class:`~claudomator.isolation.base.Access` of its one-shot calls."""
    return lambda env: runner(runner.name, PlainLauncher()).agent_paths(env)


def _declared_files(
    runner: type[CliRunner],
) -> Callable[[Mapping[str, str]], tuple[tuple[Path, str], ...]]:
    """The files a private home needs, as the runner declares them (``home_copies``)."""
    return lambda env: runner(runner.name, PlainLauncher()).home_copies(env)


def _local_unconfigured(settings: Settings) -> tuple[str, ...]:
    local = settings.local_model
    missing = [n for n, v in (("endpoint", local.endpoint), ("model", local.model)) if not v]
    return (f"[local_model] {' and '.join(missing)} not set in the config file",) if missing else ()


def _local_harness(settings: Settings, launcher: Launcher) -> Runner | None:
    """The local model driving an agent CLI (``[local_model] harness``), if it does."""
    from claudomator.agents.local_harness import make_harness_runner

    return make_harness_runner(settings, launcher)


def _local_runner(settings: Settings, llm: LLMClient) -> Runner | None:
    """The local model's runner (an HTTP request through ``llm``: it starts no process)."""
    if not settings.local_model.endpoint:
        return None  # only when ``[local_model]`` names an endpoint
    from claudomator.agents.local import LocalRunner  # the model SDK: only when configured

    return LocalRunner(settings.local_model, llm)


# The local runner's class is not imported here (see the module docstring); its declared
# capabilities are repeated and checked against the class by tests/unit/test_agent_registry.py.
LOCAL_CAPABILITIES = Capabilities(
    text_only=True,
    resumes_in_place=False,
    reports_cost=True,
    spawns_process=False,
    options=frozenset({"model", "system_prompt_append", "temperature", "max_tokens"}),
)


def builtin_agents() -> list[AgentSpec]:
    """The specs of the agents Claudomator ships with."""
    return [
        AgentSpec(
            name="claude",
            profile=(
                "Claude Code CLI: strongest at multi-file code changes, debugging, refactoring."
            ),
            capabilities=claude.ClaudeRunner.capabilities,
            make_runner=lambda s, launcher: claude.ClaudeRunner(
                s.agent_binary("claude", "claude"), launcher
            ),
            default_binary="claude",
            one_shot=OneShot(
                claude.one_shot_argv,
                claude.one_shot_reply,
                claude.ONE_SHOT_MODEL,
                _declared_paths(claude.ClaudeRunner),
                _declared_files(claude.ClaudeRunner),
                claude.ClaudeRunner.env_patterns,
                endpoints=claude.model_endpoints,
            ),
            install_hint=claude.ClaudeRunner.install_hint,
            credentials=claude.credentials,
            login_hint=claude.LOGIN_HINT,
        ),
        AgentSpec(
            name="gemini",
            profile="Gemini CLI: good at reading large codebases and routine changes; cheaper.",
            capabilities=gemini.GeminiRunner.capabilities,
            make_runner=lambda s, launcher: gemini.GeminiRunner(
                s.agent_binary("gemini", "gemini"), launcher
            ),
            default_binary="gemini",
            one_shot=OneShot(
                gemini.one_shot_argv,
                gemini.one_shot_reply,
                gemini.ONE_SHOT_MODEL,
                _declared_paths(gemini.GeminiRunner),
                _declared_files(gemini.GeminiRunner),
                gemini.GeminiRunner.env_patterns,
                endpoints=gemini.model_endpoints,
            ),
            install_hint=gemini.GeminiRunner.install_hint,
            credentials=gemini.credentials,
            login_hint=gemini.LOGIN_HINT,
        ),
        AgentSpec(
            name="codex",
            profile=(
                "Codex CLI (OpenAI): multi-file code changes and shell work, on any provider "
                "that speaks the Responses API."
            ),
            capabilities=codex.CodexRunner.capabilities,
            make_runner=lambda s, launcher: codex.CodexRunner(
                s.agent_binary("codex", "codex"), launcher, codex.CodexSettings.of(s)
            ),
            default_binary="codex",
            install_hint=codex.CodexRunner.install_hint,
            credentials=codex.credentials,
            login_hint=codex.LOGIN_HINT,
        ),
        qwen.qwen_spec(),
        opencode.opencode_spec(),
        AgentSpec(
            name="local",
            profile="a local model: text answers only (no file edits); for explanations, drafts.",
            capabilities=LOCAL_CAPABILITIES,
            make_runner=_local_harness,
            make_model_runner=_local_runner,
            unconfigured=_local_unconfigured,
        ),
    ]


ENTRY_POINT_GROUP = "claudomator.agents"
BUILTIN = "builtin"  # the entry point of Claudomator's own agents (pyproject.toml)
_BUILTIN_TARGET = f"{__name__}:builtin_agents"


def _specs_of(loaded: object) -> list[AgentSpec]:
    """What an entry point named: a spec, a list of specs, or a callable returning either."""
    if callable(loaded) and not isinstance(loaded, AgentSpec):
        loaded = loaded()
    specs = [loaded] if isinstance(loaded, AgentSpec) else loaded
    if not isinstance(specs, list | tuple) or not all(isinstance(s, AgentSpec) for s in specs):
        raise TypeError(f"expected an AgentSpec or a list of them, got {type(loaded).__name__}")
    return list(specs)


def add_plugin(registry: AgentRegistry, entry: metadata.EntryPoint) -> list[str]:
    """Register the agents of one ``claudomator.agents`` entry point: their names (none, with
    a warning naming the entry point and its package, when it cannot be loaded or clashes)."""
    package = entry.dist.name if entry.dist is not None else "?"
    try:
        specs = _specs_of(entry.load())
    except Exception as exc:  # a third-party package may raise anything
        logger.warning(
            "agent plugin %s = %s (package %s) not loaded: %s: %s",
            entry.name,
            entry.value,
            package,
            type(exc).__name__,
            exc,
            extra={"action": "plugins"},
        )
        return []
    added = []
    for spec in specs:
        try:
            registry.register(spec)
        except ConfigError as exc:
            logger.warning(
                "agent plugin %s (package %s): %s; skipped",
                entry.name,
                package,
                exc,
                extra={"action": "plugins"},
            )
            continue
        added.append(spec.name)
    logger.debug("agents from %s (%s): %s", entry.name, package, added)
    return added


def default_registry() -> AgentRegistry:
    """A new registry with every agent installed: the built-ins, then the plugins' (the
    ``claudomator.agents`` entry points, see the module docstring)."""
    registry = AgentRegistry()
    entries = sorted(
        metadata.entry_points(group=ENTRY_POINT_GROUP),
        key=lambda e: (e.value != _BUILTIN_TARGET, e.name),
    )
    if not any(e.value == _BUILTIN_TARGET for e in entries):
        # a source tree whose installed metadata predates the entry point: register them anyway
        for spec in builtin_agents():
            registry.register(spec)
    for entry in entries:
        add_plugin(registry, entry)
    return registry
