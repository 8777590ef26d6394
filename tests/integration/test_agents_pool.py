"""The pool with several agents: choosing one with the local model, failing over from an
exhausted Gemini quota to Claude, and the local text agent, with the real CLIs and fake models."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task

from claudomator.agents import Runner
from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.agents.local import LocalRunner
from claudomator.chooser import AgentChooser, Choice
from claudomator.config import DEFAULT_PRICES, LocalModelSettings, Settings, estimate_cost
from claudomator.dispatch import Pool
from claudomator.isolation.plain import PlainLauncher
from claudomator.llm import LLMClient
from claudomator.models import Task, TaskState, utcnow
from claudomator.protocol import PREAMBLE_HEADING
from claudomator.runtime import pool_parts
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, ToolUse, claude_env
from fakes.anthropic import Text as ClaudeText
from fakes.gemini import ApiError as GeminiApiError
from fakes.gemini import FakeGemini, FunctionCall, gemini_env
from fakes.gemini import Text as GeminiText
from fakes.openai_server import FakeOpenAI, JsonReply, Reply

pytestmark = pytest.mark.cli

PRO = "gemini-2.5-pro"
DAILY_QUOTA = GeminiApiError(
    429,
    "Resource has been exhausted (e.g. check quota). (fake)",
    "RESOURCE_EXHAUSTED",
    retry_delay=1,
    quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
)


@pytest.fixture
def fake_claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def fake_local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def agent_env(
    fake_claude: FakeAnthropic, fake_gemini: FakeGemini, tmp_path: Path
) -> dict[str, str]:
    """One environment for both CLIs: each one's variables, none of the other's leaking."""
    home = tmp_path / "agent-home"
    claude = claude_env(fake_claude.url, home)
    gemini = gemini_env(fake_gemini.url, home, max_attempts=1)
    env = {k: v for k, v in claude.items() if not k.startswith(("GEMINI_", "GOOGLE_"))}
    # only what gemini_env changed: its copy of os.environ would undo claude_env's settings
    env.update({k: v for k, v in gemini.items() if os.environ.get(k) != v})
    return env


@pytest.fixture
def cfg(settings: Settings, claude_bin: str, gemini_bin: str) -> Settings:
    return settings.model_copy(
        update={
            "claude_binary_path": claude_bin,
            "gemini_binary_path": gemini_bin,
            "kill_grace_seconds": 2,
            "rate_limit_backoff_seconds": 1,
        }
    )


def harness(cfg: Settings, store: Store, env: dict[str, str], pool: Pool) -> PoolHarness:
    h = PoolHarness(cfg, store, env)
    h.pool = pool
    h.service.on_submit = pool.wake
    return h


def claim_reasons(store: Store, task: Task) -> list[str]:
    return [e.reason for e in store.events(task.id) if e.to_state == TaskState.RUNNING]


async def test_local_model_sends_an_unpinned_task_to_the_real_gemini_cli(
    cfg: Settings,
    store: Store,
    fake_claude: FakeAnthropic,
    fake_gemini: FakeGemini,
    fake_local: FakeOpenAI,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    claude_bin: str,
    gemini_bin: str,
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    fake_local.set_script(
        [JsonReply({"agent": "gemini", "model": PRO, "reason": "a routine one-file change"})]
    )
    fake_gemini.set_script(
        [
            FunctionCall("run_shell_command", {"command": "echo 'from gemini' > hello.txt"}),
            GeminiText("Done.\n\n## Summary\nCreated hello.txt from Gemini."),
        ]
    )
    llm = LLMClient(LocalModelSettings(endpoint=fake_local.url, model="m"))
    runners: dict[str, Runner] = {
        "claude": ClaudeRunner(claude_bin, PlainLauncher()),
        "gemini": GeminiRunner(gemini_bin, PlainLauncher()),
    }
    pool = Pool(
        cfg,
        store,
        runners,
        **pool_parts(cfg, store),
        base_env=agent_env,
        poll_interval=0.2,
        chooser=AgentChooser(llm, launcher=PlainLauncher()),
    )
    try:
        async with harness(cfg, store, agent_env, pool) as h:
            [task] = h.submit(make_task(project, "Create hello.txt", agent_type=""))
            [done] = await h.settle([task])
    finally:
        await llm.aclose()

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert done.summary == "Created hello.txt from Gemini."
    assert (run.agent, run.model) == ("gemini", PRO)
    assert store.get_task(task.id).agent.type == ""  # the task itself stays unpinned
    [claimed] = claim_reasons(store, task)
    assert claimed.endswith(f"; agent gemini/{PRO}: local model: a routine one-file change")
    # Gemini reports tokens but no cost: the cost is estimated from the default prices
    assert run.tokens_in > 0
    assert run.tokens_out > 0
    assert run.cost_estimated is True
    assert run.cost_usd > 0
    expected = estimate_cost(DEFAULT_PRICES, PRO, run.tokens_in, run.tokens_out)
    assert run.cost_usd == pytest.approx(expected)
    assert run.cost_known is True
    # delivered as a branch; the user's checkout untouched
    [commit] = run.commits
    branch = kept_branch(project, task.id)
    assert git(project, "rev-parse", branch) == commit.hash
    assert git(project, "show", f"{branch}:hello.txt") == "from gemini"
    assert git(project, "rev-parse", "HEAD") == user_head
    # the local model was asked once, in JSON mode; Gemini ran the model it chose
    [asked] = fake_local.chat_requests
    assert asked.body["response_format"] == {"type": "json_object"}
    assert "- gemini:" in asked.messages[-1]["content"]
    assert "Create hello.txt" in asked.messages[-1]["content"]
    assert {r.model for r in fake_gemini.requests} == {PRO}
    assert PREAMBLE_HEADING in fake_gemini.requests[0].texts("user")[-1]
    assert fake_claude.requests == []
    assert store.agent_status("gemini").consecutive_failures == 0


async def test_gemini_daily_quota_fails_an_unpinned_task_over_to_claude(
    cfg: Settings,
    store: Store,
    fake_claude: FakeAnthropic,
    fake_gemini: FakeGemini,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    claude_bin: str,
    gemini_bin: str,
) -> None:
    project = make_repo()
    fake_gemini.set_script([DAILY_QUOTA], repeat_last=True)
    fake_claude.set_script(
        [
            ToolUse("Bash", {"command": "echo x > x.txt"}),
            ClaudeText("## Summary\nWrote x.txt on Claude."),
        ]
    )
    asked: list[tuple[list[str], dict[str, str]]] = []

    async def prefer_gemini(
        task: Task, available: list[str], counts: dict[str, int], blocked: dict[str, str]
    ) -> Choice:
        asked.append((list(available), dict(blocked)))
        if "gemini" in available:
            return Choice("gemini", PRO, "prefers gemini")
        return Choice(available[0], "", "gemini is unavailable")

    runners: dict[str, Runner] = {
        "claude": ClaudeRunner(claude_bin, PlainLauncher()),
        "gemini": GeminiRunner(gemini_bin, PlainLauncher()),
    }
    pool = Pool(
        cfg,
        store,
        runners,
        **pool_parts(cfg, store),
        base_env=agent_env,
        poll_interval=0.2,
        chooser=prefer_gemini,
    )
    started = utcnow()
    async with harness(cfg, store, agent_env, pool) as h:
        [unpinned] = h.submit(make_task(project, "Write x.txt", name="anyone", agent_type=""))
        [done] = await h.settle([unpinned])
        # a task pinned to the exhausted agent waits instead of failing over
        [pinned] = h.submit(make_task(project, name="pinned", agent_type="gemini"))
        await h.pool._claim_all()
        assert store.get_task(pinned.id).state == TaskState.QUEUED

    runs = store.executions_of(unpinned.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert done.summary == "Wrote x.txt on Claude."
    assert [r.agent for r in runs] == ["gemini", "claude"]
    assert [r.status for r in runs] == [TaskState.QUEUED, TaskState.COMPLETED]  # re-queued
    assert runs[0].model == PRO
    assert runs[1].model != PRO  # the chooser's gemini model is not forced on claude
    assert "exhausted your daily quota" in runs[0].error_msg
    assert len(runs[1].commits) == 1
    assert git(project, "show", f"{kept_branch(project, unpinned.id)}:x.txt") == "x"
    # gemini is out for the default quota wait, not just a short rate-limit window
    health = store.agent_status("gemini")
    assert health.unavailable_until is not None
    assert health.unavailable_until >= started + timedelta(seconds=cfg.quota_wait_seconds - 60)
    assert health.limited_until is None
    assert "exhausted your daily quota" in health.last_error
    assert store.agent_status("claude").consecutive_failures == 0
    # the history says why the task moved
    events = store.events(unpinned.id)
    states = [e.to_state for e in events]
    assert states[-4:] == [
        TaskState.RUNNING,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]
    assert events[-3].reason.startswith("quota on gemini; re-queued until")
    first_claim, second_claim = claim_reasons(store, unpinned)
    assert first_claim.endswith(f"; agent gemini/{PRO}: prefers gemini")
    assert second_claim.endswith("; agent claude: gemini is unavailable")
    # the chooser was told gemini is out of quota when it was asked again
    assert asked[0] == (["claude", "gemini"], {})
    available, blocked = asked[1]
    assert available == ["claude"]
    assert blocked["gemini"].startswith("out of quota until ")
    # one model call on each side: the quota is terminal for the CLI, no retry
    assert len(fake_gemini.requests) == 1
    assert "Write x.txt" in json.dumps(fake_claude.requests[0].body["messages"])


async def test_local_agent_answers_in_text_without_commits(
    settings: Settings,
    store: Store,
    fake_local: FakeOpenAI,
    make_repo: MakeRepo,
) -> None:
    """No agent CLI is involved: this one runs even where the CLIs are not installed."""
    project = make_repo()
    fake_local.set_script(
        [Reply("The module checks tokens.\n\n## Summary\nExplained the auth module.")]
    )
    local = LocalModelSettings(endpoint=fake_local.url, model="local-coder")
    async with LLMClient(local) as llm:  # the process's one: closed by its owner
        pool = Pool(
            settings,
            store,
            {"local": LocalRunner(local, llm)},
            **pool_parts(settings, store),
            base_env={},
            poll_interval=0.2,
        )
        async with harness(settings, store, {}, pool) as h:
            [task] = h.submit(make_task(project, "Explain the auth module", agent_type="local"))
            [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert done.summary == "Explained the auth module."  # from the agent's text
    assert run.summary == done.summary
    assert (run.agent, run.model) == ("local", "local-coder")
    assert (run.tokens_in, run.tokens_out) == (100, 20)  # as the server reported them
    assert run.cost_usd == 0
    assert run.cost_estimated is False
    assert run.cost_known is True  # a local model reports its cost: nothing
    assert run.commits == ()
    assert run.exit_code is None
    assert git(project, "branch", "--list", f"claudomator/{task.id[:8]}*") == ""
    [request] = fake_local.chat_requests
    assert request.stream
    assert request.body["model"] == "local-coder"
    # a text-only agent cannot use the file protocol, so it gets no preamble
    assert request.messages[-1]["content"] == "Explain the auth module"
    result = json.loads(Path(run.stdout_path).read_text(encoding="utf-8").splitlines()[-1])
    assert result["type"] == "result"
    assert result["result"].endswith("## Summary\nExplained the auth module.")
