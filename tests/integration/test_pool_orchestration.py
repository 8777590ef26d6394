# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""Questions and resume, rate limits, quota failover and dependencies, with the real Claude CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    ask,
    claude_settings,
    fake,
    make_task,
    user_home,
    wait_for,
)

from claudomator.agents.claude import ClaudeRunner
from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import Project, TaskState
from claudomator.protocol import PREAMBLE_HEADING
from claudomator.runtime import pool_parts
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import ApiError, FakeAnthropic, Text, ToolUse, claude_env
from fakes.receiver import WebhookReceiver

pytestmark = pytest.mark.cli


@pytest.fixture
def cfg(claude_settings: Settings) -> Settings:
    return claude_settings.model_copy(update={"rate_limit_backoff_seconds": 1})


def conversation_text(body: dict[str, object]) -> str:
    return json.dumps(body["messages"])


async def test_question_blocks_then_answer_resumes_the_same_session(
    cfg: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ask("Which colour should the button be?", ["red", "blue"]),
            Text("I asked a human."),
            ask("Light or dark blue?", []),
            Text("Asked again."),
            ToolUse("Write", {"file_path": "colour.txt", "content": "dark blue\n"}),
            Text("## Summary\nWrote colour.txt with the chosen colour."),
        ]
    )
    secret = "s3cret"
    with WebhookReceiver() as hook:
        settings = cfg.model_copy(update={"webhook_url": hook.url, "webhook_secret": secret})
        async with PoolHarness(settings, store, agent_env) as h:
            [task] = h.submit(make_task(project, "Make the button a nice colour"))
            [blocked] = await h.settle([task])
            assert blocked.state == TaskState.BLOCKED
            assert json.loads(blocked.question) == {
                "text": "Which colour should the button be?",
                "options": ["red", "blue"],
            }
            first = store.executions_of(task.id)[0]
            assert first.status == TaskState.BLOCKED
            assert Path(first.sandbox_dir).is_dir()  # preserved for the resume
            first_requests = len(fake.requests)
            # the preamble told the agent about the protocol
            assert PREAMBLE_HEADING in conversation_text(fake.requests[0].body)

            h.service.answer(task.id[:8], "blue")
            [again] = await h.settle([task])
            assert again.state == TaskState.BLOCKED
            assert json.loads(again.question)["text"] == "Light or dark blue?"
            h.service.answer(task.id, "dark")
            [done] = await h.settle([task])
        deliveries = list(hook.deliveries)

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert done.summary == "Wrote colour.txt with the chosen colour."
    assert len(runs) == 3
    # one session throughout, in one sandbox directory
    assert {r.session_id for r in runs} == {first.session_id}
    assert {r.sandbox_dir for r in runs} == {first.sandbox_dir}
    assert {req.session_id for req in fake.requests} == {first.session_id}
    # the resumed run sent the earlier conversation plus the answer
    resumed = conversation_text(fake.requests[first_requests].body)
    assert "Make the button a nice colour" in resumed
    assert "Which colour should the button be?" in resumed
    assert "Answer: blue" in resumed
    # the work of the last run is delivered
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "dark blue"
    talk = store.interactions_of(task.id)
    assert [(i.question, i.answer) for i in talk] == [
        ("Which colour should the button be?", "blue"),
        ("Light or dark blue?", "dark"),
    ]
    # notifications, signed
    events = [d.json()["event"] for d in deliveries]
    assert events == ["task.blocked", "task.blocked", "task.completed"]
    for delivery in deliveries:
        expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-claudomator-signature"] == f"sha256={expected}"
    assert deliveries[0].json()["options"] == ["red", "blue"]
    # the last one says where the work is
    branch = kept_branch(project, task.id)
    look = f"git -C {project} log HEAD..{branch}"
    assert (
        deliveries[-1].json()["delivered"] == f"kept as branch {branch} in {project} — see: {look}"
    )
    assert deliveries[-1].json()["delivery"]["branch"] == branch
    assert "delivered" not in deliveries[0].json()  # a question delivers nothing


async def test_question_file_that_is_a_report_becomes_the_summary(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    report = json.dumps({"text": "Implemented the export and added tests."})
    fake.set_script(
        [
            ToolUse("Bash", {"command": f"echo '{report}' > \"$CLAUDOMATOR_QUESTION_FILE\""}),
            Text("All good."),
        ]
    )
    async with PoolHarness(cfg, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [done] = await h.settle([task])
    assert done.state == TaskState.COMPLETED
    assert done.summary == "Implemented the export and added tests."
    assert store.interactions_of(task.id) == []


async def test_rate_limit_requeues_then_completes_after_the_window(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    limited = ApiError(429, "rate_limit_error", "Too many requests (fake)", retry_after=1)
    fake.set_script(
        [
            limited,
            limited,
            limited,  # the CLI's own two retries are used up: the run fails with 429
            ToolUse("Bash", {"command": "echo ok > ok.txt"}),
            Text("## Summary\nok"),
        ]
    )
    async with PoolHarness(cfg, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [done] = await h.settle([task])
    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.status for r in runs] == [TaskState.QUEUED, TaskState.COMPLETED]
    assert "429" in runs[0].error_msg
    states = [e.to_state for e in store.events(task.id)]
    assert states[-4:] == [
        TaskState.RUNNING,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]
    requeue = store.events(task.id)[-3]
    assert requeue.reason.startswith("rate_limit on claude; re-queued until")
    assert runs[1].start_time >= runs[0].end_time  # type: ignore[operator]
    health = store.agent_status("claude")
    assert health.rate_limit_strikes == 0
    assert health.consecutive_failures == 0


async def test_quota_exhaustion_fails_over_unpinned_tasks_to_another_agent(
    cfg: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    claude_bin: str,
) -> None:
    project = make_repo()
    quota = ApiError(429, "rate_limit_error", "Claude usage limit reached for today (fake)")
    fake.set_script(
        [quota, quota, quota, ToolUse("Bash", {"command": "echo x > x.txt"}), Text("done")]
    )
    # two agents backed by the same CLI: "backup" stands in for another provider
    runners = {
        "claude": ClaudeRunner(claude_bin, PlainLauncher()),
        "backup": ClaudeRunner(claude_bin, PlainLauncher()),
    }
    h = PoolHarness(cfg, store, agent_env)
    h.pool = Pool(
        cfg, store, runners, **pool_parts(cfg, store), base_env=agent_env, poll_interval=0.2
    )
    h.service.on_submit = h.pool.wake
    async with h:
        [unpinned] = h.submit(make_task(project, name="anyone", agent_type=""))
        unpinned_done = (await h.settle([unpinned]))[0]
        [pinned] = h.submit(make_task(project, name="pinned"))
        # a task pinned to the exhausted agent waits instead of failing over
        await h.pool._claim_all()
        assert store.get_task(pinned.id).state == TaskState.QUEUED
    runs = store.executions_of(unpinned.id)
    assert unpinned_done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.agent for r in runs] == ["claude", "backup"]
    status = store.agent_status("claude")
    assert status.unavailable_until is not None
    assert "usage limit reached" in status.last_error


async def test_dependency_chain_runs_in_order_and_a_failure_fails_dependents(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ToolUse("Bash", {"command": "echo one > one.txt"}),
            Text("## Summary\none"),
            ApiError(500),
        ],
        repeat_last=True,
    )
    first = make_task(project, name="first")
    second = make_task(project, name="second", depends_on=(first.id,))
    third = make_task(project, name="third", depends_on=(second.id,))
    async with PoolHarness(cfg, store, agent_env) as h:
        h.submit(third, second, first)
        done = await h.settle([first, second, third])
    assert [t.state for t in done] == [TaskState.COMPLETED, TaskState.FAILED, TaskState.FAILED]
    assert store.executions_of(third.id) == []
    assert store.events(third.id)[-1].reason == f"dependency {second.id} ended FAILED"
    first_run = store.executions_of(first.id)[0]
    second_run = store.executions_of(second.id)[0]
    assert second_run.start_time >= first_run.end_time  # type: ignore[operator]


async def test_acceptance_criteria_get_a_checker_whose_verdict_is_stored(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    # the checker's prompt quotes the task's, so its route must come first
    fake.route(
        "You are checking work another agent delivered",
        [
            ToolUse("Bash", {"command": "git log --oneline -3"}),
            Text('Looked at it.\n{"verdict": "fail", "report": "export() has no tests"}'),
        ],
    )
    fake.route(
        "TASK-EXPORT",
        [
            ToolUse("Write", {"file_path": "export.py", "content": "def export(): ...\n"}),
            Text("## Summary\nAdded export.py"),
        ],
    )
    task = make_task(project, "TASK-EXPORT").model_copy(
        update={"acceptance_criteria": "export() is covered by a unit test"}
    )
    async with PoolHarness(cfg, store, agent_env) as h:
        h.submit(task)
        await h.settle([task])
        checker_ids: list[str] = []

        def checker_done() -> bool:
            checkers = store.children_of([task.id])
            checker_ids[:] = [c.id for c in checkers]
            return bool(checkers) and checkers[0].state == TaskState.COMPLETED

        await wait_for(checker_done, 60)
    checked = store.get_task(task.id)
    assert checked.state == TaskState.COMPLETED
    assert checked.check_verdict == "fail"
    assert checked.check_report == "export() has no tests"
    [checker_id] = checker_ids
    checker = store.get_task(checker_id)
    assert checker.checker_for_task_id == task.id
    assert checker.agent.type == "claude"
    # the checker was told the criteria and the delivered commit
    [commit] = store.executions_of(task.id)[0].commits
    checker_prompt = next(
        json.dumps(r.body["messages"])
        for r in fake.requests
        if "You are checking work" in json.dumps(r.body["messages"])
    )
    assert "export() is covered by a unit test" in checker_prompt
    assert commit.hash in checker_prompt
    # and where the work is, with the command to look at it
    branch = kept_branch(project, task.id)
    assert f"kept as branch {branch} in {project}" in checker_prompt
    assert f"log HEAD..{branch}" in checker_prompt


async def test_claude_budget_stop_ends_budget_exceeded(
    cfg: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    expensive = FakeAnthropic(
        [ToolUse("Bash", {"command": "echo 1 > a.txt"}), ToolUse("Bash", {"command": "echo 2"})],
        repeat_last=True,
        input_tokens=100_000,
        output_tokens=5_000,
    )
    with expensive:
        env = claude_env(expensive.url, tmp_path / "agent-home")
        task = make_task(project).model_copy(
            update={"agent": make_task(project).agent.model_copy(update={"max_budget_usd": 0.5})}
        )
        async with PoolHarness(cfg, store, env) as h:
            h.submit(task)
            [done] = await h.settle([task])
    [run] = store.executions_of(task.id)
    assert done.state == TaskState.BUDGET_EXCEEDED
    assert run.status == TaskState.BUDGET_EXCEEDED
    assert "Reached maximum budget ($0.5)" in run.error_msg
    assert run.cost_usd >= 0.5
    assert run.tokens_in == 100_000  # the whole run, not just its last (empty) reply
    assert run.commits == ()  # nothing delivered
    assert Path(run.sandbox_dir).is_dir()


async def test_answer_resumes_in_a_fresh_sandbox_when_the_preserved_one_vanished(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ask("Shall I?", []),
            Text("asked"),
            ToolUse("Bash", {"command": "echo done > done.txt"}),
            Text("## Summary\nDid it."),
        ]
    )
    async with PoolHarness(cfg, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [blocked] = await h.settle([task])
        assert blocked.state == TaskState.BLOCKED
        preserved = Path(store.executions_of(task.id)[0].sandbox_dir)
        shutil.rmtree(preserved)
        h.service.answer(task.id, "yes")
        [done] = await h.settle([task])
    first, second = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, second.error_msg
    assert second.sandbox_dir != first.sandbox_dir
    # Claude keeps its sessions outside the sandbox, so the same session resumes
    assert second.session_id == first.session_id
    assert "Answer: yes" in json.dumps(fake.requests[-1].body["messages"])
    assert git(project, "show", f"{kept_branch(project, task.id)}:done.txt") == "done"


async def test_review_loop_ready_reject_with_feedback_then_accept(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    settings = cfg.model_copy(
        update={"projects": (Project(name="app", dir=str(project), review=True),)}
    )
    fake.set_script(
        [
            ToolUse("Write", {"file_path": "a.txt", "content": "v1\n"}),
            Text("## Summary\nfirst try"),
            ToolUse("Write", {"file_path": "a.txt", "content": "v2\n"}),
            Text("## Summary\nsecond try"),
        ]
    )
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [ready] = await h.settle([task])
        assert ready.state == TaskState.READY
        first = store.executions_of(task.id)[0]
        branch = kept_branch(project, task.id)
        assert git(project, "show", f"{branch}:a.txt") == "v1"
        assert Path(first.sandbox_dir).is_dir()  # kept for the review loop
        h.service.reject(task.id, "Please write v2 instead.")
        [again] = await h.settle([task])
        assert again.state == TaskState.READY
        assert again.summary == "second try"
        assert git(project, "show", f"{branch}:a.txt") == "v2"
        assert "Please write v2 instead." in json.dumps(fake.requests[-1].body["messages"])
        rounds = store.executions_of(task.id)
        # round 1 was reviewed and superseded; round 2 is the one waiting
        assert [r.status for r in rounds] == [TaskState.COMPLETED, TaskState.READY]
        assert f"continued by execution {rounds[1].id}" in rounds[0].error_msg
        done = h.service.accept(task.id)
    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED
    assert [r.status for r in runs] == [TaskState.COMPLETED, TaskState.COMPLETED]
    # each round shows its own work: round 2 only the commit that wrote v2
    [one], [two] = runs[0].commits, runs[1].commits
    assert one.hash != two.hash
    assert git(project, "rev-parse", f"{two.hash}^") == one.hash
    assert (runs[1].changestats.insertions, runs[1].changestats.deletions) == (1, 1)
    second_diff = (Path(runs[1].stdout_path).parent / "changes.diff").read_text()
    assert "-v1\n+v2" in second_diff
    assert {r.session_id for r in runs} == {first.session_id}
    assert {r.sandbox_dir for r in runs} == {first.sandbox_dir}
    assert not Path(first.sandbox_dir).exists()  # released on accept
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"


async def test_review_round_that_changes_nothing_shows_no_commits_and_waits_again(
    cfg: Settings, store: Store, fake: FakeAnthropic, agent_env: dict[str, str], make_repo: MakeRepo
) -> None:
    project = make_repo()
    settings = cfg.model_copy(
        update={"projects": (Project(name="app", dir=str(project), review=True),)}
    )
    fake.set_script(
        [
            ToolUse("Write", {"file_path": "a.txt", "content": "v1\n"}),
            Text("## Summary\nfirst try"),
            Text("## Summary\nI think v1 is right; nothing changed."),
        ]
    )
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [ready] = await h.settle([task])
        assert ready.state == TaskState.READY
        branch = kept_branch(project, task.id)
        delivered = git(project, "rev-parse", branch)
        h.service.reject(task.id, "Are you sure?")
        [again] = await h.settle([task])
        first, second = store.executions_of(task.id)
        # the review goes on: same sandbox, the branch as round 1 left it
        assert again.state == TaskState.READY, second.error_msg
        assert second.sandbox_dir == first.sandbox_dir
        assert Path(second.sandbox_dir).is_dir()
        assert git(project, "rev-parse", branch) == delivered
        # round 2 changed nothing: no commits, no changes, no diff (not round 1's)
        assert [c.hash for c in first.commits] == [delivered]
        assert second.commits == ()
        assert second.changestats.files == 0
        assert not (Path(second.stdout_path).parent / "changes.diff").exists()
        assert (first.status, second.status) == (TaskState.COMPLETED, TaskState.READY)
        done = h.service.accept(task.id)
    assert done.state == TaskState.COMPLETED
    assert [r.status for r in store.executions_of(task.id)] == [TaskState.COMPLETED] * 2
