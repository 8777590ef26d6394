# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""The real Claude Code CLI confined by the ``bubblewrap`` launcher, run by the real pool against
the fake model server (issue 13): it still edits its sandbox and the work is delivered, and a
question, its answer and ``--resume`` continue the same session from the task's private home;
the real Gemini CLI, confined, runs with its settings copied into its private home.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    ask,
    claude_settings,
    confined,
    fake,
    make_task,
    pid_alive,
    process_tree,
    user_home,
    wait_for,
)

from claudomator.agents.oneshot import ask_json
from claudomator.agents.registry import default_registry
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.isolation import build_launcher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env
from fakes.gemini import FakeGemini, FunctionCall, gemini_env
from fakes.gemini import Text as GeminiText

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
]


@pytest.fixture
def confined_env(agent_env: dict[str, str], user_home: Path) -> dict[str, str]:
    """The agent environment with a variable the launcher must not pass."""
    return {**agent_env, "SSH_AUTH_SOCK": str(user_home / "ssh-agent.sock")}


async def test_confined_claude_edits_its_sandbox_and_the_work_is_delivered(
    confined: Settings,
    store: Store,
    fake: FakeAnthropic,
    confined_env: dict[str, str],
    user_home: Path,
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    (user_home / ".claude.json").write_text('{"numStartups": 7}\n', encoding="utf-8")
    fake.set_script(
        [
            ToolUse("Bash", {"command": "echo hello > hello.txt; env > env.txt; ls ~ > home.txt"}),
            Text("Done.\n\n## Summary\nCreated hello.txt."),
        ]
    )
    async with PoolHarness(confined, store, confined_env) as h:
        [task] = h.submit(make_task(project, "Create hello.txt"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello"
    seen = git(project, "show", f"{branch}:env.txt")
    assert "HOME=/home/agent" in seen
    assert "ANTHROPIC_BASE_URL=" in seen
    assert "SSH_AUTH_SOCK" not in seen
    # the private home of the task: the CLI's state file was copied in, its sessions stay there
    home = confined.data_dir / "homes" / task.id
    assert json.loads((home / ".claude.json").read_text(encoding="utf-8"))["numStartups"] >= 7
    assert list((home / ".claude" / "projects").rglob(f"{run.session_id}.jsonl"))
    assert not (user_home / ".claude" / "projects").exists()  # nothing in the user's home


TRAPPED = "trap 'echo flushed > term.txt; exit 0' TERM; echo ready > ready.txt; " + (
    "while :; do sleep 0.05; done"
)


async def test_cancelling_a_confined_claude_sigterms_its_tool_command_and_leaves_nothing(
    confined: Settings,
    store: Store,
    fake: FakeAnthropic,
    confined_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    """Cancelled mid-run, the CLI and the command it runs get their SIGTERM inside the pid
    namespace (the command notes it in the sandbox); the task ends CANCELLED, nothing is left."""
    fake.set_script([ToolUse("Bash", {"command": TRAPPED, "timeout": 600000})])
    async with PoolHarness(confined, store, confined_env) as h:
        [task] = h.submit(make_task(make_repo(), "Hang"))

        def ready() -> bool:
            runs = store.executions_of(task.id)
            return bool(runs) and Path(runs[0].sandbox_dir, "ready.txt").is_file()

        await wait_for(ready, 60)
        pid = store.executions_of(task.id)[0].pid
        assert pid is not None
        before = process_tree(pid)
        h.service.cancel(task.id[:8])
        [done] = await h.settle([task], timeout=60)

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.CANCELLED, run.error_msg
    assert Path(run.sandbox_dir, "term.txt").read_text(encoding="utf-8") == "flushed\n"
    assert len(before) >= 4  # bwrap, its init, the CLI, the command
    assert not [p for p in before if pid_alive(p)]


async def test_confined_answer_resumes_the_same_session(
    confined: Settings,
    store: Store,
    fake: FakeAnthropic,
    confined_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ask("Which colour?"),
            Text("I asked a human."),
            ToolUse("Write", {"file_path": "colour.txt", "content": "blue\n"}),
            Text("## Summary\nWrote colour.txt."),
        ]
    )
    async with PoolHarness(confined, store, confined_env) as h:
        [task] = h.submit(make_task(project, "Pick a colour"))
        [blocked] = await h.settle([task])
        assert blocked.state == TaskState.BLOCKED, store.executions_of(task.id)[0].error_msg
        first_requests = len(fake.requests)
        h.service.answer(task.id, "blue")
        [done] = await h.settle([task])

    runs = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, runs[-1].error_msg
    assert len(runs) == 2
    assert {r.session_id for r in runs} == {runs[0].session_id}
    # the resumed CLI found the session in the private home: it sent the earlier conversation
    resumed = json.dumps(fake.requests[first_requests].body["messages"])
    assert "Pick a colour" in resumed
    assert "Which colour?" in resumed
    assert "blue" in resumed
    assert git(project, "show", f"{kept_branch(project, task.id)}:colour.txt") == "blue"


async def test_confined_gemini_runs_with_its_settings_copied_into_the_private_home(
    settings: Settings, store: Store, gemini_bin: str, tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo("gemini-project")
    with FakeGemini() as fake:
        fake.set_script(
            [
                FunctionCall("run_shell_command", {"command": "echo 'from gemini' > hello.txt"}),
                GeminiText("Done.\n\n## Summary\nCreated hello.txt from Gemini."),
            ]
        )
        user_home = tmp_path / "gemini-home"
        env = gemini_env(fake.url, user_home)  # writes the user's ~/.gemini/settings.json
        gemini_settings = settings.model_copy(
            update={
                "gemini_binary_path": gemini_bin,
                "kill_grace_seconds": 2,
                "isolation": IsolationSettings(launcher="bubblewrap"),
            }
        )
        async with PoolHarness(gemini_settings, store, env) as h:
            agent = AgentConfig(
                type="gemini",
                model="gemini-2.5-pro",
                instructions="Create hello.txt",
                project_dir=str(project),
            )
            [task] = h.submit(Task(name="gemini task", agent=agent))
            [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert git(project, "show", f"{kept_branch(project, task.id)}:hello.txt") == "from gemini"
    home = gemini_settings.data_dir / "homes" / task.id / ".gemini"
    assert (home / "settings.json").read_bytes() == (
        user_home / ".gemini" / "settings.json"
    ).read_bytes()
    assert not (user_home / ".gemini" / "tmp").exists()  # its sessions stay in the private home


async def test_a_confined_one_shot_call_answers_in_the_project_read_only(
    claude_bin: str, tmp_path: Path, make_repo: MakeRepo
) -> None:
    """The chooser's and elaborate's one-shot call works confined: the project bound read-only,
    the CLI's variables passed, a private home of its own in the call's temporary directory."""
    project = make_repo("one-shot-project")
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    spec = default_registry()["claude"]
    assert spec.one_shot is not None
    launcher = build_launcher("bubblewrap", Settings(data_dir=tmp_path / "data"))
    with FakeAnthropic([Text('```json\n{"agent": "gemini"}\n```')]) as fake:
        env = claude_env(fake.url, tmp_path / "home")
        answer = await ask_json(
            spec.one_shot,
            claude_bin,
            "pick one",
            cwd=str(project),
            env=env,
            time_limit=90,
            launcher=launcher,
        )
    assert answer == {"agent": "gemini"}
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before
