# ruff: noqa: F811  (the fixtures of opencode_harness are imported, then used by name)
"""OpenCode through the pool end to end: the real CLI against the fake Chat Completions server.

Real SQLite, real git, real processes; only the model is fake. OpenCode is registered the way
any agent is (``registry.register(opencode_spec())``) and configured as an operator would, in
``[agents.opencode]``; the runner writes its ``opencode.json`` (provider, key variable, the
model's price) in the task's private home. Tests pin the launcher they need."""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import hanging_command, marked_pid, marked_pids, pid_alive, wait_for
from opencode_harness import (  # noqa: F401  (pytest fixtures)
    CALL_COST,
    KEY,
    MODEL,
    OpenCodePool,
    ask,
    bash,
    cfg,
    fake,
    opencode_bin,
    opencode_task,
)

from claudomator.agents.opencode import PROVIDER
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import Project, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.openai_tools import ApiError, FakeChatTools, Reply

pytestmark = pytest.mark.cli

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")


def pinned(cfg: Settings, launcher: str) -> Settings:
    return cfg.model_copy(update={"isolation": IsolationSettings(launcher=launcher)})


@pytest.mark.parametrize("launcher", ["plain", pytest.param("bubblewrap", marks=needs_bwrap)])
async def test_an_edit_is_delivered_as_a_commit_with_tokens_and_opencodes_cost(
    launcher: str,
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    fake.set_script(
        [
            bash("echo 'hello from opencode' > hello.txt; env > env.txt", "I'll create the file."),
            Reply("Done.\n\n## Summary\nCreated hello.txt."),
        ]
    )
    settings = pinned(cfg, launcher)
    async with OpenCodePool(settings, store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert run.agent == "opencode"
    assert run.exit_code == 0
    assert done.summary == "Created hello.txt."
    assert len(run.commits) == 1
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello from opencode"
    assert git(project, "rev-parse", "HEAD") == user_head
    # tokens and the cost OpenCode computed from the price the runner wrote into its config
    assert (run.tokens_in, run.tokens_out) == (200, 40)
    assert run.cost_estimated is False
    assert run.cost_usd == pytest.approx(2 * CALL_COST)
    # the session is OpenCode's, kept in the task's private home with the config written there
    assert run.session_id.startswith("ses_")
    lines = Path(run.stdout_path).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["sessionID"] == run.session_id
    home = settings.homes_dir / task.id
    config = json.loads((home / ".config/opencode/opencode.json").read_text(encoding="utf-8"))
    provider = config["provider"][PROVIDER]
    assert provider["options"] == {"baseURL": fake.url, "apiKey": "{env:FAKE_OPENCODE_KEY}"}
    assert provider["models"][MODEL]["cost"] == {"input": 1.0, "output": 2.0}
    assert (home / ".local/share/opencode/opencode.db").is_file()
    assert not (tmp_path / "user-home" / ".config").exists()
    assert not (tmp_path / "user-home" / ".local").exists()
    assert KEY not in json.dumps(config)
    # no npm install of OpenCode's plugin package (its cache would be in the user's HOME)
    assert not (tmp_path / "user-home" / ".npm").exists()
    assert not (home / ".npm").exists()
    assert not (home / ".config/opencode/package.json").exists()
    # nothing of OpenCode's in the delivered tree
    tree = git(project, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert sorted(tree) == sorted(
        {*git(project, "ls-tree", "-r", "--name-only", "HEAD").splitlines(), "hello.txt", "env.txt"}
    )
    seen = git(project, "show", f"{branch}:env.txt").splitlines()
    if launcher == "bubblewrap":
        assert "HOME=/home/agent" in seen
        assert "XDG_DATA_HOME=/home/agent/.local/share" in seen
    else:
        assert f"XDG_DATA_HOME={home}/.local/share" in seen
    # the provider of [agents.opencode]; the prompt as OpenCode sends it (quoted: it has a space)
    first = fake.chat_requests[0]
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.model == MODEL
    assert "bash" in first.tool_names
    assert run.sandbox_dir in json.dumps(first.body["messages"])


async def test_api_500_fails_the_task_with_the_apis_message(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    fake.set_script([ApiError(500, "upstream exploded (fake)", retry_after=0.1)], repeat_last=True)
    async with OpenCodePool(pinned(cfg, "plain"), store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.FAILED
    assert run.exit_code == 1
    assert "API error 500: upstream exploded (fake)" in run.error_msg
    assert "upstream exploded (fake)" in store.events(task.id)[-1].reason
    assert len(fake.chat_requests) == 6  # OpenCode's 5 retries
    assert store.agent_status("opencode").rate_limit_strikes == 0  # a failure, not a limit


async def test_rate_limit_beyond_opencodes_retries_requeues_then_completes(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    limited = ApiError(429, "Too many requests (fake)", retry_after=0.2, error_type="rate_limit")
    fake.set_script(
        [*[limited] * 6, bash("echo after > hello.txt"), Reply("## Summary\nafter the window")]
    )
    async with OpenCodePool(pinned(cfg, "plain"), store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project))
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert [r.status for r in runs] == [TaskState.QUEUED, TaskState.COMPLETED]
    assert "API error 429: Too many requests (fake)" in runs[0].error_msg
    assert any(e.reason.startswith("rate_limit on opencode") for e in store.events(task.id))
    assert runs[1].start_time >= runs[0].end_time  # type: ignore[operator]
    assert git(project, "show", f"{kept_branch(project, task.id)}:hello.txt") == "after"


@pytest.mark.parametrize("launcher", ["plain", pytest.param("bubblewrap", marks=needs_bwrap)])
async def test_question_blocks_then_the_answer_continues_the_same_session(
    launcher: str,
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ask("Which colour should the button be?", ("red", "blue")),
            Reply("I asked a human."),
            bash("echo blue > colour.txt"),
            Reply("## Summary\nWrote colour.txt with the chosen colour."),
        ]
    )
    async with OpenCodePool(pinned(cfg, launcher), store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project, "Make the button a nice colour"))
        [blocked] = await h.settle([task])
        first = store.executions_of(task.id)[0]
        assert blocked.state == TaskState.BLOCKED, first.error_msg
        assert json.loads(blocked.question) == {
            "text": "Which colour should the button be?",
            "options": ["red", "blue"],
        }
        asked = len(fake.chat_requests)
        h.service.answer(task.id, "blue")
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert done.summary == "Wrote colour.txt with the chosen colour."
    assert len(runs) == 2
    assert {r.session_id for r in runs} == {first.session_id}
    assert {r.sandbox_dir for r in runs} == {first.sandbox_dir}
    # opencode run -s <session>: the server sees the earlier conversation, then the answer
    resumed = fake.chat_requests[asked]
    assert any("Make the button a nice colour" in t for t in resumed.texts("user"))
    assert "Which colour should the button be?" in json.dumps(resumed.tool_calls())
    assert "I asked a human." in resumed.texts("assistant")
    assert "blue" in resumed.texts("user")[-1]
    # each run records its own tokens and cost
    assert (runs[1].tokens_in, runs[1].tokens_out) == (200, 40)
    assert runs[1].cost_usd == pytest.approx(2 * CALL_COST)
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "blue"


async def test_review_reject_reworks_in_the_same_session(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    settings = pinned(cfg, "plain").model_copy(
        update={"projects": (Project(name="app", dir=str(project), review=True),)}
    )
    fake.set_script(
        [
            bash("echo v1 > a.txt"),
            Reply("## Summary\nfirst try"),
            bash("echo v2 > a.txt"),
            Reply("## Summary\nsecond try"),
        ]
    )
    async with OpenCodePool(settings, store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project))
        [ready] = await h.settle([task])
        assert ready.state == TaskState.READY, store.executions_of(task.id)[0].error_msg
        branch = kept_branch(project, task.id)
        assert git(project, "show", f"{branch}:a.txt") == "v1"
        h.service.reject(task.id, "Please write v2 instead.")
        [again] = await h.settle([task])
        assert again.state == TaskState.READY
        assert git(project, "show", f"{branch}:a.txt") == "v2"
        rework = fake.chat_requests[-2]
        assert "Please write v2 instead." in rework.texts("user")[-1]
        assert "## Summary\nfirst try" in rework.texts("assistant")
        h.service.accept(task.id)
    runs = store.executions_of(task.id)
    assert [r.status for r in runs] == [TaskState.COMPLETED, TaskState.COMPLETED]
    assert {r.session_id for r in runs} == {runs[0].session_id}


@pytest.mark.parametrize("launcher", ["plain", pytest.param("bubblewrap", marks=needs_bwrap)])
async def test_a_hanging_command_is_killed_with_opencode_at_the_timeout(
    launcher: str,
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script([bash(hanging_command(marker))])
    async with OpenCodePool(pinned(cfg, launcher), store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project, timeout=8))
        child = await asyncio.to_thread(marked_pid, marker)
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.TIMED_OUT
    assert "timed out after 8s" in run.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert run.pid is not None
    assert not pid_alive(run.pid)


async def test_the_cost_over_the_budget_stops_opencode_and_delivers_nothing(
    cfg: Settings, store: Store, fake: FakeChatTools, make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    # the first call alone costs more than the budget: the guard stops OpenCode before the
    # second command (which would hang) can run
    fake.set_script([bash("echo one > one.txt"), bash(hanging_command(marker))])
    async with OpenCodePool(pinned(cfg, "plain"), store, tmp_path / "user-home") as h:
        task = opencode_task(project)
        task = task.model_copy(
            update={"agent": task.agent.model_copy(update={"max_budget_usd": CALL_COST / 2})}
        )
        [task] = h.submit(task)
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.BUDGET_EXCEEDED, run.error_msg
    assert run.error_msg.startswith(
        f"cost ${CALL_COST:.4f} passed the budget of ${CALL_COST / 2:g}; stopped the agent"
    )
    assert run.commits == ()
    assert not git(project, "branch", "--list", "claudomator/*")
    await wait_for(lambda: not marked_pids(marker), 5)


class _Other(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"secret\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other() -> Iterator[http.server.ThreadingHTTPServer]:
    """A local HTTP server that is not the model endpoint."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Other)
    server.paths = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@needs_bwrap
async def test_model_only_opencode_completes_and_reaches_nothing_else(
    cfg: Settings,
    store: Store,
    fake: FakeChatTools,
    make_repo: MakeRepo,
    tmp_path: Path,
    other: http.server.ThreadingHTTPServer,
) -> None:
    """Under ``network = "model-only"`` OpenCode reaches its endpoint (the runner declares
    ``base_url``'s origin) and, being offline otherwise, needs nothing else; a command it runs
    reaches no other server."""
    project = make_repo()
    url = f"http://127.0.0.1:{other.server_port}/leak"
    fetch = (
        f"(curl -s -m 5 {url} || echo proxy-failed) > proxy.txt; "
        f"(curl -s -m 5 --noproxy '*' {url} || echo direct-failed) > direct.txt"
    )
    fake.set_script([bash(f"echo hello > hello.txt; {fetch}"), Reply("## Summary\nok")])
    settings = cfg.model_copy(
        update={"isolation": IsolationSettings(launcher="bubblewrap", network="model-only")}
    )
    async with OpenCodePool(settings, store, tmp_path / "user-home") as h:
        [task] = h.submit(opencode_task(project))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello"
    assert git(project, "show", f"{branch}:direct.txt") == "direct-failed"
    assert "secret" not in git(project, "show", f"{branch}:proxy.txt")
    assert other.paths == []  # type: ignore[attr-defined]
    assert len(fake.chat_requests) == 2
    # the gate refused the command's request, and nothing OpenCode itself tried
    refused = [x for x in Path(run.stderr_path).read_text("utf-8").splitlines() if "refused" in x]
    assert refused == [
        f"claudomator network: refused GET 127.0.0.1:{other.server_port}: not an allowed "
        "endpoint (model-only)",
        "claudomator network: 1 connection(s) refused",
    ]
