"""The Chat Completions tool-call fake (tests/fakes/openai_tools.py) read by the real OpenAI SDK:
what the Qwen Code tests rely on it to serve."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import openai
import pytest

from fakes.openai_tools import DONE_TEXT, ApiError, FakeChatTools, Hang, Reply, ToolCall


@pytest.fixture
def fake() -> Iterator[FakeChatTools]:
    with FakeChatTools(cached_tokens=30) as server:
        yield server
        assert server.errors == []


def client(fake: FakeChatTools) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url, api_key="k", max_retries=0, timeout=10)


def test_a_streamed_tool_call_is_assembled_by_the_sdk(fake: FakeChatTools) -> None:
    fake.set_script([ToolCall("run_shell_command", {"command": "echo hi", "x": [1, 2]}, "ok")])
    stream = client(fake).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, name, arguments, finish, usage = "", "", "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                name += (call.function and call.function.name) or ""
                arguments += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish
    assert text == "ok"
    assert name == "run_shell_command"
    assert json.loads(arguments) == {"command": "echo hi", "x": [1, 2]}
    assert finish == "tool_calls"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 20)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 30


def test_a_plain_completion_and_the_exhausted_script(fake: FakeChatTools) -> None:
    fake.set_script([ToolCall("write_file", {"file_path": "/a"})])
    api = client(fake)
    first = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    [call] = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "write_file"
    assert json.loads(call.function.arguments) == {"file_path": "/a"}
    again = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "y"}])
    assert again.choices[0].message.content == DONE_TEXT
    assert again.choices[0].finish_reason == "stop"


def test_an_api_error_carries_status_message_and_retry_after(fake: FakeChatTools) -> None:
    fake.set_script([ApiError(429, "slow down (fake)", retry_after=2), Reply("fine")])
    api = client(fake)
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert "slow down (fake)" in str(caught.value)
    ok = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert ok.choices[0].message.content == "fine"


def test_the_recorded_conversation_reads_back(fake: FakeChatTools) -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "first prompt"}]},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "run_shell_command", "arguments": '{"command":"ls"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
        {"role": "user", "content": "second prompt"},
    ]
    client(fake).chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    [request] = fake.chat_requests
    assert request.model == "m"
    assert request.texts("user") == ["first prompt", "second prompt"]
    assert request.texts("assistant") == ["calling"]
    assert request.tool_calls() == [
        {"id": "c1", "name": "run_shell_command", "arguments": {"command": "ls"}}
    ]
    assert request.tool_results() == [{"tool_call_id": "c1", "content": "a.txt"}]
    assert request.headers["authorization"] == "Bearer k"


def test_a_hang_answers_late_and_a_stop_ends_it(fake: FakeChatTools) -> None:
    fake.set_script([Hang(0.5), Reply("late")])
    started = time.monotonic()
    late = client(fake).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert late.choices[0].message.content == "late"
    assert time.monotonic() - started >= 0.5
    fake.set_script([Hang(60)])
    failed: list[BaseException] = []

    def call() -> None:
        try:
            client(fake).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
        except openai.APIError as exc:
            failed.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while len(fake.requests) < 2 and time.monotonic() < deadline:  # the hanging one arrived
        time.sleep(0.05)
    started = time.monotonic()
    fake.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    assert failed  # the connection closed without a reply
