# ruff: noqa: F811  (the fixtures of codex_harness are imported, then used by name)
"""The pool end to end with the real Codex CLI against the Responses API of the OpenAI fake:
delivery as a commit, the estimated cost, failures, rate limits, questions and review rounds
resumed with ``codex exec resume``, timeouts, budgets, and the same under bubblewrap.

Real SQLite, real git repositories, real processes; only the model is fake. ``[agents.codex]``
names the fake as ``base_url``, ``FAKE_KEY`` as ``api_key_env`` and bounds Codex's own retries
(``args``)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task, pid_alive, wait_for
from codex_harness import (  # noqa: F401  (pytest fixtures)
    MODEL,
    ask,
    codex_env,
    codex_settings,
    codex_table,
    codex_user_home,
    hang_command,
    host_pids,
    responses,
)

from claudomator.agents.codex import FULL_ACCESS, WORKSPACE_WRITE
from claudomator.config import Settings, estimate_cost
from claudomator.config.sections import IsolationSettings
from claudomator.models import Project, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.openai_server import ApiError, FakeOpenAI, Reply, Scripted
from fakes.responses import exec_command

pytestmark = pytest.mark.cli

HIGH_DEMAND = "We\u2019re currently experiencing high demand"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")


def codex_task(project: Path, instructions: str = "do the thing", **kwargs: object):  # type: ignore[no-untyped-def]
    return make_task(project, instructions, agent_type="codex", **kwargs)


def create_file(text: str = "hello from codex") -> list[Scripted]:
    return [
        exec_command(f"echo '{text}' > hello.txt", text="I'll create the file."),
        Reply("Done.\n\n## Summary\nCreated hello.txt with a greeting."),
    ]


async def test_codex_work_is_committed_with_tokens_and_an_estimated_cost(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    responses.set_script(create_file())
    async with PoolHarness(codex_settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project, "Create hello.txt"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert run.agent == "codex"
    assert run.exit_code == 0
    assert done.summary == "Created hello.txt with a greeting."
    assert len(run.commits) == 1
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello from codex"
    assert git(project, "rev-parse", "HEAD") == user_head
    # tokens as reported, the cost estimated from the price table (Codex reports none)
    assert (run.tokens_in, run.tokens_out) == (200, 40)
    assert run.cost_estimated is True
    assert run.cost_usd == pytest.approx(estimate_cost(codex_settings.prices, MODEL, 200, 40))
    assert run.cost_usd > 0
    # the session is Codex's thread, the agent ran in the sandbox with the protocol's env
    lines = Path(run.stdout_path).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"type": "thread.started", "thread_id": run.session_id}
    assert json.loads(lines[-1])["type"] == "turn.completed"
    environment = responses.requests[0].responses.texts("user")[0]
    assert f"<cwd>{run.sandbox_dir}</cwd>" in environment
    config = tomllib.loads(
        (codex_settings.homes_dir / task.id / ".codex" / "config.toml").read_text()
    )
    assert config["sandbox_mode"] == WORKSPACE_WRITE
    assert config["sandbox_workspace_write"]["writable_roots"] == [
        str(Path(run.stdout_path).parent)
    ]


async def test_api_500_fails_the_task_with_the_message(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    responses.set_script([ApiError(500, "upstream exploded (fake)")], repeat_last=True)
    async with PoolHarness(codex_settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.FAILED
    assert run.exit_code == 1
    assert f"API error 500: {HIGH_DEMAND}" in run.error_msg
    assert Path(run.sandbox_dir).is_dir()  # preserved, and named in the error
    assert run.sandbox_dir in run.error_msg
    assert HIGH_DEMAND in store.events(task.id)[-1].reason
    assert store.agent_status("codex").consecutive_failures == 1


async def test_rate_limit_beyond_codex_retries_requeues_then_completes(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    codex_bin: str,
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    table = codex_table(codex_bin, responses.url, retry=1)
    settings = codex_settings.model_copy(
        update={"agents": {"codex": table}, "rate_limit_backoff_seconds": 1}
    )
    limited = ApiError(429, "Rate limit reached (fake)", retry_after=1, error_type="rate_limit")
    # Codex's one retry is used up: the run fails with 429
    responses.set_script([limited, limited, *create_file("after the window")])
    async with PoolHarness(settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project))
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.status for r in runs] == [TaskState.QUEUED, TaskState.COMPLETED]
    assert "429" in runs[0].error_msg
    requeue = store.events(task.id)[-3]
    assert requeue.reason.startswith("rate_limit on codex; re-queued until")
    assert runs[1].start_time >= runs[0].end_time  # type: ignore[operator]
    assert git(project, "show", f"{kept_branch(project, task.id)}:hello.txt") == (
        "after the window"
    )
    assert store.agent_status("codex").rate_limit_strikes == 0


async def test_question_blocks_then_the_answer_resumes_the_same_thread(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    responses.set_script(
        [
            ask("Which colour should the button be?", ("red", "blue")),
            Reply("I asked a human."),
            exec_command("echo blue > colour.txt"),
            Reply("## Summary\nWrote colour.txt with the chosen colour."),
        ]
    )
    async with PoolHarness(codex_settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project, "Make the button a nice colour"))
        [blocked] = await h.settle([task])
        first = store.executions_of(task.id)[0]
        assert blocked.state == TaskState.BLOCKED, first.error_msg
        assert json.loads(blocked.question) == {
            "text": "Which colour should the button be?",
            "options": ["red", "blue"],
        }
        asked = len(responses.requests)
        h.service.answer(task.id, "blue")
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert done.summary == "Wrote colour.txt with the chosen colour."
    assert len(runs) == 2
    assert {r.session_id for r in runs} == {first.session_id}
    assert {r.sandbox_dir for r in runs} == {first.sandbox_dir}
    # codex exec resume <thread>: the server sees the earlier conversation and the answer
    resumed = responses.requests[asked].responses
    conversation = json.dumps(resumed.items)
    assert "Make the button a nice colour" in conversation
    assert "Which colour should the button be?" in conversation
    assert "I asked a human." in resumed.texts("assistant")
    assert "blue" in resumed.texts("user")[-1]
    assert Path(runs[1].stdout_path).read_text().splitlines()[0] == json.dumps(
        {"type": "thread.started", "thread_id": first.session_id}, separators=(",", ":")
    )
    # each run records its own tokens, not the session's running total
    assert (runs[0].tokens_in, runs[0].tokens_out) == (200, 40)
    assert (runs[1].tokens_in, runs[1].tokens_out) == (200, 40)
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "blue"


async def test_review_reject_reworks_in_the_same_thread(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    settings = codex_settings.model_copy(
        update={"projects": (Project(name="app", dir=str(project), review=True),)}
    )
    responses.set_script(
        [
            exec_command("echo v1 > a.txt"),
            Reply("## Summary\nfirst try"),
            exec_command("echo v2 > a.txt"),
            Reply("## Summary\nsecond try"),
        ]
    )
    async with PoolHarness(settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project))
        [ready] = await h.settle([task])
        assert ready.state == TaskState.READY, store.executions_of(task.id)[0].error_msg
        branch = kept_branch(project, task.id)
        assert git(project, "show", f"{branch}:a.txt") == "v1"
        h.service.reject(task.id, "Please write v2 instead.")
        [again] = await h.settle([task])
        assert again.state == TaskState.READY
        assert git(project, "show", f"{branch}:a.txt") == "v2"
        rework = responses.requests[-2].responses
        assert "Please write v2 instead." in rework.texts("user")[-1]
        assert "## Summary\nfirst try" in rework.texts("assistant")
        h.service.accept(task.id)
    runs = store.executions_of(task.id)
    assert [r.status for r in runs] == [TaskState.COMPLETED, TaskState.COMPLETED]
    assert {r.session_id for r in runs} == {runs[0].session_id}


async def test_a_hanging_codex_is_killed_with_its_command_at_the_timeout(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    command, pidfile = hang_command(tmp_path)
    responses.set_script([exec_command(command, yield_time_ms=30000)], repeat_last=True)
    async with PoolHarness(codex_settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project, timeout=8))
        await wait_for(pidfile.exists, 30)
        [child] = host_pids(str(pidfile))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.TIMED_OUT
    assert "timed out after 8s" in run.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert run.pid is not None
    assert not pid_alive(run.pid)


async def test_the_estimated_cost_over_the_budget_stops_codex_and_delivers_nothing(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    responses.set_script(create_file())
    async with PoolHarness(codex_settings, store, codex_env) as h:
        task = codex_task(project)
        task = task.model_copy(
            update={"agent": task.agent.model_copy(update={"max_budget_usd": 0.00001})}
        )
        [task] = h.submit(task)
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.BUDGET_EXCEEDED, run.error_msg
    # the live estimate (the prompt alone is over) stopped it before the turn ended
    assert run.error_msg.startswith("estimated cost ~$")
    assert "passed the budget of $1e-05; stopped the agent" in run.error_msg
    assert run.commits == ()  # the work was not delivered
    assert not git(project, "branch", "--list", "claudomator/*")


# -- confined by bubblewrap ----------------------------------------------------------------


@needs_bwrap
async def test_confined_codex_edits_its_sandbox_with_full_access_inside_bwrap(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    codex_user_home: Path,
    make_repo: MakeRepo,
) -> None:
    """Inside our bwrap Codex's own sandbox cannot start (no capabilities to map a uid), so the
    runner writes ``danger-full-access``: our namespace is the confinement."""
    project = make_repo()
    settings = codex_settings.model_copy(
        update={"isolation": IsolationSettings(launcher="bubblewrap")}
    )
    env = {**codex_env, "SSH_AUTH_SOCK": "/nowhere.sock"}
    responses.set_script(
        [
            exec_command("echo hello > hello.txt; env > env.txt; ls -a ~ > home.txt"),
            Reply("Done.\n\n## Summary\nCreated hello.txt."),
        ]
    )
    async with PoolHarness(settings, store, env) as h:
        [task] = h.submit(codex_task(project, "Create hello.txt"))
        [blocked_or_done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert blocked_or_done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello"
    seen = git(project, "show", f"{branch}:env.txt").splitlines()
    assert "HOME=/home/agent" in seen
    assert "CODEX_HOME=/home/agent/.codex" in seen
    assert "SSH_AUTH_SOCK=/nowhere.sock" not in seen
    assert ".codex" in git(project, "show", f"{branch}:home.txt").splitlines()
    home = settings.homes_dir / task.id / ".codex"
    config = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    assert config["sandbox_mode"] == FULL_ACCESS
    assert list((home / "sessions").rglob(f"*{run.session_id}.jsonl"))
    assert not (codex_user_home / ".codex").exists()
    assert (run.tokens_in, run.tokens_out) == (200, 40)


@needs_bwrap
async def test_confined_answer_resumes_the_same_thread_from_the_private_home(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    settings = codex_settings.model_copy(
        update={"isolation": IsolationSettings(launcher="bubblewrap")}
    )
    responses.set_script(
        [
            ask("Which colour?"),
            Reply("I asked a human."),
            exec_command("echo blue > colour.txt"),
            Reply("## Summary\nWrote colour.txt."),
        ]
    )
    async with PoolHarness(settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project, "Pick a colour"))
        [blocked] = await h.settle([task])
        assert blocked.state == TaskState.BLOCKED, store.executions_of(task.id)[0].error_msg
        asked = len(responses.requests)
        h.service.answer(task.id, "blue")
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert {r.session_id for r in runs} == {runs[0].session_id}
    conversation = json.dumps(responses.requests[asked].responses.items)
    assert "Pick a colour" in conversation
    assert "Which colour?" in conversation
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "blue"


@needs_bwrap
async def test_codex_sandbox_forced_inside_bwrap_fails_the_run_that_exited_0(
    codex_settings: Settings,
    store: Store,
    responses: FakeOpenAI,
    codex_env: dict[str, str],
    codex_bin: str,
    make_repo: MakeRepo,
) -> None:
    """What ``workspace-write`` does inside our bwrap (why the runner writes full access
    there): every command fails in Codex's own sandbox, stdout shows no command and Codex exits
    0. The runner reads the session file and fails the run instead of delivering nothing."""
    project = make_repo()
    table = codex_table(codex_bin, responses.url)
    forced = table.model_copy(
        update={"args": (*table.args, "-c", 'sandbox_mode="workspace-write"')}
    )
    settings = codex_settings.model_copy(
        update={"agents": {"codex": forced}, "isolation": IsolationSettings(launcher="bubblewrap")}
    )
    responses.set_script(create_file())
    async with PoolHarness(settings, store, codex_env) as h:
        [task] = h.submit(codex_task(project))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.FAILED
    assert run.exit_code == 0
    assert "Codex's own sandbox could not run 1 of the agent's commands" in run.error_msg
    assert "bwrap: setting up uid map: Operation not permitted" in run.error_msg
    lines = Path(run.stdout_path).read_text(encoding="utf-8")
    assert "command_execution" not in lines
    assert not (Path(run.sandbox_dir) / "hello.txt").exists()
