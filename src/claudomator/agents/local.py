"""Runner for a local OpenAI-compatible model (Ollama, LM Studio, vLLM): one streamed chat reply.

The ``local`` agent answers in text; it has no tools and edits no files. One execution sends one
chat completion: an optional system message (``agent.system_prompt_append``) and the user
message (``agent.instructions``), with the task's ``model``, ``temperature`` and ``max_tokens``
(else the configured model and default temperature).

So that one log reader serves every agent, ``stdout.log`` gets Claude-style stream-json lines:
``{"type": "system", "subtype": "init", ...}`` first, one ``{"type": "assistant", ...}`` line per
streamed text delta, and a ``{"type": "result", ...}`` line with the full text (or the error),
``total_cost_usd`` 0 and the token usage. Errors also go to ``stderr.log``.

The conversation is kept in ``<log_dir>/chat.json`` (``{"session_id", "model", "messages"}``;
the assistant's reply is included only when the run completed). To *resume* (``ctx.resume``)
the runner reads the transcript in the directory named by the environment variable
``CLAUDOMATOR_PREVIOUS_LOG_DIR`` (set by the pool to the log directory of the execution being
resumed), replays its turns, and sends the new instructions as the next user turn; the system
message is the task's current one, else the transcript's. A resume without a readable
transcript fails rather than silently losing the context.

No process is spawned, so ``ctx.on_started`` is never called and ``exit_code`` stays None.
The runner builds no model client: the registry hands it the process's one
:class:`~claudomator.llm.LLMClient` (see :meth:`~claudomator.agents.registry.AgentRegistry.
runners`), and each run streams through a :meth:`~claudomator.llm.LLMClient.with_retries` view
of it with the runner's own ``max_retries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Final

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.config import LocalModelSettings
from claudomator.errors import AgentError
from claudomator.llm import ChatMessage, LLMClient, LLMError, Usage
from claudomator.models import TaskState

logger = logging.getLogger(__name__)

PREVIOUS_LOG_DIR_ENV: Final = "CLAUDOMATOR_PREVIOUS_LOG_DIR"
TRANSCRIPT_NAME: Final = "chat.json"


@dataclass
class _Reply:
    """What the server has sent so far."""

    model: str
    response_id: str = field(default_factory=lambda: f"msg_local_{uuid.uuid4().hex[:24]}")
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _StreamLog:
    """Writes the Claude-style stream-json lines of one execution to ``stdout.log``."""

    def __init__(self, path: Path, session_id: str) -> None:
        self.session_id = session_id
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def close(self) -> None:
        self._fh.close()

    def _write(self, event: dict[str, Any]) -> None:
        self._fh.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._fh.flush()

    def init(self, model: str, cwd: Path) -> None:
        self._write(
            {
                "type": "system",
                "subtype": "init",
                "session_id": self.session_id,
                "model": model,
                "cwd": str(cwd),
            }
        )

    def text(self, reply: _Reply, text: str) -> None:
        message = {
            "id": reply.response_id,
            "model": reply.model,
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
        }
        self._write({"type": "assistant", "message": message, "session_id": self.session_id})

    def result(self, reply: _Reply, error: str = "", api_error_status: int | None = None) -> None:
        usage = reply.usage or Usage(0, 0, estimated=True)
        self._write(
            {
                "type": "result",
                "subtype": "error" if error else "success",
                "is_error": bool(error),
                "api_error_status": api_error_status,
                "result": error or reply.text,
                "session_id": self.session_id,
                "model": reply.model,
                "total_cost_usd": 0,
                "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
                "tokens_estimated": usage.estimated,
            }
        )


def read_transcript(log_dir: Path) -> list[ChatMessage]:
    """The messages of the transcript in ``log_dir``; raises :class:`AgentError` if unusable."""
    path = log_dir / TRANSCRIPT_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AgentError(f"cannot read the conversation to resume from {path}: {exc}") from exc
    raw = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise AgentError(f"{path}: no list of messages in the transcript")
    messages: list[ChatMessage] = []
    for item in raw:
        role = item.get("role") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise AgentError(f"{path}: malformed message {item!r}")
        messages.append(ChatMessage(role=role, content=content))
    return messages


def conversation(ctx: RunContext) -> list[ChatMessage]:
    """The messages to send for ``ctx``: system, replayed turns (when resuming), instructions."""
    agent = ctx.task.agent
    history: list[ChatMessage] = []
    if ctx.resume:
        previous = ctx.env.get(PREVIOUS_LOG_DIR_ENV, "")
        if not previous:
            raise AgentError(
                f"cannot resume session {ctx.session_id}: {PREVIOUS_LOG_DIR_ENV} is not set"
            )
        history = read_transcript(Path(previous))
    system = agent.system_prompt_append or next(
        (m["content"] for m in history if m["role"] == "system"), ""
    )
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages += [m for m in history if m["role"] != "system"]
    messages.append(ChatMessage(role="user", content=agent.instructions))
    return messages


class LocalRunner:
    """Runs one execution against the configured OpenAI-compatible server (see module doc)."""

    name = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        text_only=True,  # it answers in text: no files, so no protocol preamble
        resumes_in_place=False,  # the session (chat.json) lives outside the sandbox
        reports_cost=True,  # it costs nothing: 0 is reported, not estimated
        spawns_process=False,
        options=frozenset({"model", "system_prompt_append", "temperature", "max_tokens"}),
    )

    def __init__(
        self, settings: LocalModelSettings, llm: LLMClient, *, max_retries: int = 2
    ) -> None:
        self.settings = settings
        self.llm = llm  # the process's client: its owner closes it, never this runner
        self.max_retries = max_retries

    async def run(self, ctx: RunContext) -> Outcome:
        agent = ctx.task.agent
        model = agent.model or self.settings.model
        if not self.settings.endpoint or not model:
            raise AgentError("no local model configured: set [local_model] endpoint and model")
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        ctx.stderr_path.touch()
        reply = _Reply(model)
        log = _StreamLog(ctx.stdout_path, ctx.session_id)
        # a local model costs nothing, whatever happens: the cost of 0 is reported, not estimated
        outcome = Outcome(
            TaskState.FAILED, session_id=ctx.session_id, model=model, cost_reported=True
        )
        messages: list[ChatMessage] = []
        started = time.monotonic()
        try:
            log.init(model, ctx.workdir)
            messages = conversation(ctx)
            outcome = await self._converse(ctx, messages, reply, log)
        except AgentError as exc:
            outcome = dataclasses.replace(outcome, error_msg=str(exc))
        except Exception as exc:
            outcome = dataclasses.replace(outcome, error_msg=f"internal error: {exc!r}")
            raise
        finally:
            if outcome.status == TaskState.COMPLETED:
                log.result(reply)
            else:
                error = outcome.error_msg or "interrupted before it finished"
                outcome = dataclasses.replace(outcome, error_msg=error)
                log.result(reply, outcome.error_msg, outcome.api_error_status)
                _append(ctx.stderr_path, outcome.error_msg)
            log.close()
            if messages:
                _write_transcript(ctx, reply, messages, outcome.status == TaskState.COMPLETED)
        logger.info(
            "local model %s: task %s %s in %.1fs",
            outcome.model,
            ctx.task.id,
            outcome.status.value,
            time.monotonic() - started,
            extra={"action": "local_run"},
        )
        return outcome

    async def _converse(
        self, ctx: RunContext, messages: list[ChatMessage], reply: _Reply, log: _StreamLog
    ) -> Outcome:
        """Stream the reply, racing it against ``ctx.timeout`` and ``ctx.stop``."""
        agent = ctx.task.agent
        temperature = agent.temperature
        if temperature is None:
            temperature = self.settings.default_temperature
        client = self.llm.with_retries(max_retries=self.max_retries)

        async def stream() -> None:
            chat = client.stream_chat(
                messages,
                model=reply.model,
                temperature=temperature,
                max_tokens=agent.max_tokens,
            )
            async with contextlib.aclosing(chat) as deltas:
                async for delta in deltas:
                    reply.model = delta.model or reply.model
                    reply.response_id = delta.response_id or reply.response_id
                    if delta.text:
                        reply.parts.append(delta.text)
                        log.text(reply, delta.text)
                    if delta.usage is not None:
                        reply.usage = delta.usage
                        reply.finish_reason = delta.finish_reason

        work = asyncio.create_task(stream(), name=f"local:{ctx.execution_id}")
        stopped = asyncio.create_task(ctx.stop.wait())
        try:
            await asyncio.wait(
                {work, stopped}, timeout=ctx.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (work, stopped):
                task.cancel()
            await asyncio.gather(work, stopped, return_exceptions=True)
        status, error_msg, api_status = TaskState.FAILED, "", None
        tokens_in = tokens_out = 0
        details: dict[str, object] = {}
        if work.done() and not work.cancelled():
            error = work.exception()
            if error is None:
                usage = reply.usage or Usage(0, 0, estimated=True)
                status = TaskState.COMPLETED
                tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
                details = {
                    "finish_reason": reply.finish_reason,
                    "tokens_estimated": usage.estimated,
                    "messages": len(messages),
                }
            elif isinstance(error, LLMError):
                error_msg, api_status = str(error), error.status
            else:
                raise error
        elif stopped.done() and not stopped.cancelled():
            status = TaskState.CANCELLED
            error_msg = "stopped before it finished; cancelled the request"
        else:
            status = TaskState.TIMED_OUT
            error_msg = f"timed out after {ctx.timeout:g}s; cancelled the request"
        return Outcome(
            status,
            session_id=ctx.session_id,
            model=reply.model,
            cost_reported=True,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            error_msg=error_msg,
            text=reply.text,
            api_error_status=api_status,
            details=details,
        )


def _append(path: Path, text: str) -> None:
    if text:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text.rstrip("\n") + "\n")


def _write_transcript(
    ctx: RunContext, reply: _Reply, messages: list[ChatMessage], completed: bool
) -> None:
    turns = [dict(m) for m in messages]
    if completed:
        turns.append({"role": "assistant", "content": reply.text})
    data = {"session_id": ctx.session_id, "model": reply.model, "messages": turns}
    (ctx.log_dir / TRANSCRIPT_NAME).write_text(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
