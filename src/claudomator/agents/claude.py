"""Runner for the Claude Code CLI (``claude -p ... --output-format stream-json``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.claude_stream import ClaudeStream
from claudomator.agents.cli import (
    CliRunner,
    context_dirs,
    ended_early,
    env_truthy,
    home_of,
    instructions_with_context,
    read_json,
)
from claudomator.agents.oneshot import FailureKind, OneShotFailed, last_json
from claudomator.isolation.policy import origin
from claudomator.models import TaskState
from claudomator.process import CommandResult, tail_file

logger = logging.getLogger(__name__)

_BUDGET_SUBTYPE = "error_max_budget_usd"
_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
_CLOUDS = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")
LOGIN_HINT = "set ANTHROPIC_API_KEY or log in once with `claude`"
ANTHROPIC_API = "https://api.anthropic.com"


def build_argv(binary: str, ctx: RunContext) -> list[str]:
    """The CLI's argument list for ``ctx``: every option first, the prompt last after ``--``."""
    agent = ctx.task.agent
    argv = [binary, "-p", "--output-format", "stream-json", "--verbose"]
    argv += ["--resume", ctx.session_id] if ctx.resume else ["--session-id", ctx.session_id]
    argv += ["--permission-mode", agent.permission_mode or "bypassPermissions"]
    if agent.model:
        argv += ["--model", agent.model]
    if agent.max_budget_usd is not None:
        argv += ["--max-budget-usd", format(agent.max_budget_usd, ".12g")]
    if agent.system_prompt_append:
        argv += ["--append-system-prompt", agent.system_prompt_append]
    if agent.allowed_tools:
        argv += ["--allowedTools", ",".join(agent.allowed_tools)]
    if agent.disallowed_tools:
        argv += ["--disallowedTools", ",".join(agent.disallowed_tools)]
    for directory in context_dirs(agent, ctx.workdir):
        argv += ["--add-dir", directory]
    argv += list(agent.additional_args)
    argv += ["--", instructions_with_context(agent)]
    return argv


def model_endpoints(env: Mapping[str, str]) -> tuple[str, ...]:
    """The model API the CLI talks to in ``env``: ``$ANTHROPIC_BASE_URL``'s origin when set,
    else the Anthropic API (Bedrock, Vertex or an OAuth refresh host are the operator's
    ``allowed_endpoints``). The runner's ``endpoints``, and a one-shot call's."""
    base = origin(env.get("ANTHROPIC_BASE_URL", ""))
    return (base or ANTHROPIC_API,)


class ClaudeRunner(CliRunner):
    """Runs one execution of the Claude Code CLI and maps its result to an :class:`Outcome`."""

    name = "claude"
    label = "Claude Code CLI"
    install_hint = "npm install -g @anthropic-ai/claude-code"
    home_paths = (".claude", ".claude.json")  # settings, credentials, sessions; its state file
    home_files = (".claude.json", ".claude/settings.json", ".claude/.credentials.json")
    env_patterns = ("ANTHROPIC_*", "CLAUDE_*", "DISABLE_*", "IS_SANDBOX", "MAX_THINKING_TOKENS")
    capabilities = Capabilities(
        resumes_in_place=False,  # the session lives outside the sandbox
        reports_cost=True,
        enforces_budget=True,
        options=frozenset(
            {
                "model",
                "max_budget_usd",
                "permission_mode",
                "allowed_tools",
                "disallowed_tools",
                "system_prompt_append",
                "additional_args",
                "context_files",
            }
        ),
    )

    def agent_paths(self, env: Mapping[str, str]) -> tuple[Path, ...]:
        """``$CLAUDE_CONFIG_DIR`` when set (it then holds everything), else ``home_paths``."""
        if env.get("CLAUDE_CONFIG_DIR"):
            return (Path(env["CLAUDE_CONFIG_DIR"]),)
        return super().agent_paths(env)

    def home_copies(self, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
        """From ``$CLAUDE_CONFIG_DIR`` when set (confined, the CLI's config is the private
        home's ``.claude``), else ``home_files``."""
        if env.get("CLAUDE_CONFIG_DIR"):
            config = Path(env["CLAUDE_CONFIG_DIR"])
            names = (".claude.json", "settings.json", ".credentials.json")
            return tuple((config / n, f".claude/{n}") for n in names)
        return super().home_copies(env)

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        return model_endpoints(env)

    async def run(self, ctx: RunContext) -> Outcome:
        stream = ClaudeStream()
        argv = build_argv(self.resolve_binary(), ctx)
        proc = await self.spawn(ctx, argv, stream.feed, mark=ctx.execution_id)
        ended = await self.wait(proc, ctx)
        tokens_in, tokens_out = stream.tokens
        status, error_msg = TaskState.FAILED, ""
        early = ended_early(ended, ctx)
        if early is not None:
            status, error_msg = early
        elif stream.subtype == _BUDGET_SUBTYPE:
            status, error_msg = TaskState.BUDGET_EXCEEDED, self._error_text(stream, ctx)
        elif ended.returncode == 0 and stream.result is not None and not stream.is_error:
            status = TaskState.COMPLETED
        else:
            error_msg = self._error_text(stream, ctx, ended.returncode)
        outcome = Outcome(
            status=status,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=stream.model,
            cost_usd=stream.cost_usd,
            cost_reported=stream.result is not None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            error_msg=error_msg,
            text=stream.text,
            api_error_status=stream.api_error_status,
            details={
                "subtype": stream.subtype,
                "retries": stream.retries,
                # the CLI's own last wait (it honours Retry-After): a hint for our backoff
                "retry_after": (stream.last_retry_delay_ms or 0) / 1000 or None,
            },
        )
        return outcome

    @staticmethod
    def _error_text(stream: ClaudeStream, ctx: RunContext, code: int | None = None) -> str:
        """The result text (or its errors), else the stderr tail, else what we know."""
        parts = [stream.result_text.strip(), *stream.errors] if stream.result else []
        message = "\n".join(p for p in parts if p)
        if not message:
            message = tail_file(ctx.stderr_path, 2000)
        if not message:
            message = "the agent exited without a result" + (
                f" (exit code {code})" if code is not None else ""
            )
        if stream.api_error_status is not None and str(stream.api_error_status) not in message:
            message = f"API error {stream.api_error_status}: {message}"
        return message


# -- one question, one JSON answer (the chooser and elaborate; see agents/registry.py) --------

ONE_SHOT_MODEL = "sonnet"
ONE_SHOT_TOOLS = "Read,Glob,Grep"  # read-only: the CLI may look at the project, never change it


def one_shot_argv(binary: str, prompt: str, model: str) -> list[str]:
    """``claude -p --output-format json`` with read-only tools and no saved session."""
    argv = [binary, "-p", "--output-format", "json", "--model", model or ONE_SHOT_MODEL]
    return [*argv, "--tools", ONE_SHOT_TOOLS, "--no-session-persistence", "--", prompt]


def one_shot_reply(result: CommandResult) -> str:
    """The reply text of a one-shot call (its ``result``); :class:`OneShotFailed` if none."""
    reply = last_json(result.stdout)
    if not isinstance(reply, dict):
        kind: FailureKind = "invalid_reply" if result.ok else "failed"
        raise OneShotFailed(f"exit {result.returncode}: {result.tail(3) or 'no output'}", kind=kind)
    text = str(reply.get("result") or "")
    if reply.get("is_error") or not result.ok:
        detail = text or str(reply.get("subtype") or "") or result.tail(3)
        raise OneShotFailed(f"exit {result.returncode}: {detail[:500]}")
    return text


# -- credentials (for readiness) ---------------------------------------------------------------


def credentials(env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether Claude Code will find credentials, and where (docs/agents.md §5)."""
    for name in (*_KEYS, *_CLOUDS):
        if env_truthy(env.get(name)):
            return True, name
    config = Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else None
    config = config or home_of(env) / ".claude"
    if (config / ".credentials.json").is_file():
        return True, str(config / ".credentials.json")
    settings = read_json(config / "settings.json")
    if isinstance(settings, dict):
        block = settings.get("env")
        if settings.get("apiKeyHelper") or (
            isinstance(block, dict) and any(block.get(k) for k in _KEYS)
        ):
            return True, str(config / "settings.json")
    if sys.platform == "darwin":
        return None, "the macOS keychain (not checked)"
    return False, ""
