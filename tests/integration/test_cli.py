"""The ``claudomator`` console script as a user runs it: real processes, files, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import hanging_script, marked_pid, pid_alive

from claudomator.config import load_settings
from claudomator.models import AgentConfig, Execution, Task, TaskState, utcnow
from claudomator.store import Store
from conftest import MakeRepo, git
from fakes.anthropic import ApiError, FakeAnthropic, Text, ToolUse, claude_env

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAUDOMATOR, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def agent_env(fake: FakeAnthropic, tmp_path: Path, claude_bin: str) -> dict[str, str]:
    env = claude_env(fake.url, tmp_path / "agent-home")
    # the orchestrator's own HOME/data dir stay those of the test
    env["CLAUDOMATOR_DATA_DIR"] = os.environ["CLAUDOMATOR_DATA_DIR"]
    env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
    config = write(
        Path(env["CLAUDOMATOR_DATA_DIR"]).parent / "config.toml",
        f'claude_binary_path = "{claude_bin}"\nkill_grace_seconds = 2\n',
    )
    env["CLAUDOMATOR_CONFIG"] = str(config)
    return env


def stored_task_count() -> int:
    db = Path(os.environ["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from tasks").fetchone()[0])


# -- invalid input ---------------------------------------------------------------------------


def test_invalid_task_file_exits_2_naming_file_task_and_field(tmp_path: Path) -> None:
    tasks = write(
        tmp_path / "tasks.yaml",
        """
tasks:
  - name: good
    agent: {instructions: "fine"}
  - name: bad-timeout
    timeout: soon
    agent: {instructions: "x"}
  - name: no-instructions
    agent: {model: sonnet}
  - name: missing-project
    agent: {instructions: "x", project_dir: ./nope}
    colour: blue
""",
    )
    done = cli("run", str(tasks))
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert f"{tasks}:bad-timeout:timeout: invalid duration 'soon'" in err
    assert f"{tasks}:no-instructions:agent.instructions: required but missing" in err
    assert f"{tasks}:missing-project:agent.project_dir: {tmp_path / 'nope'} does not exist" in err
    assert f"{tasks}:missing-project:colour: unknown key" in err
    assert "nothing was stored" in err
    assert stored_task_count() == 0
    assert "No tasks." in cli("list").stdout


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    tasks = write(tmp_path / "t.yaml", "name: x\nagent: {instructions: [unclosed\n")
    done = cli("run", str(tasks))
    assert done.returncode == 2
    assert f"{tasks}:-:-: invalid YAML: line" in done.stderr


def test_missing_task_file(tmp_path: Path) -> None:
    done = cli("run", str(tmp_path / "absent.yaml"))
    assert done.returncode == 2
    assert "cannot read file" in done.stderr


def test_dry_run_validates_and_stores_nothing(tmp_path: Path, make_repo: MakeRepo) -> None:
    project = make_repo()
    tasks = write(
        tmp_path / "tasks.yaml",
        f"""
tasks:
  - name: first
    timeout: 10m
    agent: {{instructions: "a", project_dir: {project}}}
  - name: second
    depends_on: [first]
    priority: high
    agent: {{instructions: "b"}}
""",
    )
    done = cli("run", "--dry-run", str(tasks))
    assert done.returncode == 0, done.stderr
    assert "first" in done.stdout
    assert "600s" in done.stdout
    assert "high" in done.stdout
    assert stored_task_count() == 0


def test_unknown_ids_exit_2() -> None:
    for command in (["show", "nope"], ["cancel", "nope"], ["logs", "nope"]):
        done = cli(*command)
        assert done.returncode == 2, command
        assert (
            "no task with id, id prefix or name 'nope'" in done.stderr
            or "no task or execution" in done.stderr
        )


def test_help_explains_commands() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for command in ("run", "list", "show", "logs", "cancel", "init", "serve"):
        assert command in done.stdout
    assert "--parallel" in cli("run", "--help").stdout


def test_init_writes_a_commented_config_once(tmp_path: Path) -> None:
    env = dict(os.environ, CLAUDOMATOR_CONFIG=str(tmp_path / "c" / "config.toml"))
    first = cli("init", env=env)
    assert first.returncode == 0, first.stderr
    text = (tmp_path / "c" / "config.toml").read_text()
    assert "# max_concurrent = 3" in text
    assert "[[projects]]" in text
    again = cli("init", env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert cli("init", "--force", env=env).returncode == 0
    assert cli("list", env=env).returncode == 0


def test_bad_config_is_reported(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", "max_concurrent = 'many'\n")
    done = cli("list", env=dict(os.environ, CLAUDOMATOR_CONFIG=str(config)))
    assert done.returncode == 2
    assert f"{config}: max_concurrent" in done.stderr


# -- running for real ------------------------------------------------------------------------


@pytest.mark.cli
def test_run_shows_progress_commits_and_exits_0(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, agent_env: dict[str, str]
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ToolUse("Write", {"file_path": "notes.md", "content": "# Notes\nwritten by agent\n"}),
            Text("## Summary\nWrote notes.md."),
        ]
    )
    tasks = write(
        tmp_path / "tasks.yaml",
        f"name: write-notes\ntimeout: 2m\nagent:\n  instructions: Write notes\n"
        f"  project_dir: {project}\n",
    )
    done = cli("run", str(tasks), env=agent_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "COMPLETED" in done.stdout
    assert "write-notes" in done.stdout
    assert "autocommit" not in done.stdout
    assert "Wrote notes.md." in done.stdout
    # piped: a line per change of state, then the final table exactly once
    assert any(line.endswith("write-notes: RUNNING") for line in done.stdout.splitlines())
    headers = [line for line in done.stdout.splitlines() if "NAME" in line and "STATE" in line]
    assert len(headers) == 1, done.stdout
    assert "1 file, +" in done.stdout
    [branch] = git(
        project, "branch", "--list", "claudomator/*", "--format=%(refname:short)"
    ).split()
    assert git(project, "show", f"{branch}:notes.md") == "# Notes\nwritten by agent"
    # the branch is claudomator/<short-id>-<slug>; run says where the work is, and how to look
    assert branch.endswith("-write-notes")
    assert len(branch) == len("claudomator/12345678-write-notes")
    look = f"git -C {project} log HEAD..{branch}"
    assert f"delivered: kept as branch {branch} in {project} — see: {look}" in done.stdout
    assert git(project, "log", "-1", "--format=%s", branch) == "write-notes"
    trailers = "%(trailers:key=Claudomator-Task,valueonly)"
    task_id = git(project, "log", "-1", f"--format={trailers}", branch).strip()
    assert task_id.startswith(branch.removeprefix("claudomator/")[:8])
    agent = git(
        project, "log", "-1", "--format=%(trailers:key=Claudomator-Agent,valueonly)", branch
    )
    assert agent.strip() == "claude"

    listing = cli("list", env=agent_env)
    assert "write-notes" in listing.stdout
    assert "COMPLETED" in listing.stdout
    shown = cli("show", "--json", task_id[:8], env=agent_env)
    payload = json.loads(shown.stdout)
    assert payload["task"]["state"] == "COMPLETED"
    [execution] = payload["executions"]
    assert execution["cost_usd"] > 0
    assert execution["changestats"]["files"] == 1
    assert execution["delivery"] == {
        "how": "branch",
        "project_dir": str(project),
        "remote": "",
        "url": "",
        "branch": branch,
        "rebased": False,
    }
    human = cli("show", task_id, env=agent_env)
    assert "Execution 1" in human.stdout
    flat = " ".join(human.stdout.split())  # rich wraps long lines
    assert f"Delivered kept as branch {branch} in {project} — see: {look}" in flat
    assert f"delivered kept as branch {branch}" in flat  # the execution's own line
    assert "RUNNING → COMPLETED" in human.stdout
    logs = cli("logs", task_id, env=agent_env)
    assert "→ Write: notes.md" in logs.stdout
    assert "[done $" in logs.stdout
    raw = cli("logs", "--raw", task_id, env=agent_env)
    assert json.loads(raw.stdout.splitlines()[-1])["type"] == "result"


@pytest.mark.cli
def test_run_exits_1_when_a_task_fails(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, agent_env: dict[str, str]
) -> None:
    project = make_repo()
    fake.set_script([ApiError(500)], repeat_last=True)
    tasks = write(
        tmp_path / "tasks.yaml",
        f"name: doomed\nagent: {{instructions: x, project_dir: {project}}}\n",
    )
    done = cli("run", str(tasks), env=agent_env)
    assert done.returncode == 1
    assert "FAILED" in done.stdout
    assert "API Error: 500" in done.stdout


def wait_for_state(task_name: str, state: str, env: dict[str, str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    row = conn.execute(
                        "select id, state from tasks where name = ?", (task_name,)
                    ).fetchone()
            except sqlite3.OperationalError:  # the writer is still creating the schema
                row = None
            if row and row[1] == state:
                return str(row[0])
        time.sleep(0.2)
    raise AssertionError(f"{task_name} never reached {state}")


@pytest.mark.cli
@pytest.mark.parametrize(
    ("how", "final"), [("cancel", "CANCELLED"), ("SIGINT", "CANCELLED"), ("SIGTERM", "QUEUED")]
)
def test_stopping_a_running_task_from_outside(
    how: str,
    final: str,
    tmp_path: Path,
    make_repo: MakeRepo,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script(hanging_script(marker))
    tasks = write(
        tmp_path / "tasks.yaml",
        f"""
tasks:
  - name: forever
    agent: {{instructions: x, project_dir: {project}}}
  - name: after
    depends_on: [forever]
    agent: {{instructions: y, project_dir: {project}}}
""",
    )
    run = subprocess.Popen(
        [CLAUDOMATOR, "run", str(tasks)],
        env=agent_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        task_id = wait_for_state("forever", "RUNNING", agent_env)
        child = marked_pid(marker)
        if how == "cancel":
            done = cli("cancel", task_id, env=agent_env)
            assert done.returncode == 0, done.stderr
            assert "Asked the orchestrator to stop" in done.stdout
        else:
            run.send_signal(getattr(signal, how))
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, out + err
    assert wait_for_state("forever", final, agent_env, timeout=1)
    # Ctrl-C cancels the waiting tasks too; a cancel or SIGTERM leaves them to run later
    waiting = "CANCELLED" if how == "SIGINT" else ("FAILED" if how == "cancel" else "QUEUED")
    assert wait_for_state("after", waiting, agent_env, timeout=5)
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:  # zombies count as dead
        time.sleep(0.1)
    assert not pid_alive(child)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_health_and_stops_on_sigterm() -> None:
    port = free_port()
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body: dict[str, object] | None = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    assert r.status == 200
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, "server did not answer /api/health within 30s"
        assert body["status"] == "ok"
        assert isinstance(body["tasks"], dict)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()
    assert server.returncode == 0


@pytest.mark.cli
def test_logs_follow_streams_until_the_execution_ends(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, agent_env: dict[str, str]
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ToolUse("Bash", {"command": "python3 -c 'import time; time.sleep(3)'"}),
            Text("## Summary\nslept"),
        ]
    )
    tasks = write(
        tmp_path / "tasks.yaml",
        f"name: slow\nagent: {{instructions: x, project_dir: {project}}}\n",
    )
    run = subprocess.Popen(
        [CLAUDOMATOR, "run", str(tasks)],
        env=agent_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        task_id = wait_for_state("slow", "RUNNING", agent_env)
        follow = cli("logs", "--follow", task_id, env=agent_env, timeout=60)
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert follow.returncode == 0, follow.stderr
    lines = follow.stdout.splitlines()
    assert any("→ Bash: python3 -c" in line for line in lines)
    assert lines[-1].startswith("[done $")


def test_list_nests_subtasks_and_shows_open_questions_then_answer_and_retry() -> None:
    store = Store.open(load_settings().db_path)
    try:
        parent = Task(name="parent-task", agent=AgentConfig(instructions="p"))
        child = Task(
            name="child-task", agent=AgentConfig(instructions="c"), parent_task_id=parent.id
        )
        failed = Task(name="broken-task", agent=AgentConfig(instructions="b"))
        store.add_tasks([parent, child, failed])
        store.transition(parent.id, TaskState.RUNNING, "claimed")
        question = json.dumps({"text": "Which database?", "options": ["sqlite", "postgres"]})
        store.transition(parent.id, TaskState.BLOCKED, "question", question=question)
        store.transition(failed.id, TaskState.RUNNING, "claimed")
        store.transition(failed.id, TaskState.FAILED, "boom")
    finally:
        store.close()

    listing = cli("list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    parent_line = next(i for i, line in enumerate(lines) if "parent-task" in line)
    assert "└ child-task" in lines[parent_line + 1]
    assert "Waiting for an answer" in listing.stdout
    assert "Which database?" in listing.stdout
    assert "- postgres" in listing.stdout

    blocked = cli("list", "--state", "BLOCKED").stdout
    assert "parent-task" in blocked
    assert "broken-task" not in blocked

    assert cli("answer", failed.id, "x").returncode == 1  # not BLOCKED
    assert cli("answer", parent.id, "  ").returncode == 2  # empty answer
    answered = cli("answer", parent.id[:6], "postgres")
    assert answered.returncode == 0, answered.stderr
    shown = json.loads(cli("show", "--json", parent.id).stdout)
    assert shown["task"]["state"] == "QUEUED"
    assert shown["interactions"] == []  # no interaction row: the question came from outside

    assert cli("retry", parent.id).returncode == 1  # QUEUED: nothing to retry
    retried = cli("retry", failed.id)
    assert retried.returncode == 0, retried.stderr
    assert "QUEUED" in cli("list", "--state", "QUEUED").stdout
    agents = cli("agents")
    assert agents.returncode == 0
    assert "claude" in agents.stdout
    assert "STATE" in agents.stdout  # whether it can run here (see test_cli_agents.py)


def test_unknown_agent_type_is_named_and_labels_print_verbatim(tmp_path: Path) -> None:
    # a task named "x" makes the label ":x:", which a terminal library could turn into an emoji
    tasks = write(tmp_path / "t.yaml", "name: x\nagent: {type: lokal, instructions: hi}\n")
    done = cli("run", str(tasks))
    assert done.returncode == 2
    assert f"{tasks}:x:agent.type: unknown agent type 'lokal'" in done.stderr


def test_list_filters_by_project_and_tag(tmp_path: Path) -> None:
    web, cli_dir = tmp_path / "web", tmp_path / "tool"
    web.mkdir()
    cli_dir.mkdir()
    store = Store.open(load_settings().db_path)
    try:
        store.add_tasks(
            [
                Task(
                    name="web-ui",
                    agent=AgentConfig(instructions="a", project_dir=str(web)),
                    tags=("ui",),
                ),
                Task(
                    name="tool-ui",
                    agent=AgentConfig(instructions="b", project_dir=str(cli_dir)),
                    tags=("ui", "urgent"),
                ),
            ]
        )
    finally:
        store.close()
    by_dir = cli("list", "--project", str(web)).stdout
    assert "web-ui" in by_dir
    assert "tool-ui" not in by_dir
    relative = subprocess.run(
        [CLAUDOMATOR, "list", "-p", "tool"], capture_output=True, text=True, cwd=tmp_path
    )
    assert "tool-ui" in relative.stdout
    assert "web-ui" not in relative.stdout
    both = cli("list", "-t", "ui", "-t", "urgent").stdout
    assert "tool-ui" in both
    assert "web-ui" not in both
    unknown = cli("list", "--project", "no-such-project")
    assert unknown.returncode != 0
    assert "no-such-project" in unknown.stderr + unknown.stdout


def test_drafts_and_markup_like_names_print_without_a_traceback() -> None:
    name = "[/]odd [bold]name"
    store = Store.open(load_settings().db_path)
    try:
        [draft] = store.add_tasks(
            [Task(name=name, agent=AgentConfig(instructions="d"))], submit=False
        )
        assert draft.state == TaskState.PENDING
    finally:
        store.close()
    listing = cli("list")
    assert listing.returncode == 0, listing.stderr
    assert "Traceback" not in listing.stderr
    assert "PENDING" in listing.stdout
    assert name in listing.stdout  # printed as written, not read as markup
    shown = cli("show", draft.id)
    assert shown.returncode == 0, shown.stderr
    assert name in shown.stdout
    assert "PENDING" in shown.stdout


def test_logs_render_a_gemini_run_readably(tmp_path: Path) -> None:
    log = load_settings().logs_dir / "gemini-run" / "stdout.log"  # where the log store reads
    log.parent.mkdir(parents=True)
    sample = Path(__file__).parent.parent / "samples" / "gemini" / "gemini_tool_failures.jsonl"
    log.write_bytes(sample.read_bytes())
    store = Store.open(load_settings().db_path)
    try:
        [task] = store.add_tasks([Task(name="gem", agent=AgentConfig(instructions="g"))])
        store.add_execution(
            Execution(
                task_id=task.id,
                agent="gemini",
                status=TaskState.COMPLETED,
                end_time=utcnow(),
                stdout_path=str(log),
                stderr_path=str(log.parent / "stderr.log"),
            )
        )
    finally:
        store.close()
    shown = cli("logs", task.id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "→ run_shell_command: ls /nonexistent_dir_xyz" in lines
    assert any("← ls: cannot access" in line for line in lines)
    assert "## Summary handled failures" in lines
    assert lines[-1].startswith("[done")


def test_logs_and_show_follow_no_symlink_the_agent_planted(tmp_path: Path) -> None:
    secret = tmp_path / "home" / "secret.txt"
    secret.write_text("TOP SECRET")
    folder = load_settings().logs_dir / "planted-run"
    folder.mkdir(parents=True)
    for name in ("stdout.log", "stderr.log", "checkout.json"):
        (folder / name).symlink_to(secret)
    store = Store.open(load_settings().db_path)
    try:
        [task] = store.add_tasks([Task(name="planted", agent=AgentConfig(instructions="p"))])
        store.add_execution(
            Execution(
                task_id=task.id,
                status=TaskState.COMPLETED,
                end_time=utcnow(),
                stdout_path=str(folder / "stdout.log"),
                stderr_path=str(folder / "stderr.log"),
            )
        )
    finally:
        store.close()
    for args in (["logs", task.id], ["logs", "--raw", task.id], ["logs", "--stderr", task.id]):
        shown = cli(*args)
        assert shown.returncode == 1, args
        assert "TOP SECRET" not in shown.stdout + shown.stderr, args
        assert "not served" in " ".join(shown.stderr.split()), (args, shown.stderr)
    shown = cli("show", task.id)
    assert shown.returncode == 0, shown.stderr
    assert "TOP SECRET" not in shown.stdout


def test_run_that_stops_at_a_question_says_how_to_answer(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeAnthropic, agent_env: dict[str, str]
) -> None:
    project = make_repo()
    question = json.dumps({"text": "Which colour?", "options": ["red", "blue"]})
    fake.set_script(
        [
            ToolUse("Bash", {"command": f"echo '{question}' > \"$CLAUDOMATOR_QUESTION_FILE\""}),
            Text("I need to know the colour."),
        ]
    )
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there: no orchestrator is running
    config = Path(agent_env["CLAUDOMATOR_CONFIG"])
    config.write_text(
        config.read_text(encoding="utf-8") + f'server_addr = "127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    tasks = write(
        tmp_path / "tasks.yaml",
        f"name: paint\nagent: {{instructions: x, project_dir: {project}}}\n",
    )
    done = cli("run", str(tasks), env=agent_env)
    assert done.returncode == 1, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "BLOCKED" in out
    assert "The agent asks: Which colour?" in out
    assert "- red" in out
    assert "answer with: claudomator answer" in out
    store = Store.open(load_settings().db_path)
    try:
        [task_id] = [t.id for t in store.list_tasks() if t.name == "paint"]
    finally:
        store.close()
    answered = cli("answer", task_id, "blue", env=agent_env)
    assert answered.returncode == 0, answered.stderr
    said = " ".join(answered.stdout.split())
    assert "no orchestrator is running: start `claudomator serve` to run it" in said


def test_help_reads_cleanly_at_80_columns() -> None:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    for command in ("run", "list", "logs", "answer", "show", "init", "serve", "cancel"):
        shown = cli(command, "--help", env=env)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert "<bool>" not in text, command
        assert "{" not in text, command  # no {ID} placeholders
        assert "rea\n" not in text, command  # a metavar cut mid-word


# -- issue 11 items 4, 11, 12, 13: validation, names, duplicates (fix/valid) ---------------------


def _stored_task(name: str, instructions: str, project_dir: str = "") -> Task:
    store = Store.open(load_settings().db_path)
    try:
        task = Task(
            name=name, agent=AgentConfig(instructions=instructions, project_dir=project_dir)
        )
        [stored] = store.add_tasks([task])
        return stored
    finally:
        store.close()


def test_dry_run_reports_what_run_refuses_all_at_once(tmp_path: Path) -> None:
    file = write(
        tmp_path / "t.yaml",
        "name: hello-file\ntimeout: forever\ndepends_on: [nope]\nagent: {instructions: hi}\n",
    )
    for args in (["run", "--dry-run", str(file)], ["run", str(file)]):
        done = cli(*args)
        assert done.returncode == 2, done
        assert f"{file}:hello-file:timeout:" in done.stderr
        assert f"{file}:hello-file:depends_on: unknown task id 'nope'" in done.stderr
        assert "2 problems" in done.stderr
    assert "already" not in cli("run", "--dry-run", str(file)).stdout


def test_dry_run_shows_only_ids_the_run_stores(tmp_path: Path) -> None:
    file = write(
        tmp_path / "t.yaml",
        "tasks:\n- {id: fixed-id-1, name: a, agent: {instructions: hi}}\n"
        "- {name: b, agent: {instructions: ho}}\n",
    )
    done = cli("run", "--dry-run", str(file))
    assert done.returncode == 0, done
    assert "fixed-id-1" in done.stdout
    assert "(new)" in done.stdout


def test_tasks_are_named_on_the_command_line() -> None:
    stored = _stored_task("hello-file", "say hi")
    shown = cli("show", "hello-file")
    assert shown.returncode == 0, shown
    assert stored.id in shown.stdout
    _stored_task("hello-file", "say ho")
    ambiguous = cli("show", "hello-file")
    assert ambiguous.returncode == 2
    assert "ambiguous" in ambiguous.stderr
    assert stored.id[:8] in ambiguous.stderr
    short = cli("show", "ab")
    assert short.returncode == 2
    assert "at least 4 characters" in short.stderr


def test_logs_of_a_task_without_execution_says_so() -> None:
    stored = _stored_task("t", "x")
    done = cli("logs", stored.id[:8])
    assert done.returncode == 2
    assert f"task {stored.id} has no execution yet" in done.stderr


def test_running_a_file_again_is_refused_without_again(tmp_path: Path) -> None:
    _stored_task("hello-file", "say hi")
    file = write(tmp_path / "t.yaml", "name: hello-file\nagent: {instructions: say hi}\n")
    done = cli("run", str(file))
    assert done.returncode == 2, done
    assert "hello-file" in done.stderr
    assert "--again" in done.stderr
    store = Store.open(load_settings().db_path)
    try:
        assert len(store.list_tasks()) == 1  # nothing stored
    finally:
        store.close()
    dry = cli("run", "--dry-run", str(file))
    assert dry.returncode == 0
    assert "--again" in dry.stderr


def test_serve_refuses_a_port_out_of_range() -> None:
    done = cli("serve", "--addr", "127.0.0.1:70000", timeout=30)
    assert done.returncode == 2, done
    assert "port from 0 to 65535" in done.stderr
    assert "Traceback" not in done.stderr
