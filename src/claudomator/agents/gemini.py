"""Runner for the Gemini CLI (``gemini --prompt=... --output-format stream-json --yolo``).

Facts about the CLI (0.61.0) this runner relies on, checked against the real CLI:

* The prompt is passed as ``--prompt=<text>``, in one argument: ``-p <text>`` breaks on a prompt
  that starts with ``-`` (a usage error, exit 1), and ``--prompt --version`` even prints the
  version and exits 0. With ``=`` any text reaches the model unchanged.
* ``--session-id <uuid>`` starts a session with our id (``init.session_id`` echoes it) and
  ``--resume <uuid>`` continues it, from the **same cwd** only. An unknown id, the wrong cwd or
  a reused ``--session-id`` exit 42 with the reason on stderr and nothing on stdout.
* An API failure ends with ``result.status == "error"`` and exit code ``HTTP status & 0xFF``;
  retries (``general.maxAttempts``) and quota errors are visible only on stderr.
* There is no cost in the stream, only token counts, so the pool estimates the cost.
* ``run_shell_command`` starts each command **detached** (its own process group), so killing
  the CLI's process group leaves the command running, and SIGTERM does not make the CLI stop
  it. :class:`~claudomator.process.AgentProcess` therefore marks the agent's environment with
  ``CLAUDOMATOR_EXECUTION_ID`` and, once the CLI has ended, kills every process still carrying
  that mark.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Final

from claudomator.agents.base import Capabilities, Outcome, RunContext, unapplied_options
from claudomator.agents.cli import (
    CliRunner,
    context_dirs,
    ended_early,
    env_truthy,
    home_of,
    instructions_with_context,
)
from claudomator.agents.gemini_stream import (
    FATAL_EXITS,
    GeminiStream,
    status_from_exit,
    strip_json_fence,
)
from claudomator.agents.oneshot import FailureKind, OneShotFailed, error_message, last_json
from claudomator.isolation.policy import origin
from claudomator.models import AgentConfig, TaskState
from claudomator.process import CommandResult, Exit, tail_file

logger = logging.getLogger(__name__)

_KEYS: Final = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS")
LOGIN_HINT: Final = "set GEMINI_API_KEY or log in once with `gemini`"
GEMINI_API: Final = "https://generativelanguage.googleapis.com"
GOOGLE_LOGIN: Final = ("https://cloudcode-pa.googleapis.com", "https://oauth2.googleapis.com")
_STDERR_TAIL: Final = 2000
_QUOTA_SCAN: Final = 20000
_QUOTA: Final = re.compile(r"exhausted your daily quota|TerminalQuotaError", re.IGNORECASE)
# Start-up chatter the CLI prints on every run; useless in an error message.
_STDERR_NOISE: Final = (
    "Warning: 256-color support not detected",
    "YOLO mode is enabled",
    "Ripgrep is not available",
    "[STARTUP]",
)


def build_argv(binary: str, ctx: RunContext) -> list[str]:
    """The CLI's argument list for ``ctx``; the prompt travels as one ``--prompt=...`` argument."""
    agent = ctx.task.agent
    argv = [
        binary,
        f"--prompt={instructions_with_context(agent)}",
        "--output-format",
        "stream-json",
        "--yolo",
    ]
    if agent.model:
        argv += ["-m", agent.model]
    argv += ["--resume", ctx.session_id] if ctx.resume else ["--session-id", ctx.session_id]
    for directory in context_dirs(agent, ctx.workdir):
        argv += ["--include-directories", directory]
    argv += list(agent.additional_args)
    return argv


def ignored_options(agent: AgentConfig) -> list[str]:
    """Options of ``agent`` that the Gemini CLI has no flag for (they are not applied; the
    attempt logs them, for every runner, from its capabilities)."""
    return unapplied_options(agent, GeminiRunner.capabilities)


def stderr_tail(ctx: RunContext, max_bytes: int = _STDERR_TAIL) -> str:
    """The end of the agent's stderr without the CLI's start-up chatter."""
    lines = tail_file(ctx.stderr_path, max_bytes * 4).splitlines()
    kept = "\n".join(line for line in lines if not line.startswith(_STDERR_NOISE)).strip()
    return kept[-max_bytes:]


class _BudgetGuard:
    """Feeds the stream and halts the run once the live cost estimate passes the budget.

    The Gemini CLI takes no budget and reports usage only at the end, so we estimate as we go
    (see :attr:`GeminiStream.live_tokens`); without a budget or a price it only feeds.
    """

    def __init__(self, stream: GeminiStream, ctx: RunContext) -> None:
        self.stream = stream
        self.ctx = ctx
        self.halt = asyncio.Event()
        self.over_budget: float | None = None  # the estimate that passed the budget

    def feed(self, line: str) -> None:
        self.stream.feed(line)
        budget = self.ctx.task.agent.max_budget_usd
        if budget is None or self.ctx.estimate_cost is None or self.halt.is_set():
            return
        model = self.ctx.task.agent.model or self.stream.model
        cost = self.ctx.estimate_cost(model, *self.stream.live_tokens)
        if cost is not None and cost > budget:
            self.over_budget = cost
            logger.warning(
                "task %s: estimated $%.4f passed its budget of $%g; stopping Gemini",
                self.ctx.task.id,
                cost,
                budget,
                extra={"action": "budget"},
            )
            self.halt.set()


def model_endpoints(env: Mapping[str, str]) -> tuple[str, ...]:
    """The model API the CLI talks to in ``env``: ``$GOOGLE_GEMINI_BASE_URL``'s origin when
    set, else the Gemini API, and without an API key also the hosts of a Google login (Code
    Assist, its OAuth). The runner's ``endpoints``, and a one-shot call's."""
    base = origin(env.get("GOOGLE_GEMINI_BASE_URL", ""))
    if base:
        return (base,)
    if any(env.get(k) for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY")):
        return (GEMINI_API,)
    return (GEMINI_API, *GOOGLE_LOGIN)


class GeminiRunner(CliRunner):
    """Runs one execution of the Gemini CLI and maps its result to an :class:`Outcome`."""

    name = "gemini"
    label = "Gemini CLI"
    install_hint = "npm install -g @google/gemini-cli"
    home_paths = (".gemini",)  # settings, oauth credentials, sessions (tmp/<project>/chats)
    home_files = (".gemini/settings.json", ".gemini/oauth_creds.json", ".gemini/.env")
    env_patterns = ("GEMINI_*", "GOOGLE_*")
    capabilities = Capabilities(
        resumes_in_place=True,  # ``--resume`` works from the same cwd only
        options=frozenset({"model", "additional_args", "context_files"}),
    )

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        return model_endpoints(env)

    async def run(self, ctx: RunContext) -> Outcome:
        stream = GeminiStream()
        guard = _BudgetGuard(stream, ctx)
        argv = build_argv(self.resolve_binary(), ctx)
        proc = await self.spawn(ctx, argv, guard.feed, mark=ctx.execution_id or uuid.uuid4().hex)
        ended = await self.wait(proc, ctx, guard.halt)
        outcome = self._outcome(stream, ended, ctx, over_budget=guard.over_budget)
        logger.info(
            "gemini run for task %s ended %s (exit %s)",
            ctx.task.id,
            outcome.status.value,
            ended.returncode,
            extra={"action": "gemini_outcome"},
        )
        return outcome

    def _outcome(
        self,
        stream: GeminiStream,
        ended: Exit,
        ctx: RunContext,
        *,
        over_budget: float | None = None,
    ) -> Outcome:
        """Map how the process ended and what the stream said to an :class:`Outcome`
        (``over_budget``: the estimated cost at which the budget guard stopped the agent)."""
        tokens_in, tokens_out = stream.tokens
        details: dict[str, object] = {
            "result_status": stream.status,
            "error_type": stream.error_type,
            "tools": stream.tools_used,
            "tool_errors": sum(t.status == "error" for t in stream.tools),
            "bad_lines": stream.bad_lines,
        }
        status, error_msg, api_status = TaskState.FAILED, "", None
        early = ended_early(ended, ctx)
        if early is not None:
            status, error_msg = early
        elif ended.returncode == 0 and stream.succeeded:
            status = TaskState.COMPLETED
        else:
            api_status, error_msg, quota = self._failure(stream, ctx, ended.returncode)
            if quota:
                details["quota"] = True
        if over_budget is not None and status == TaskState.CANCELLED:
            status = TaskState.BUDGET_EXCEEDED
            error_msg = (
                f"estimated cost ${over_budget:.4f} passed the budget of "
                f"${ctx.task.agent.max_budget_usd:g}; stopped the agent"
            )
        details["leftover_processes"] = ended.leftovers
        return Outcome(
            status=status,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=stream.model or ctx.task.agent.model,
            cost_usd=0.0,
            cost_reported=False,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            error_msg=error_msg,
            text=strip_json_fence(stream.text),
            api_error_status=api_status,
            details=details,
        )

    @staticmethod
    def _failure(
        stream: GeminiStream, ctx: RunContext, code: int | None
    ) -> tuple[int | None, str, bool]:
        """A failure's API status, its most telling error text, and whether it names the quota."""
        status = stream.api_error_status or status_from_exit(code)
        message = stream.error_message.strip() or stderr_tail(ctx)
        if not message:
            message = f"exited with code {code}"
            if code in FATAL_EXITS:
                message += f": {FATAL_EXITS[code]}"
        elif stream.result is None and code in FATAL_EXITS:
            message = f"{message}\n(exit code {code}: {FATAL_EXITS[code]})"
        if status is not None and str(status) not in message:
            message = f"API error {status}: {message}"
        scanned = f"{stream.error_message}\n{tail_file(ctx.stderr_path, _QUOTA_SCAN)}"
        return status, message, bool(_QUOTA.search(scanned))


# -- one question, one JSON answer (the chooser and elaborate; see agents/registry.py) --------

ONE_SHOT_MODEL = "gemini-2.5-flash"


def one_shot_argv(binary: str, prompt: str, model: str) -> list[str]:
    """``gemini --prompt=<prompt> -o json``: the prompt in one argument, as for runs."""
    return [binary, f"--prompt={prompt}", "-o", "json", "-m", model or ONE_SHOT_MODEL]


def one_shot_reply(result: CommandResult) -> str:
    """The reply text of a one-shot call (its ``response``); :class:`OneShotFailed` if none."""
    reply = last_json(result.stdout) or last_json(result.stderr)
    if isinstance(reply, dict) and "error" in reply:
        raise OneShotFailed(f"exit {result.returncode}: {error_message(reply)[:500]}")
    if not result.ok or not isinstance(reply, dict):
        kind: FailureKind = "invalid_reply" if result.ok else "failed"
        raise OneShotFailed(f"exit {result.returncode}: {result.tail(3) or 'no output'}", kind=kind)
    return str(reply.get("response") or "")


# -- credentials (for readiness) ---------------------------------------------------------------


def credentials(env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether the Gemini CLI will find credentials, and where."""
    for name in _KEYS:
        if env.get(name):
            return True, name
    if env_truthy(env.get("GOOGLE_GENAI_USE_VERTEXAI")) and env.get("GOOGLE_CLOUD_PROJECT"):
        return True, "GOOGLE_GENAI_USE_VERTEXAI"
    folder = home_of(env) / ".gemini"
    if (folder / "oauth_creds.json").is_file():
        return True, str(folder / "oauth_creds.json")
    try:
        dotenv = (folder / ".env").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        dotenv = ""
    keys = ("GEMINI_API_KEY=", "GOOGLE_API_KEY=")
    if any(line.strip().startswith(keys) for line in dotenv.splitlines()):
        return True, str(folder / ".env")
    return False, ""
