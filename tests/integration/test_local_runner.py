"""LocalRunner end to end against the fake OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.claude_stream import ClaudeStream
from claudomator.agents.local import PREVIOUS_LOG_DIR_ENV, LocalRunner
from claudomator.config import LocalModelSettings
from claudomator.errors import AgentError
from claudomator.llm import LLMClient
from claudomator.logview import describe, last_activity
from claudomator.models import AgentConfig, Task, TaskState
from fakes.openai_server import ApiError, FakeOpenAI, Hang, Reply, Scripted, deltas

TEXT = "Here is the plan.\nStep one, then step two.\n\n## Summary\nAll done."


RunnerFor = Callable[..., LocalRunner]


@pytest.fixture
async def local_runner() -> AsyncIterator[RunnerFor]:
    """Makes a runner the way the registry does, with a model client of its own (as the
    process's one), closed after the test by this fixture, its owner."""
    made: list[LLMClient] = []

    def make(settings: LocalModelSettings, **options: Any) -> LocalRunner:
        made.append(LLMClient(settings))
        return LocalRunner(settings, made[-1], **options)

    yield make
    for llm in made:
        await llm.aclose()


def _settings(fake: FakeOpenAI, **kwargs: object) -> LocalModelSettings:
    return LocalModelSettings.model_validate(
        {"endpoint": fake.url, "model": "base-model", **kwargs}
    )


def _ctx(
    tmp_path: Path,
    name: str = "run1",
    *,
    timeout: float = 30.0,
    resume: bool = False,
    env: dict[str, str] | None = None,
    session_id: str = "sess-1",
    **agent: Any,
) -> RunContext:
    agent.setdefault("instructions", "Plan the work.")
    task = Task(name="t", agent=AgentConfig(type="local", **agent))
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return RunContext(
        task=task,
        execution_id=f"exec-{name}",
        workdir=workdir,
        log_dir=tmp_path / "logs" / name,
        env=env or {},
        session_id=session_id,
        timeout=timeout,
        kill_grace=1.0,
        stop=asyncio.Event(),
        resume=resume,
    )


def _events(ctx: RunContext) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ctx.stdout_path.read_text("utf-8").splitlines()]


def _result(ctx: RunContext) -> dict[str, Any]:
    *_, last = _events(ctx)
    assert last["type"] == "result"
    return last


async def test_streams_deltas_into_a_claude_style_log(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([Reply(TEXT)], prompt_tokens=42, completion_tokens=17) as fake:
        outcome = await local_runner(_settings(fake)).run(ctx)
    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert outcome.text == TEXT
    assert (outcome.tokens_in, outcome.tokens_out) == (42, 17)
    assert outcome.cost_usd == 0
    assert outcome.cost_reported
    assert outcome.model == "base-model"
    assert outcome.session_id == "sess-1"
    assert outcome.error_msg == ""
    assert outcome.details["tokens_estimated"] is False

    init, *middle, result = _events(ctx)
    assert init == {
        "type": "system",
        "subtype": "init",
        "session_id": "sess-1",
        "model": "base-model",
        "cwd": str(ctx.workdir),
    }
    assert [e["type"] for e in middle] == ["assistant"] * len(deltas(TEXT))
    assert [e["message"]["content"][0]["text"] for e in middle] == deltas(TEXT)
    assert {e["message"]["id"] for e in middle} == {middle[0]["message"]["id"]}
    assert all(e["session_id"] == "sess-1" for e in middle)
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == TEXT
    assert result["total_cost_usd"] == 0
    assert result["usage"] == {"input_tokens": 42, "output_tokens": 17}
    assert ctx.stderr_path.read_text("utf-8") == ""

    transcript = json.loads((ctx.log_dir / "chat.json").read_text("utf-8"))
    assert transcript["session_id"] == "sess-1"
    assert transcript["messages"] == [
        {"role": "user", "content": "Plan the work."},
        {"role": "assistant", "content": TEXT},
    ]


async def test_the_log_is_understood_by_claude_stream_and_logview(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([Reply(TEXT)], prompt_tokens=42, completion_tokens=17) as fake:
        await local_runner(_settings(fake)).run(ctx)
    lines = ctx.stdout_path.read_text("utf-8").splitlines()
    stream = ClaudeStream()
    for line in lines:
        stream.feed(line)
    assert stream.bad_lines == 0
    assert stream.session_id == "sess-1"
    assert stream.model == "base-model"
    assert stream.result_text == TEXT
    assert not stream.is_error
    assert stream.subtype == "success"
    assert stream.tokens == (42, 17)
    assert stream.cost_usd == 0
    assert stream.api_error_status is None
    assert "".join(stream.texts) == TEXT

    described = [describe(line) for line in lines]
    assert described[0] == "session sess-1 model base-model"
    assert all(d for d in described)
    assert str(described[-1]).startswith("[done $0.0000] Here is the plan.")
    assert last_activity(ctx.stdout_path.read_bytes()).startswith("[done")


async def test_task_settings_override_the_configured_ones(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(
        tmp_path,
        instructions="Write a haiku.",
        model="task-model",
        temperature=0.9,
        max_tokens=77,
        system_prompt_append="Be brief.",
    )
    with FakeOpenAI([Reply("ok")]) as fake:
        runner = local_runner(_settings(fake, api_key="sk-test-key", default_temperature=0.3))
        outcome = await runner.run(ctx)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.model == "task-model"
    [request] = fake.chat_requests
    assert request.body["model"] == "task-model"
    assert request.body["temperature"] == 0.9
    assert request.body["max_tokens"] == 77
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Write a haiku."},
    ]
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert _events(ctx)[0]["model"] == "task-model"


async def test_configured_defaults_apply_without_task_overrides(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([Reply("ok")]) as fake:
        await local_runner(_settings(fake, default_temperature=0.3)).run(ctx)
    [request] = fake.chat_requests
    assert request.body["model"] == "base-model"
    assert request.body["temperature"] == 0.3
    assert "max_tokens" not in request.body
    assert request.messages == [{"role": "user", "content": "Plan the work."}]
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_server_without_usage_gets_estimated_tokens(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([Reply("z" * 80)], send_usage=False) as fake:
        outcome = await local_runner(_settings(fake)).run(ctx)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.tokens_out == 20
    assert outcome.tokens_in == len("Plan the work.") // 4
    assert outcome.details["tokens_estimated"] is True
    assert _result(ctx)["tokens_estimated"] is True


async def test_server_error_fails_with_its_status(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([ApiError(500, "model crashed")], repeat_last=True) as fake:
        outcome = await local_runner(_settings(fake)).run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 500
    assert outcome.cost_reported
    assert outcome.cost_usd == 0
    assert "HTTP 500" in outcome.error_msg
    assert "model crashed" in outcome.error_msg
    assert len(fake.chat_requests) == 3  # the SDK's two retries
    assert "model crashed" in ctx.stderr_path.read_text("utf-8")
    result = _result(ctx)
    assert result["is_error"] is True
    assert result["subtype"] == "error"
    assert result["api_error_status"] == 500
    assert "model crashed" in result["result"]
    stream = ClaudeStream()
    for line in ctx.stdout_path.read_text("utf-8").splitlines():
        stream.feed(line)
    assert stream.is_error
    assert stream.api_error_status == 500


async def test_rate_limit_fails_with_429_after_backoff(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI(
        [ApiError(429, "too many requests", retry_after=0.05)], repeat_last=True
    ) as fake:
        outcome = await local_runner(_settings(fake), max_retries=0).run(ctx)
    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status == 429
    assert "too many requests" in outcome.error_msg
    assert len(fake.chat_requests) == 4  # one try and our three extra attempts


async def test_rate_limit_then_success(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path)
    script: list[Scripted] = [ApiError(429, "busy", retry_after=0.1), Reply("made it")]
    with FakeOpenAI(script) as fake:
        outcome = await local_runner(_settings(fake), max_retries=0).run(ctx)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.text == "made it"


async def test_timeout_cancels_the_request(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path, timeout=0.5)
    with FakeOpenAI([Hang(30)]) as fake:
        started = time.monotonic()
        outcome = await local_runner(_settings(fake)).run(ctx)
        elapsed = time.monotonic() - started
    assert outcome.status == TaskState.TIMED_OUT
    assert elapsed < 5
    assert "timed out after 0.5s" in outcome.error_msg
    assert "timed out" in ctx.stderr_path.read_text("utf-8")
    assert _result(ctx)["is_error"] is True


async def test_timeout_keeps_the_partial_text(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path, timeout=1.0)
    with FakeOpenAI([Reply("one two three four five", delay=0.4)]) as fake:
        outcome = await local_runner(_settings(fake)).run(ctx)
    assert outcome.status == TaskState.TIMED_OUT
    assert outcome.text.startswith("one ")
    assert outcome.text != "one two three four five"
    assistant = [e for e in _events(ctx) if e["type"] == "assistant"]
    assert 0 < len(assistant) < 5
    transcript = json.loads((ctx.log_dir / "chat.json").read_text("utf-8"))
    assert [m["role"] for m in transcript["messages"]] == ["user"]  # no half reply replayed


async def test_stop_cancels_the_request(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path)
    with FakeOpenAI([Hang(30)]) as fake:
        asyncio.get_running_loop().call_later(0.3, ctx.stop.set)
        started = time.monotonic()
        outcome = await local_runner(_settings(fake)).run(ctx)
        elapsed = time.monotonic() - started
    assert outcome.status == TaskState.CANCELLED
    assert elapsed < 5
    assert "stopped" in outcome.error_msg
    assert "stopped" in ctx.stderr_path.read_text("utf-8")


async def test_stop_already_set(tmp_path: Path, local_runner: RunnerFor) -> None:
    ctx = _ctx(tmp_path)
    ctx.stop.set()
    with FakeOpenAI([Hang(30)]) as fake:
        outcome = await local_runner(_settings(fake)).run(ctx)
    assert outcome.status == TaskState.CANCELLED


async def test_no_local_model_configured(tmp_path: Path, local_runner: RunnerFor) -> None:
    with pytest.raises(AgentError, match=r"set \[local_model\] endpoint and model"):
        await local_runner(LocalModelSettings()).run(_ctx(tmp_path))
    with pytest.raises(AgentError, match="no local model configured"):
        await local_runner(LocalModelSettings(endpoint="http://127.0.0.1:9/v1")).run(_ctx(tmp_path))


async def test_task_model_is_enough_when_only_the_endpoint_is_set(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    ctx = _ctx(tmp_path, model="task-model")
    with FakeOpenAI([Reply("ok")]) as fake:
        outcome = await local_runner(LocalModelSettings(endpoint=fake.url)).run(ctx)
    assert outcome.status == TaskState.COMPLETED
    assert fake.chat_requests[0].body["model"] == "task-model"


async def test_resume_replays_the_previous_transcript(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    first = _ctx(tmp_path, "first", instructions="Draft a plan.", system_prompt_append="Be brief.")
    with FakeOpenAI([Reply("Plan v1."), Reply("Plan v2.")]) as fake:
        runner = local_runner(_settings(fake))
        assert (await runner.run(first)).status == TaskState.COMPLETED
        second = _ctx(
            tmp_path,
            "second",
            instructions="Shorter, please.",
            resume=True,
            env={PREVIOUS_LOG_DIR_ENV: str(first.log_dir)},
        )
        outcome = await runner.run(second)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.text == "Plan v2."
    expected = [
        {"role": "system", "content": "Be brief."},  # kept from the transcript
        {"role": "user", "content": "Draft a plan."},
        {"role": "assistant", "content": "Plan v1."},
        {"role": "user", "content": "Shorter, please."},
    ]
    assert fake.chat_requests[1].messages == expected
    transcript = json.loads((second.log_dir / "chat.json").read_text("utf-8"))
    assert transcript["messages"] == [*expected, {"role": "assistant", "content": "Plan v2."}]


async def test_resume_without_a_transcript_fails_clearly(
    tmp_path: Path, local_runner: RunnerFor
) -> None:
    with FakeOpenAI([Reply("never")]) as fake:
        runner = local_runner(_settings(fake))
        unset = _ctx(tmp_path, "unset", resume=True)
        outcome = await runner.run(unset)
        assert outcome.status == TaskState.FAILED
        assert PREVIOUS_LOG_DIR_ENV in outcome.error_msg
        missing = _ctx(
            tmp_path, "missing", resume=True, env={PREVIOUS_LOG_DIR_ENV: str(tmp_path / "nope")}
        )
        outcome = await runner.run(missing)
        assert outcome.status == TaskState.FAILED
        assert "cannot read the conversation" in outcome.error_msg
        assert "cannot read the conversation" in missing.stderr_path.read_text("utf-8")
        assert _result(missing)["is_error"] is True
    assert fake.chat_requests == []
