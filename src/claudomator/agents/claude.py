"""Runner for the Claude Code CLI (``claude -p ... --output-format stream-json``)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.claude_stream import ClaudeStream
from claudomator.errors import AgentError
from claudomator.models import AgentConfig, TaskState
from claudomator.process import AgentProcess, tail_file

logger = logging.getLogger(__name__)

_BUDGET_SUBTYPE = "error_max_budget_usd"


def context_dirs(agent: AgentConfig, workdir: Path) -> list[str]:
    """Directories outside the sandbox that hold the task's context files (for ``--add-dir``)."""
    dirs: list[str] = []
    for name in agent.context_files:
        path = Path(name).expanduser()
        if not path.is_absolute():
            continue  # relative context files live in the project, hence in the sandbox
        parent = (path if path.is_dir() else path.parent).resolve()
        if not parent.is_relative_to(workdir.resolve()) and str(parent) not in dirs:
            dirs.append(str(parent))
    return dirs


def prompt_for(agent: AgentConfig) -> str:
    """The instructions, with the context files named so the agent reads them first."""
    prompt = agent.instructions
    if agent.context_files:
        files = "\n".join(f"- {f}" for f in agent.context_files)
        prompt = f"{prompt}\n\nRead these context files before you start:\n{files}"
    return prompt


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
    argv += ["--", prompt_for(agent)]
    return argv


class ClaudeRunner:
    """Runs one execution of the Claude Code CLI and maps its result to an :class:`Outcome`."""

    name = "claude"
    resume_needs_same_dir = False  # the session lives outside the sandbox

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def resolve_binary(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            raise AgentError(
                f"Claude Code CLI not found: {self.binary!r} (install it with "
                "`npm install -g @anthropic-ai/claude-code` or set claude_binary_path)"
            )
        return found

    async def run(self, ctx: RunContext) -> Outcome:
        stream = ClaudeStream()
        argv = build_argv(self.resolve_binary(), ctx)
        proc = AgentProcess(
            argv,
            cwd=ctx.workdir,
            env=ctx.env,
            stdout_path=ctx.stdout_path,
            stderr_path=ctx.stderr_path,
            on_line=stream.feed,
            kill_grace=ctx.kill_grace,
            mark=ctx.execution_id,
        )
        try:
            await proc.start()
        except OSError as exc:
            raise AgentError(f"cannot start {argv[0]}: {exc}") from exc
        if ctx.on_started is not None and proc.pid is not None:
            ctx.on_started(proc.pid)
        ended = await proc.wait(ctx.timeout, ctx.stop)
        tokens_in, tokens_out = stream.tokens
        outcome = Outcome(
            status=TaskState.FAILED,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=stream.model,
            cost_usd=stream.cost_usd,
            cost_reported=stream.result is not None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            text=stream.text,
            api_error_status=stream.api_error_status,
            details={
                "subtype": stream.subtype,
                "retries": stream.retries,
                # the CLI's own last wait (it honours Retry-After): a hint for our backoff
                "retry_after": (stream.last_retry_delay_ms or 0) / 1000 or None,
            },
        )
        if ended.timed_out:
            outcome.status = TaskState.TIMED_OUT
            outcome.error_msg = f"timed out after {ctx.timeout:g}s; killed the agent's process tree"
        elif ended.stopped:
            outcome.status = TaskState.CANCELLED
            outcome.error_msg = "stopped before it finished"
        elif stream.subtype == _BUDGET_SUBTYPE:
            outcome.status = TaskState.BUDGET_EXCEEDED
            outcome.error_msg = self._error_text(stream, ctx)
        elif ended.returncode == 0 and stream.result is not None and not stream.is_error:
            outcome.status = TaskState.COMPLETED
        else:
            outcome.error_msg = self._error_text(stream, ctx, ended.returncode)
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
