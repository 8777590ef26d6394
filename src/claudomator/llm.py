"""A small client for an OpenAI-compatible model server (Ollama, LM Studio, vLLM).

Built on the ``openai`` SDK (``AsyncOpenAI`` with ``base_url``), it serves the LLM-shaped helpers
(the agent chooser, elaborate, summaries, triage) and the ``local`` agent runner::

    async with LLMClient(settings.local_model) as llm:  # one per process, closed by its owner
        text = await llm.complete("You are terse.", "Say hi")
        plan = await llm.with_retries(max_retries=0, extra_attempts=0).complete(...)
        data = await llm.complete_json("Classify the task.", task_text, schema_hint='{"kind": str}')
        async for delta in llm.stream_chat([{"role": "user", "content": "Hi"}]):
            ...  # delta.text pieces, then one last delta with delta.usage

Retries happen at two levels. The SDK retries connection errors, timeouts, 408/409/429/5xx up
to ``max_retries`` times (honouring ``Retry-After`` up to its own limit). When it gives up on a
429 or 503, we wait ourselves (``Retry-After`` capped at ``max_retry_wait`` seconds, else 2, 4,
8 … seconds) and try again, at most ``extra_attempts`` times. Every failure reaches the caller
as :class:`LLMError`, carrying the HTTP status when there was one.

A process builds one client (the :class:`~claudomator.runtime.Runtime`, or a one-off command at
its entry point) and hands it down; a caller that wants other retry settings for its own calls
asks for a view with :meth:`LLMClient.with_retries`, which shares the owner's HTTP connection
pool (like the SDK's ``with_options``) and is never closed itself: only the owner closes.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import openai
from openai.types.chat import ChatCompletionMessageParam

from claudomator.chat import (
    ChatDelta,
    ChatMessage,
    LLMError,
    Usage,
    parse_json_reply,
    retry_after,
    safe_url,
)
from claudomator.config import LocalModelSettings

logger = logging.getLogger(__name__)

__all__ = [
    "ChatDelta",
    "ChatMessage",
    "LLMClient",
    "LLMError",
    "Usage",
    "parse_json_reply",
    "safe_url",
]

_T = TypeVar("_T")
_BACKOFF_STATUSES = frozenset({429, 503})


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    if isinstance(body, str) and body:
        return body
    return exc.message


def _sdk_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    params: list[ChatCompletionMessageParam] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            params.append({"role": "system", "content": content})
        elif role == "assistant":
            params.append({"role": "assistant", "content": content})
        else:
            params.append({"role": "user", "content": content})
    return params


class LLMClient:
    """An OpenAI-compatible chat client for one configured server. Its owner closes it once;
    a :meth:`with_retries` view shares its connections and closes nothing."""

    def __init__(
        self,
        settings: LocalModelSettings,
        *,
        max_retries: int = 2,
        extra_attempts: int = 3,
        max_retry_wait: float = 60.0,
    ) -> None:
        self.settings = settings
        self.max_retries = max_retries
        self.extra_attempts = extra_attempts
        self.max_retry_wait = max_retry_wait
        self._sdk: openai.AsyncOpenAI | None = None
        self._owner: LLMClient | None = None  # set on a view: the client whose pool it shares

    def with_retries(
        self, *, max_retries: int | None = None, extra_attempts: int | None = None
    ) -> LLMClient:
        """This client with other retry settings for the calls made through the view.

        The view shares this client's HTTP connection pool; closing it closes nothing (the
        owner's :meth:`aclose` does). Unset settings are this client's.
        """
        view = copy.copy(self)  # not a new client: nothing is built, nothing to close
        view._owner = self._owner or self
        view._sdk = None
        if max_retries is not None:
            view.max_retries = max_retries
        if extra_attempts is not None:
            view.extra_attempts = extra_attempts
        return view

    @property
    def owner(self) -> LLMClient:
        """The client that owns the connections: this one, or the one this view was made of."""
        return self._owner or self

    @property
    def available(self) -> bool:
        """Whether a server and a model are configured."""
        return bool(self.settings.endpoint and self.settings.model)

    @property
    def endpoint(self) -> str:
        return safe_url(self.settings.endpoint)

    def _client(self) -> openai.AsyncOpenAI:
        if not self.settings.endpoint:
            raise LLMError(
                "no local model configured: set [local_model] endpoint", kind="connection"
            )
        if self._owner is not None:  # a view: the owner's pool, with this view's SDK retries
            base = self._owner._client()
            if base.max_retries == self.max_retries:
                return base
            return base.with_options(max_retries=self.max_retries)
        if self._sdk is None:
            self._sdk = openai.AsyncOpenAI(
                base_url=self.settings.endpoint,
                api_key=self.settings.api_key or "not-needed",
                timeout=self.settings.timeout_seconds,
                max_retries=self.max_retries,
            )
        return self._sdk

    async def aclose(self) -> None:
        """Close the HTTP connections (safe to call twice; a view closes nothing)."""
        if self._owner is not None:
            return
        sdk, self._sdk = self._sdk, None
        if sdk is not None:
            await sdk.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- requests ---------------------------------------------------------------------------

    async def complete(
        self,
        system: str,
        user: str,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline over all attempts and waits
    ) -> str:
        """The model's reply to one system + user turn; ``timeout`` bounds the whole call."""
        messages = [
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=user),
        ]
        return await self._deadline(
            self._complete(messages, temperature, max_tokens, json_mode=False), timeout
        )

    async def complete_json(
        self,
        system: str,
        user: str,
        *,
        schema_hint: str = "",
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline over all attempts and waits
    ) -> dict[str, Any]:
        """The model's reply as a JSON object, asked for with JSON mode.

        ``schema_hint`` (e.g. ``{"kind": "bug" | "feature"}``) is added to the system prompt.
        A server that rejects ``response_format`` (HTTP 400 naming it) is asked again without it.
        """
        instruction = "Reply with a single JSON object and nothing else."
        if schema_hint:
            instruction = f"{instruction} Shape: {schema_hint}"
        messages = [
            ChatMessage(role="system", content=f"{system}\n\n{instruction}".strip()),
            ChatMessage(role="user", content=user),
        ]

        async def ask() -> dict[str, Any]:
            try:
                text = await self._complete(messages, 0.0, None, json_mode=True)
            except LLMError as exc:
                if exc.status != 400 or "response_format" not in str(exc).lower():
                    raise
                logger.info(
                    "server refused JSON mode; asking without", extra={"action": "llm_json"}
                )
                text = await self._complete(messages, 0.0, None, json_mode=False)
            return parse_json_reply(text)

        return await self._deadline(ask(), timeout)

    async def _complete(
        self,
        messages: Sequence[ChatMessage],
        temperature: float | None,
        max_tokens: int | None,
        *,
        json_mode: bool,
    ) -> str:
        client = self._client()
        started = time.monotonic()
        reply = await self._call(
            lambda: client.chat.completions.create(
                model=self.settings.model,
                messages=_sdk_messages(messages),
                temperature=self._temperature(temperature),
                max_tokens=max_tokens if max_tokens is not None else openai.omit,
                response_format={"type": "json_object"} if json_mode else openai.omit,
            ),
            "llm_complete",
        )
        if not reply.choices:
            raise LLMError("the model server sent a reply without choices", kind="invalid_reply")
        text = reply.choices[0].message.content or ""
        usage = reply.usage
        logger.info(
            "completion from %s in %.1fs (%s in, %s out)",
            reply.model or self.settings.model,
            time.monotonic() - started,
            usage.prompt_tokens if usage else "?",
            usage.completion_tokens if usage else "?",
            extra={"action": "llm_complete"},
        )
        return text

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str = "",
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[ChatDelta, None]:
        """Stream a reply: text deltas as they come, then one delta with ``usage`` (and no text).

        ``model`` overrides the configured one. Cancelling the iteration closes the request.
        """
        client = self._client()
        model = model or self.settings.model
        stream = await self._call(
            lambda: client.chat.completions.create(
                model=model,
                messages=_sdk_messages(messages),
                temperature=self._temperature(temperature),
                max_tokens=max_tokens if max_tokens is not None else openai.omit,
                stream=True,
                stream_options={"include_usage": True},
            ),
            "llm_stream",
        )
        answered = response_id = finish = ""
        parts: list[str] = []
        usage: Usage | None = None
        try:
            async with stream:
                async for chunk in stream:
                    answered = chunk.model or answered
                    response_id = chunk.id or response_id
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        finish = choice.finish_reason or finish
                        if choice.delta.content:
                            parts.append(choice.delta.content)
                            yield ChatDelta(choice.delta.content, None, answered, response_id)
        except openai.APIError as exc:  # the SDK wraps read errors and timeouts mid-stream too
            raise self._translate(exc) from exc
        if usage is None:
            prompt = sum(len(m["content"]) for m in messages)
            usage = Usage(prompt // 4, len("".join(parts)) // 4, estimated=True)
        yield ChatDelta("", usage, answered or model, response_id, finish)

    # -- plumbing ---------------------------------------------------------------------------

    def _temperature(self, temperature: float | None) -> float:
        return self.settings.default_temperature if temperature is None else temperature

    async def _deadline(self, work: Awaitable[_T], seconds: float | None) -> _T:
        try:
            async with asyncio.timeout(seconds):
                return await work
        except TimeoutError as exc:
            raise LLMError(
                f"the model at {self.endpoint} did not answer within {seconds:g}s", kind="timeout"
            ) from exc

    async def _call(self, request: Callable[[], Awaitable[_T]], action: str) -> _T:
        """``request()`` with our backoff for 429/503 on top of the SDK's retries."""
        attempt = 0
        while True:
            try:
                return await request()
            except openai.APIError as exc:
                error = self._translate(exc)
                if error.status not in _BACKOFF_STATUSES or attempt >= self.extra_attempts:
                    raise error from exc
                attempt += 1
                delay = min(error.retry_after or 2.0**attempt, self.max_retry_wait)
            logger.warning(
                "model server answered %s; retry %d/%d in %.1fs",
                error.status,
                attempt,
                self.extra_attempts,
                delay,
                extra={"action": action},
            )
            await asyncio.sleep(delay)

    def _translate(self, exc: openai.APIError) -> LLMError:
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(
                f"the model at {self.endpoint} timed out "
                f"(no answer within {self.settings.timeout_seconds:g}s)",
                kind="timeout",
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return LLMError(
                f"cannot reach the model at {self.endpoint}: {cause}", kind="connection"
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            return LLMError(
                f"the model at {self.endpoint} answered HTTP {status}: {_server_message(exc)}",
                kind="http",
                status=status,
                retry_after=retry_after(exc.response.headers),
            )
        return LLMError(f"bad reply from the model at {self.endpoint}: {exc}", kind="invalid_reply")
