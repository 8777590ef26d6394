"""Runner for OpenCode (``opencode run --format json ... -- PROMPT``; docs/agents.md §18).

Facts about the CLI (``opencode-ai`` 1.18.33) this runner relies on, checked against the real
CLI:

* Everything OpenCode keeps follows the XDG variables: its config in
  ``$XDG_CONFIG_HOME/opencode/opencode.json``, its sessions (``opencode.db``), logs and
  credentials (``auth.json``) in ``$XDG_DATA_HOME/opencode``, locks in ``$XDG_STATE_HOME``,
  caches in ``$XDG_CACHE_HOME``. The runner points all four into the task's private home
  (``<homes>/<task>/.config`` ...; under bubblewrap the same folder is ``/home/agent``) and
  writes ``opencode.json`` there before every run, from ``[agents.opencode]``: a provider
  ``claudomator`` (``@ai-sdk/openai-compatible``, ``options.baseURL``, the key as
  ``{env:NAME}`` so it is never stored) whose model carries its price from ``[prices]``, so
  OpenCode reports the cost itself. Nothing is written into the sandbox.
* Offline: ``autoupdate: false``, ``share: "disabled"``, ``snapshot: false`` (no shadow git
  repository of the sandbox), ``OPENCODE_DISABLE_MODELS_FETCH`` (models.dev),
  ``OPENCODE_DISABLE_AUTOUPDATE``, ``OPENCODE_DISABLE_LSP_DOWNLOAD``, and ``--title`` (no
  title side call). OpenCode also starts an npm install of ``@opencode-ai/plugin`` in its
  config folder unless that folder holds ``node_modules`` and a lock file naming it: the runner
  writes both (empty), so only the model's endpoint is ever contacted.
* The prompt goes after ``--``; OpenCode joins its words and wraps the prompt in double quotes
  (inner ``"`` escaped) when it has a space. ``-s <ses_...>`` continues a session (its id is
  OpenCode's, from the stream); an unknown one exits 1 with ``Error: Session not found`` on
  stderr and nothing on stdout.
* Retries: 5 (6 requests), after the server's ``retry-after``/``retry-after-ms`` when given,
  else 2 s doubling to 30 s (a persistent 500 fails after about 90 s); no setting changes that.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.cli import CliRunner, ended_early, instructions_with_context
from claudomator.agents.opencode_stream import BudgetGuard, OpenCodeStream
from claudomator.agents.spec import AgentSpec
from claudomator.config import AgentSettings, ModelPrice, Settings
from claudomator.errors import AgentError
from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.bubblewrap import HOME as CONFINED_HOME
from claudomator.isolation.bubblewrap import copy_file
from claudomator.isolation.policy import origin
from claudomator.models import AgentConfig, TaskState
from claudomator.process import Exit, tail_file

logger = logging.getLogger(__name__)

NAME: Final = "opencode"
PROVIDER: Final = "claudomator"
"""The provider id of the endpoint ``[agents.opencode] base_url`` names."""
PLUGIN: Final = "@opencode-ai/plugin"
XDG: Final = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_DATA_HOME": ".local/share",
    "XDG_STATE_HOME": ".local/state",
    "XDG_CACHE_HOME": ".cache",
}
OFFLINE_ENV: Final = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
}
# inherited variables that would replace the per-task config or name host paths
_DROPPED: Final = (
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_DIR",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_DB",
)
AUTH_FILE: Final = ".local/share/opencode/auth.json"
LOGIN_HINT: Final = (
    "set [agents.opencode] base_url, model and api_key_env, or log in once with "
    "`opencode auth login`"
)
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class OpenCodeSettings:
    """What the runner takes from the settings: ``[agents.opencode]``, the prices, and where
    the private homes are."""

    homes_dir: Path
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    args: tuple[str, ...] = ()
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> OpenCodeSettings:
        table = settings.agents.get(NAME) or AgentSettings()
        return cls(
            homes_dir=settings.homes_dir,
            model=table.model,
            base_url=table.base_url,
            api_key_env=table.api_key_env,
            args=table.args,
            prices=dict(settings.prices),
        )

    def price(self, model: str) -> ModelPrice | None:
        """The model's price: exact, else the longest prefix (as the pool's estimate)."""
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(matches, key=len)] if matches else None


def model_ref(config: OpenCodeSettings, model: str) -> str:
    """What ``-m`` takes: ``claudomator/<model>`` for the ``base_url`` endpoint (the model's
    own slashes kept), else the model as given (OpenCode's ``provider/model``)."""
    if not model:
        return ""
    return f"{PROVIDER}/{model}" if config.base_url else model


def opencode_config(config: OpenCodeSettings, model: str, task_id: str) -> dict[str, object]:
    """The ``opencode.json`` Claudomator writes into a task's private home before each run."""
    document: dict[str, object] = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "snapshot": False,
    }
    key = {"apiKey": f"{{env:{config.api_key_env}}}"} if config.api_key_env else {}
    if config.base_url:
        entry: dict[str, object] = {"name": model}
        price = config.price(model)
        if price is not None:
            entry["cost"] = {"input": price.input_per_million, "output": price.output_per_million}
        document["provider"] = {
            PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": f"Claudomator: {origin(config.base_url)} (task {task_id})",
                "options": {"baseURL": config.base_url, **key},
                "models": {model: entry} if model else {},
            }
        }
    elif key and "/" in model:  # a provider OpenCode knows: only its key
        document["provider"] = {model.split("/", 1)[0]: {"options": key}}
    return document


def build_argv(binary: str, ctx: RunContext, config: OpenCodeSettings, model: str) -> list[str]:
    """``opencode run --format json`` for ``ctx``: ``-s`` to continue the session, the prompt
    last, after ``--``."""
    agent = ctx.task.agent
    title = ctx.task.name or ctx.task.id  # one argument (``=``): a name may start with "-"
    argv = [binary, "run", "--format", "json", f"--title={title}"]
    ref = model_ref(config, model)
    if ref:
        argv += ["-m", ref]
    if ctx.resume:
        argv += ["-s", ctx.session_id]
    argv += [*config.args, *agent.additional_args, "--", prompt_argument(agent)]
    return argv


_NUMBER: Final = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|0x[0-9a-f]+", re.IGNORECASE)


def prompt_argument(agent: AgentConfig) -> str:
    """The prompt argument: the instructions, with a space added to one that is a single
    number (OpenCode's argument parser would hand it over as a number, and the CLI fails with
    ``G.includes is not a function``)."""
    prompt = instructions_with_context(agent)
    return f"{prompt} " if _NUMBER.fullmatch(prompt.strip()) and " " not in prompt else prompt


class OpenCodeRunner(CliRunner):
    """Runs one execution of OpenCode and maps its result to an :class:`Outcome`."""

    name = NAME
    label = "OpenCode CLI"
    install_hint = "npm install -g opencode-ai"
    home_paths = (".config/opencode", ".local/share/opencode", ".local/state/opencode")
    home_files = (AUTH_FILE,)  # an `opencode auth login`; opencode.json is ours, per task
    env_patterns = ("OPENCODE_*", *XDG)
    capabilities = Capabilities(
        resumes_in_place=True,  # a session belongs to the project directory it started in
        reports_cost=True,  # from the model's price, which the runner writes into its config
        options=frozenset({"model", "max_budget_usd", "additional_args"}),
    )

    def __init__(self, binary: str, launcher: Launcher, config: OpenCodeSettings) -> None:
        super().__init__(binary, launcher)
        self.config = config

    def home(self, ctx: RunContext) -> Path:
        """The task's private home on the host (bubblewrap binds it at /home/agent)."""
        return self.config.homes_dir / ctx.task.id

    def agent_paths(self, env: Mapping[str, str]) -> tuple[Path, ...]:
        """The XDG folders the run's environment names (all in the private home), else
        ``home_paths``."""
        if all(env.get(v) for v in XDG):
            return tuple(Path(env[v]) / NAME for v in XDG)
        return super().agent_paths(env)

    def home_copies(self, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
        """The user's ``auth.json`` (``$XDG_DATA_HOME``'s, else ``~/.local/share``'s)."""
        data = env.get("XDG_DATA_HOME") or str(
            Path(env.get("HOME") or Path.home()) / ".local/share"
        )
        return ((Path(data) / NAME / "auth.json", AUTH_FILE),)

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        return (origin(self.config.base_url),) if self.config.base_url else ()

    def access(self, ctx: RunContext) -> Access:
        """As for every CLI, with the key's variable passed and no files left to copy
        (:meth:`prepare` copied them)."""
        access = dataclasses.replace(super().access(ctx), home_files=())
        if self.config.api_key_env:
            patterns = (*access.env_patterns, self.config.api_key_env)
            access = dataclasses.replace(access, env_patterns=patterns)
        return access

    def model_for(self, ctx: RunContext) -> str:
        return ctx.task.agent.model or self.config.model

    def prepare(self, ctx: RunContext) -> tuple[RunContext, str]:
        """Write the task's ``opencode.json`` (and copy the user's login once); the context
        with the XDG folders and OpenCode's switches set, and the model."""
        model = self.model_for(ctx)
        if self.config.base_url and not model:
            raise AgentError(f"no model for OpenCode: {LOGIN_HINT}")
        if self.config.api_key_env and not ctx.env.get(self.config.api_key_env):
            raise AgentError(
                f"[agents.opencode] api_key_env names {self.config.api_key_env}, which is not "
                "set in the orchestrator's environment"
            )
        home = self.home(ctx)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = home / XDG["XDG_CONFIG_HOME"] / NAME
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps(opencode_config(self.config, model, ctx.task.id), indent=2) + "\n"
        scratch = folder / "opencode.json.tmp"
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, folder / "opencode.json")
        # OpenCode installs its plugin package in its config folder unless this says it did
        (folder / "node_modules").mkdir(exist_ok=True)
        lock = {"packages": {"": {"dependencies": {PLUGIN: "*"}}}}
        (folder / "package-lock.json").write_text(json.dumps(lock) + "\n", encoding="utf-8")
        for source, relative in self.home_copies(ctx.env):
            target = home / relative
            if not target.exists() and not target.is_symlink():
                copy_file(source, target)
        root = CONFINED_HOME if self.confined(ctx) else home
        env = {k: v for k, v in ctx.env.items() if k not in _DROPPED}
        env.update({name: str(root / relative) for name, relative in XDG.items()})
        env.update(OFFLINE_ENV)
        return dataclasses.replace(ctx, env=env), model

    async def run(self, ctx: RunContext) -> Outcome:
        binary = self.resolve_binary()
        ctx, model = self.prepare(ctx)
        stream = OpenCodeStream()
        guard = BudgetGuard(stream, ctx, model)
        argv = build_argv(binary, ctx, self.config, model)
        proc = await self.spawn(ctx, argv, guard.feed, mark=ctx.execution_id)
        ended = await self.wait(proc, ctx, guard.halt)
        outcome = self.outcome(stream, ended, ctx, model=model, guard=guard)
        logger.info(
            "opencode run for task %s ended %s (exit %s)",
            ctx.task.id,
            outcome.status.value,
            ended.returncode,
            extra={"action": "opencode_outcome"},
        )
        return outcome

    def outcome(
        self,
        stream: OpenCodeStream,
        ended: Exit,
        ctx: RunContext,
        *,
        model: str,
        guard: BudgetGuard,
    ) -> Outcome:
        """Map how the process ended and what the stream said to an :class:`Outcome`."""
        status, error_msg = TaskState.FAILED, ""
        early = ended_early(ended, ctx)
        if early is not None:
            status, error_msg = early
        elif ctx.resume and stream.session_id and stream.session_id != ctx.session_id:
            error_msg = (
                f"OpenCode started a new session {stream.session_id} instead of continuing "
                f"{ctx.session_id!r}; the earlier conversation was not continued"
            )
        elif ended.returncode == 0 and stream.completed:
            status = TaskState.COMPLETED
        else:
            error_msg = failure_message(stream, ctx, ended.returncode)
        if guard.over_budget is not None and status in (TaskState.CANCELLED, TaskState.COMPLETED):
            status, error_msg = TaskState.BUDGET_EXCEEDED, guard.message()
        priced = stream.cost_usd > 0 or (
            bool(self.config.base_url) and self.config.price(model) is not None
        )
        return Outcome(
            status=status,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=model,
            cost_usd=stream.cost_usd,
            cost_reported=priced,
            tokens_in=stream.tokens_in,
            tokens_out=stream.tokens_out,
            error_msg=error_msg,
            text=stream.text,
            api_error_status=stream.api_error_status,
            details={
                "tools": stream.tools,
                "failed_tools": stream.failed_tools,
                "steps": stream.steps,
                "last_reason": stream.last_reason,
                "bad_lines": stream.bad_lines,
                "leftover_processes": ended.leftovers,
            },
        )


def failure_message(stream: OpenCodeStream, ctx: RunContext, code: int | None) -> str:
    """OpenCode's error (the API's own message, with its status), else the stderr tail (start-up
    failures such as an unknown session print only there), else what we know."""
    message = stream.error_message
    status = stream.api_error_status
    if message and status is not None and str(status) not in message:
        message = f"API error {status}: {message}"
    if not message:
        message = _ANSI.sub("", tail_file(ctx.stderr_path, 8000)).strip()[-2000:]
    if not message:
        message = "the agent exited without finishing its turn" + (
            f" (exit code {code})" if code is not None else ""
        )
    return message


# -- registration ------------------------------------------------------------------------------


def credentials(env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether OpenCode will find credentials: an ``opencode auth login``; otherwise it cannot
    tell (the ``[agents.opencode] api_key_env`` variable is looked up when a run starts)."""
    data = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    auth = Path(data) / NAME / "auth.json"
    if auth.is_file():
        return True, str(auth)
    return None, "the variable [agents.opencode] api_key_env names (checked when a run starts)"


def make_runner(settings: Settings, launcher: Launcher) -> OpenCodeRunner:
    return OpenCodeRunner(
        settings.agent_binary(NAME, NAME), launcher, OpenCodeSettings.of(settings)
    )


def opencode_spec() -> AgentSpec:
    """OpenCode's :class:`AgentSpec`, registered as any agent is (``registry.register``)."""
    return AgentSpec(
        name=NAME,
        profile=(
            "OpenCode CLI: a coding agent on any OpenAI-compatible model (local or hosted) or "
            "on OpenCode's own providers; reports its cost."
        ),
        capabilities=OpenCodeRunner.capabilities,
        make_runner=make_runner,
        default_binary=NAME,
        install_hint=OpenCodeRunner.install_hint,
        credentials=credentials,
        login_hint=LOGIN_HINT,
    )
