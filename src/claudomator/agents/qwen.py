"""Runner for Qwen Code (``qwen --prompt=... --output-format stream-json --yolo``).

Facts about the CLI (``@qwen-code/qwen-code`` 0.24.4) this runner relies on, checked against the
real CLI (docs/agents.md §17):

* The model is any OpenAI-compatible Chat Completions endpoint: ``OPENAI_BASE_URL``,
  ``OPENAI_API_KEY`` and ``OPENAI_MODEL`` (all three, or it finds no provider), with
  ``--auth-type openai``. ``[agents.qwen]`` ``base_url``, ``api_key_env`` (the *name* of the
  variable holding the key) and ``model`` set them per run, in the process's environment only.
* Everything the CLI keeps (settings.json, sessions under ``projects/<cwd slug>/chats/``, usage
  logs, installation id) is in ``$QWEN_HOME``, else ``$HOME/.qwen``. The runner points
  ``QWEN_HOME`` at the task's private home (``<data dir>/homes/<task>/.qwen``, the bubblewrap
  launcher's home for the task) and writes its settings.json there before each run; confined,
  ``QWEN_HOME`` is not passed and ``HOME/.qwen`` is the same folder. Never the user's ``~/.qwen``.
* ``--prompt=<text>`` carries any prompt unchanged (one leading ``-`` included).
* ``--session-id <uuid>`` starts our session, ``--resume <uuid>`` continues it from the **same
  cwd** only; an unknown id or the wrong cwd exit 1 with ``No saved session found with ID …`` on
  stderr and nothing on stdout, a reused ``--session-id`` exits 1 with ``Session Id … already
  exists``.
* There is no cost, only per-call usage on the ``assistant`` lines (see
  :mod:`~claudomator.agents.qwen_stream`): the pool estimates the cost from the price table and
  a budget is enforced live from those tokens (:class:`_BudgetGuard`).
* Retries: ``model.generationConfig.maxRetries`` bounds the OpenAI SDK's own retries and the
  rate-limit loop; the outer loop always makes 7 attempts (1.5 s doubling to 30 s, Retry-After
  honoured for 429 and 503), so a persistent 500 fails after about 80 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.cli import (
    CliRunner,
    context_dirs,
    ended_early,
    instructions_with_context,
)
from claudomator.agents.qwen_stream import QwenStream
from claudomator.agents.spec import AgentSpec
from claudomator.config import AgentSettings, Settings
from claudomator.errors import AgentError
from claudomator.isolation.base import Launcher
from claudomator.isolation.policy import origin
from claudomator.models import TaskState
from claudomator.process import Exit, tail_file

logger = logging.getLogger(__name__)

NAME: Final = "qwen"
HOME_DIR: Final = ".qwen"
SETTINGS_FILE: Final = "settings.json"
DEFAULT_MAX_RETRIES: Final = 0
LOGIN_HINT: Final = (
    "set [agents.qwen] base_url, model and api_key_env (or OPENAI_BASE_URL, OPENAI_MODEL and "
    "OPENAI_API_KEY)"
)
_STDERR_TAIL: Final = 2000
# Start-up chatter the CLI prints on every run; useless in an error message.
_STDERR_NOISE: Final = ("Ripgrep not available", "Warning: running headless with --yolo")


def qwen_settings(max_retries: int = DEFAULT_MAX_RETRIES) -> dict[str, object]:
    """The settings.json the runner writes into the private home before each run: no update
    checks, usage statistics or telemetry, no background memory extraction (it makes a model
    call of its own after a run), and the CLI's retries bounded."""
    return {
        "general": {"enableAutoUpdate": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "memory": {"enableManagedAutoMemory": False, "enableManagedAutoDream": False},
        "model": {"generationConfig": {"maxRetries": max_retries}},
    }


def build_argv(binary: str, ctx: RunContext, model: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The CLI's argument list for ``ctx``; the prompt travels as one ``--prompt=...``
    argument, ``extra`` (``[agents.qwen] args``) before the task's own additional args."""
    agent = ctx.task.agent
    argv = [
        binary,
        f"--prompt={instructions_with_context(agent)}",
        "--output-format",
        "stream-json",
        "--yolo",
        "--auth-type",
        "openai",
    ]
    if model:
        argv += ["--model", model]
    argv += ["--resume", ctx.session_id] if ctx.resume else ["--session-id", ctx.session_id]
    if agent.system_prompt_append:
        argv += ["--append-system-prompt", agent.system_prompt_append]
    if agent.disallowed_tools:
        argv += ["--exclude-tools", ",".join(agent.disallowed_tools)]
    for directory in context_dirs(agent, ctx.workdir):
        argv += ["--include-directories", directory]
    argv += [*extra, *agent.additional_args]
    return argv


def provider_env(env: Mapping[str, str], agent: AgentSettings | None, model: str) -> dict[str, str]:
    """``env`` with the provider ``[agents.qwen]`` configures: ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY`` (the value of the variable ``api_key_env`` names) and ``OPENAI_MODEL``;
    what the table leaves unset comes from ``env``. A named key variable that is unset is an
    :class:`AgentError`."""
    out = dict(env)
    if agent is not None and agent.base_url:
        out["OPENAI_BASE_URL"] = agent.base_url
    if agent is not None and agent.api_key_env:
        key = env.get(agent.api_key_env, "")
        if not key:
            raise AgentError(
                f"[agents.qwen] api_key_env names {agent.api_key_env}, which is not set in "
                "the orchestrator's environment"
            )
        out["OPENAI_API_KEY"] = key
    if model:
        out["OPENAI_MODEL"] = model
    return out


class _BudgetGuard:
    """Feeds the stream and halts the run once the cost estimated from the tokens the CLI
    reported so far passes the budget (Qwen Code has no budget of its own)."""

    def __init__(self, stream: QwenStream, ctx: RunContext, model: str) -> None:
        self.stream = stream
        self.ctx = ctx
        self.model = model
        self.halt = asyncio.Event()
        self.over_budget: float | None = None

    def feed(self, line: str) -> None:
        self.stream.feed(line)
        budget = self.ctx.task.agent.max_budget_usd
        if budget is None or self.ctx.estimate_cost is None or self.halt.is_set():
            return
        cost = self.ctx.estimate_cost(self.stream.model or self.model, *self.stream.live_tokens)
        if cost is not None and cost > budget:
            self.over_budget = cost
            logger.warning(
                "task %s: estimated $%.4f passed its budget of $%g; stopping Qwen Code",
                self.ctx.task.id,
                cost,
                budget,
                extra={"action": "budget"},
            )
            self.halt.set()


class QwenRunner(CliRunner):
    """Runs one execution of Qwen Code and maps its result to an :class:`Outcome`."""

    name = NAME
    label = "Qwen Code CLI"
    install_hint = "npm install -g @qwen-code/qwen-code"
    home_paths = (HOME_DIR,)  # settings, sessions, usage logs
    # the provider (set per run from [agents.qwen]) and the CLI's own switches; never QWEN_HOME,
    # which names a host path (confined, the private home's .qwen is the same folder)
    env_patterns = (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "QWEN_CODE_*",
        "QWEN_DISABLE_AUTO_TITLE",
    )
    capabilities = Capabilities(
        resumes_in_place=True,  # ``--resume`` works from the same cwd only
        options=frozenset(
            {
                "model",
                "max_budget_usd",  # estimated live from the reported tokens
                "system_prompt_append",
                "disallowed_tools",
                "additional_args",
                "context_files",
            }
        ),
    )

    def __init__(
        self,
        binary: str,
        launcher: Launcher,
        *,
        agent: AgentSettings | None = None,
        homes: Path | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        super().__init__(binary, launcher)
        self.agent = agent  # the [agents.qwen] table
        self.homes = homes  # Settings.homes_dir: one private home per task
        self.max_retries = max_retries

    def agent_paths(self, env: Mapping[str, str]) -> tuple[Path, ...]:
        """``$QWEN_HOME`` when set (it then holds everything), else ``home_paths``."""
        if env.get("QWEN_HOME"):
            return (Path(env["QWEN_HOME"]),)
        return super().agent_paths(env)

    def home_copies(self, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
        """The settings this runner wrote (in ``$QWEN_HOME``), for a private home that has none
        yet; nothing of the user's own ``~/.qwen``."""
        if env.get("QWEN_HOME"):
            return ((Path(env["QWEN_HOME"]) / SETTINGS_FILE, f"{HOME_DIR}/{SETTINGS_FILE}"),)
        return ()

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The model endpoint: the origin of ``OPENAI_BASE_URL`` (set per run from
        ``[agents.qwen] base_url``)."""
        found = origin(env.get("OPENAI_BASE_URL", ""))
        return (found,) if found else ()

    def qwen_home(self, ctx: RunContext) -> Path:
        """The task's Qwen folder: ``<homes>/<task>/.qwen`` (without ``homes``, one in the
        execution's log directory, which a resumed run does not find)."""
        if self.homes is None:
            return ctx.log_dir / "qwen-home" / HOME_DIR
        return self.homes / ctx.task.id / HOME_DIR

    def model_for(self, ctx: RunContext) -> str:
        """The task's model, else ``[agents.qwen] model``, else ``OPENAI_MODEL``."""
        configured = self.agent.model if self.agent is not None else ""
        return ctx.task.agent.model or configured or ctx.env.get("OPENAI_MODEL", "")

    def prepare(self, ctx: RunContext) -> tuple[RunContext, str]:
        """The run's context with Qwen's environment (provider, ``QWEN_HOME``), its settings
        written; and the model."""
        model = self.model_for(ctx)
        if not model:
            raise AgentError(f"no model for Qwen Code: {LOGIN_HINT}")
        home = self.qwen_home(ctx)
        home.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the task's private home
        home.mkdir(exist_ok=True, mode=0o700)
        settings = home / SETTINGS_FILE
        text = json.dumps(qwen_settings(self.max_retries), indent=2) + "\n"
        scratch = settings.with_suffix(".tmp")
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, settings)
        env = provider_env(ctx.env, self.agent, model)
        env.update(
            {
                "QWEN_HOME": str(home),
                "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1",
                "QWEN_DISABLE_AUTO_TITLE": "1",
            }
        )
        return dataclasses.replace(ctx, env=env), model

    async def run(self, ctx: RunContext) -> Outcome:
        binary = self.resolve_binary()
        ctx, model = self.prepare(ctx)
        stream = QwenStream()
        guard = _BudgetGuard(stream, ctx, model)
        extra = self.agent.args if self.agent is not None else ()
        argv = build_argv(binary, ctx, model, extra)
        proc = await self.spawn(ctx, argv, guard.feed, mark=ctx.execution_id)
        ended = await self.wait(proc, ctx, guard.halt)
        outcome = self.outcome(stream, ended, ctx, model=model, over_budget=guard.over_budget)
        logger.info(
            "qwen run for task %s ended %s (exit %s)",
            ctx.task.id,
            outcome.status.value,
            ended.returncode,
            extra={"action": "qwen_outcome"},
        )
        return outcome

    @staticmethod
    def outcome(
        stream: QwenStream,
        ended: Exit,
        ctx: RunContext,
        *,
        model: str = "",
        over_budget: float | None = None,
    ) -> Outcome:
        """Map how the process ended and what the stream said to an :class:`Outcome`
        (``over_budget``: the estimate at which the budget guard stopped the agent)."""
        tokens_in, tokens_out = stream.tokens
        status, error_msg = TaskState.FAILED, ""
        early = ended_early(ended, ctx)
        if early is not None:
            status, error_msg = early
        elif ended.returncode == 0 and stream.result is not None and not stream.is_error:
            status = TaskState.COMPLETED
        else:
            error_msg = failure_message(stream, ctx, ended.returncode)
        if over_budget is not None and status == TaskState.CANCELLED:
            status = TaskState.BUDGET_EXCEEDED
            error_msg = (
                f"estimated cost ${over_budget:.4f} passed the budget of "
                f"${ctx.task.agent.max_budget_usd:g}; stopped the agent"
            )
        return Outcome(
            status=status,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=stream.model or model,
            cost_usd=0.0,
            cost_reported=False,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            error_msg=error_msg,
            text=stream.text,
            api_error_status=stream.api_error_status,
            details={
                "subtype": stream.subtype,
                "tools": stream.tools_used,
                "session_tokens": list(stream.session_tokens),
                "bad_lines": stream.bad_lines,
                "leftover_processes": ended.leftovers,
            },
        )


def stderr_tail(ctx: RunContext, max_bytes: int = _STDERR_TAIL) -> str:
    """The end of the agent's stderr without the CLI's start-up chatter."""
    lines = tail_file(ctx.stderr_path, max_bytes * 4).splitlines()
    kept = "\n".join(line for line in lines if not line.startswith(_STDERR_NOISE)).strip()
    return kept[-max_bytes:]


def failure_message(stream: QwenStream, ctx: RunContext, code: int | None) -> str:
    """The result's error (the API's own message), else its text, else the stderr tail (start-up
    failures such as an unknown session print only there), else what we know."""
    message = stream.error_message.strip()
    if not message and stream.result is not None:
        message = stream.result_text.strip()
    if not message:
        message = stderr_tail(ctx)
    if not message:
        message = "the agent exited without a result" + (
            f" (exit code {code})" if code is not None else ""
        )
    return message


# -- registration ------------------------------------------------------------------------------


def credentials(env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether Qwen Code will find a key: ``OPENAI_API_KEY`` in the environment; otherwise it
    cannot tell (the ``[agents.qwen] api_key_env`` variable is looked up when a run starts)."""
    if env.get("OPENAI_API_KEY"):
        return True, "OPENAI_API_KEY"
    return None, "the variable [agents.qwen] api_key_env names (checked when a run starts)"


def make_runner(settings: Settings, launcher: Launcher) -> QwenRunner:
    """The runner for these settings: ``[agents.qwen]`` (binary, provider, extra args) and the
    private homes under the data dir."""
    return QwenRunner(
        settings.agent_binary(NAME, NAME),
        launcher,
        agent=settings.agents.get(NAME),
        homes=settings.homes_dir,
    )


def qwen_spec() -> AgentSpec:
    """Qwen Code's :class:`AgentSpec`, registered as any agent is (``registry.register``)."""
    return AgentSpec(
        name=NAME,
        profile=(
            "Qwen Code CLI: a coding agent on any OpenAI-compatible model (local or hosted); "
            "good for routine changes at low cost."
        ),
        capabilities=QwenRunner.capabilities,
        make_runner=make_runner,
        default_binary=NAME,
        install_hint=QwenRunner.install_hint,
        credentials=credentials,
        login_hint=LOGIN_HINT,
    )
