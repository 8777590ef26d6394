"""Synthesised summaries from the local model: best effort, never failing a task."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from claudomator.config import LocalModelSettings
from claudomator.llm import LLMClient
from claudomator.summarize import TAIL_BYTES, ModelSummarizer, tail
from fakes.openai_server import ApiError, FakeOpenAI, Hang, Reply


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_tail_keeps_the_end_within_the_byte_limit() -> None:
    text = "é" * 20000  # two bytes each
    kept = tail(text)
    assert len(kept.encode()) <= TAIL_BYTES
    assert text.endswith(kept)
    assert tail("short") == "short"


async def test_summary_comes_from_the_tail_of_the_agent_text(fake: FakeOpenAI) -> None:
    fake.set_script([Reply("  Added CSV export. Tests pass.  ")])
    llm = LLMClient(LocalModelSettings(endpoint=fake.url, model="small"))
    try:
        text = "x" * 40000 + "THE END"
        assert await ModelSummarizer(llm)(text) == "Added CSV export. Tests pass."
    finally:
        await llm.aclose()
    [request] = fake.chat_requests
    sent = json.dumps(request.body["messages"])
    assert "THE END" in sent
    assert "2 to 4" in sent
    assert len(request.body["messages"][-1]["content"]) <= TAIL_BYTES


@pytest.mark.parametrize(
    "reply", [ApiError(500, "boom"), Hang(5.0)], ids=["server-error", "too-slow"]
)
async def test_failures_leave_the_summary_empty(fake: FakeOpenAI, reply: object) -> None:
    fake.set_script([reply], repeat_last=True)  # type: ignore[list-item]
    llm = LLMClient(LocalModelSettings(endpoint=fake.url, model="small"), max_retries=0)
    try:
        assert await ModelSummarizer(llm, timeout=1.0)("did things") == ""
    finally:
        await llm.aclose()


async def test_unreachable_or_unconfigured_model_gives_no_summary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = LLMClient(
        LocalModelSettings(endpoint=f"http://127.0.0.1:{port}/v1", model="m"), max_retries=0
    )
    none = LLMClient(LocalModelSettings())
    try:
        assert await ModelSummarizer(down, timeout=2.0)("did things") == ""
        assert await ModelSummarizer(none)("did things") == ""
        assert await ModelSummarizer(down)("   ") == ""
    finally:
        await down.aclose()
        await none.aclose()
