"""LLMClient against the fake OpenAI-compatible server, over real HTTP (no mocks of the SDK)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from claudomator.config import LocalModelSettings
from claudomator.errors import ClaudomatorError
from claudomator.llm import ChatMessage, LLMClient, LLMError, parse_json_reply, safe_url
from fakes.openai_server import ApiError, FakeOpenAI, Hang, JsonReply, Reply, Scripted, deltas


def _settings(fake: FakeOpenAI, **kwargs: object) -> LocalModelSettings:
    return LocalModelSettings.model_validate({"endpoint": fake.url, "model": "m1", **kwargs})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_available_needs_endpoint_and_model() -> None:
    assert not LLMClient(LocalModelSettings()).available
    assert not LLMClient(LocalModelSettings(endpoint="http://127.0.0.1:1/v1")).available
    assert LLMClient(LocalModelSettings(endpoint="http://127.0.0.1:1/v1", model="m")).available


def test_llm_error_is_a_claudomator_error() -> None:
    assert issubclass(LLMError, ClaudomatorError)


async def test_complete_sends_system_user_and_defaults() -> None:
    with FakeOpenAI([Reply("hello there")]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            text = await llm.complete("be terse", "say hi")
    assert text == "hello there"
    [request] = fake.chat_requests
    assert request.body["model"] == "m1"
    assert request.body["messages"] == [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "say hi"},
    ]
    assert request.body["temperature"] == 0.2  # default_temperature
    assert "max_tokens" not in request.body
    assert "response_format" not in request.body
    assert not request.stream
    assert request.headers["authorization"] == "Bearer not-needed"
    assert fake.errors == []


async def test_complete_overrides_and_api_key() -> None:
    with FakeOpenAI([Reply("x")]) as fake:
        async with LLMClient(_settings(fake, api_key="sk-local-1")) as llm:
            await llm.complete("s", "u", temperature=1.5, max_tokens=33)
    [request] = fake.chat_requests
    assert request.body["temperature"] == 1.5
    assert request.body["max_tokens"] == 33
    assert request.headers["authorization"] == "Bearer sk-local-1"


async def test_complete_json_asks_for_json_mode() -> None:
    with FakeOpenAI([JsonReply({"kind": "bug", "score": 3})]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            data = await llm.complete_json("classify", "it crashes", schema_hint='{"kind": str}')
    assert data == {"kind": "bug", "score": 3}
    [request] = fake.chat_requests
    assert request.body["response_format"] == {"type": "json_object"}
    system = request.messages[0]["content"]
    assert system.startswith("classify")
    assert "JSON" in system
    assert '{"kind": str}' in system


async def test_complete_json_tolerates_a_fence() -> None:
    with FakeOpenAI([Reply('```json\n{"a": 1}\n```')]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            assert await llm.complete_json("s", "u") == {"a": 1}


async def test_complete_json_rejects_non_json() -> None:
    with FakeOpenAI([Reply("I think it is a bug.")]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            with pytest.raises(LLMError, match="did not reply with a JSON object") as info:
                await llm.complete_json("s", "u")
    assert info.value.kind == "invalid_reply"


async def test_complete_json_falls_back_when_json_mode_is_refused() -> None:
    refusal = ApiError(400, "'response_format.type' must be 'json_schema' or 'text'")
    with FakeOpenAI([refusal, JsonReply({"ok": True})]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            assert await llm.complete_json("s", "u") == {"ok": True}
    first, second = fake.chat_requests
    assert "response_format" in first.body
    assert "response_format" not in second.body


async def test_other_400_is_not_retried_without_json_mode() -> None:
    with FakeOpenAI([ApiError(400, "context too long")]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            with pytest.raises(LLMError, match="HTTP 400: context too long") as info:
                await llm.complete_json("s", "u")
    assert info.value.status == 400
    assert len(fake.chat_requests) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('```\n{"a": null}\n```', {"a": None}),
        ('Sure! Here it is: {"a": "b"} Hope that helps.', {"a": "b"}),
        ('  \n{"nested": {"x": 1}}\n', {"nested": {"x": 1}}),
    ],
)
def test_parse_json_reply_accepts(reply: str, expected: dict[str, object]) -> None:
    assert parse_json_reply(reply) == expected


@pytest.mark.parametrize("reply", ["", "not json", "[1, 2]", "```json\n[1]\n```", '{"a": '])
def test_parse_json_reply_rejects(reply: str) -> None:
    with pytest.raises(LLMError):
        parse_json_reply(reply)


async def test_connection_refused_fails_quickly() -> None:
    settings = LocalModelSettings(endpoint=f"http://127.0.0.1:{_free_port()}/v1", model="m")
    started = time.monotonic()
    async with LLMClient(settings) as llm:
        with pytest.raises(LLMError, match="cannot reach the model") as info:
            await llm.complete("s", "u")
    assert info.value.kind == "connection"
    assert info.value.status is None
    assert time.monotonic() - started < 5  # the SDK's two quick retries, no more


async def test_429_with_retry_after_is_retried_after_our_backoff() -> None:
    script: list[Scripted] = [ApiError(429, "slow down", retry_after=1), Reply("finally")]
    with FakeOpenAI(script) as fake:
        started = time.monotonic()
        async with LLMClient(_settings(fake), max_retries=0) as llm:
            assert await llm.complete("s", "u") == "finally"
        elapsed = time.monotonic() - started
    assert len(fake.chat_requests) == 2
    assert elapsed >= 0.9  # Retry-After honoured


async def test_retry_after_beyond_the_sdk_is_capped_by_us() -> None:
    # The SDK refuses to wait 3600 s and gives up at once; we wait at most max_retry_wait.
    script: list[Scripted] = [ApiError(503, "overloaded", retry_after=3600), Reply("back")]
    with FakeOpenAI(script) as fake:
        started = time.monotonic()
        async with LLMClient(_settings(fake), max_retry_wait=0.3) as llm:
            assert await llm.complete("s", "u") == "back"
        elapsed = time.monotonic() - started
    assert len(fake.chat_requests) == 2
    assert 0.3 <= elapsed < 5


async def test_backoff_gives_up_after_extra_attempts() -> None:
    with FakeOpenAI([ApiError(429, "quota", retry_after=0.05)], repeat_last=True) as fake:
        async with LLMClient(_settings(fake), max_retries=0, extra_attempts=2) as llm:
            with pytest.raises(LLMError, match="HTTP 429: quota") as info:
                await llm.complete("s", "u")
    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(0.05)
    assert len(fake.chat_requests) == 3


async def test_500_is_left_to_the_sdk_retries() -> None:
    with FakeOpenAI([ApiError(500, "boom")], repeat_last=True) as fake:
        async with LLMClient(_settings(fake), max_retries=1) as llm:
            with pytest.raises(LLMError, match="HTTP 500: boom") as info:
                await llm.complete("s", "u")
    assert info.value.kind == "http"
    assert len(fake.chat_requests) == 2  # the first try and one SDK retry; none of ours


async def test_deadline_bounds_the_whole_call() -> None:
    with FakeOpenAI([Hang(10)]) as fake:
        started = time.monotonic()
        async with LLMClient(_settings(fake)) as llm:
            with pytest.raises(LLMError, match=r"did not answer within 0\.3s") as info:
                await llm.complete("s", "u", timeout=0.3)
        assert time.monotonic() - started < 3
    assert info.value.kind == "timeout"


async def test_request_timeout_from_settings() -> None:
    with FakeOpenAI([Hang(10)]) as fake:
        async with LLMClient(_settings(fake, timeout_seconds=0.3), max_retries=0) as llm:
            with pytest.raises(LLMError, match="timed out") as info:
                await llm.complete_json("s", "u")
    assert info.value.kind == "timeout"


async def test_stream_chat_yields_deltas_then_usage() -> None:
    text = "The quick brown fox\njumps."
    messages = [ChatMessage(role="user", content="go")]
    with FakeOpenAI([Reply(text)], prompt_tokens=7, completion_tokens=5) as fake:
        async with LLMClient(_settings(fake)) as llm:
            got = [d async for d in llm.stream_chat(messages, model="m2", max_tokens=9)]
    *pieces, last = got
    assert [d.text for d in pieces] == deltas(text)
    assert len(pieces) > 1
    assert last.text == ""
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (7, 5)
    assert not last.usage.estimated
    assert last.model == "m2"
    assert last.finish_reason == "stop"
    assert last.response_id.startswith("chatcmpl-")
    [request] = fake.chat_requests
    assert request.stream
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["model"] == "m2"
    assert request.body["max_tokens"] == 9


async def test_stream_chat_estimates_usage_when_the_server_sends_none() -> None:
    text = "x" * 40
    messages = [ChatMessage(role="user", content="y" * 80)]
    with FakeOpenAI([Reply(text)], send_usage=False) as fake:
        async with LLMClient(_settings(fake)) as llm:
            got = [d async for d in llm.stream_chat(messages)]
    usage = got[-1].usage
    assert usage is not None
    assert usage.estimated
    assert (usage.input_tokens, usage.output_tokens) == (20, 10)


async def test_stream_chat_maps_api_errors() -> None:
    with FakeOpenAI([ApiError(404, "model 'nope' not found")]) as fake:
        async with LLMClient(_settings(fake)) as llm:
            with pytest.raises(LLMError, match="HTTP 404: model 'nope' not found") as info:
                async for _ in llm.stream_chat([ChatMessage(role="user", content="hi")]):
                    pass
    assert info.value.status == 404


async def test_stream_broken_off_by_a_read_timeout() -> None:
    with FakeOpenAI([Reply("one two three", delay=2)]) as fake:
        settings = _settings(fake, timeout_seconds=0.3)
        async with LLMClient(settings, max_retries=0) as llm:
            with pytest.raises(LLMError) as info:
                async for _ in llm.stream_chat([ChatMessage(role="user", content="hi")]):
                    pass
    assert info.value.kind == "timeout"


async def test_stream_cut_off_by_the_server() -> None:
    fake = FakeOpenAI([Reply("one two three", delay=0.3)]).start()
    got: list[str] = []

    async def consume(llm: LLMClient) -> None:
        async for delta in llm.stream_chat([ChatMessage(role="user", content="hi")]):
            got.append(delta.text)
            await asyncio.to_thread(fake.stop)  # cuts the open connection

    try:
        settings = LocalModelSettings(endpoint=fake.url, model="m")
        async with LLMClient(settings, max_retries=0) as llm:
            with pytest.raises(LLMError) as info:
                await consume(llm)
    finally:
        fake.stop()
    assert got == ["one "]
    assert info.value.kind == "connection"


async def test_the_api_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-very-secret-123"
    script: list[Scripted] = [
        Reply("a"),
        ApiError(401, "bad key"),
        ApiError(429, "wait", retry_after=0.01),
    ]
    with FakeOpenAI([*script, Reply("b")]) as fake:
        async with LLMClient(_settings(fake, api_key=secret), max_retries=0) as llm:
            await llm.complete("s", "u")
            with pytest.raises(LLMError) as info:
                await llm.complete("s", "u")
            await llm.complete("s", "u")  # 429, our backoff, then "b"
    assert fake.chat_requests[0].headers["authorization"] == f"Bearer {secret}"
    assert any(getattr(r, "action", None) == "llm_complete" for r in caplog.records)
    assert secret not in caplog.text
    assert secret not in str(info.value)


def test_safe_url_drops_credentials() -> None:
    assert safe_url("http://user:pw@host:8080/v1") == "http://host:8080/v1"
    assert safe_url("http://127.0.0.1:11434/v1") == "http://127.0.0.1:11434/v1"


async def test_aclose_twice_and_unused_client() -> None:
    llm = LLMClient(LocalModelSettings(endpoint="http://127.0.0.1:1/v1", model="m"))
    await llm.aclose()
    await llm.aclose()
