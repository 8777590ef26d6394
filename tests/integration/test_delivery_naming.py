"""What Claudomator names the work (the autocommit, the kept branch) and where it says it went."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import pytest

from claudomator import naming, process, reconcile
from claudomator.config import Settings
from claudomator.delivered import where
from claudomator.models import (
    AgentConfig,
    Delivery,
    DeliveryRecord,
    Execution,
    Task,
    TaskState,
)
from claudomator.sandbox import FALLBACK_EMAIL, FALLBACK_NAME, Sandbox, Sandboxes
from claudomator.store import Store
from claudomator.store.intents import DeliveryIntent
from claudomator.webpush import message

TASK_ID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
OTHER_ID = "1a2b3c4d-ffff-4a7b-8c9d-0e1f2a3b4c5d"  # the same first 8 characters

HOSTILE_NAMES = [
    "../../etc/passwd",
    "refs/heads/main.lock",
    "x.lock",
    "what @{-1} is",
    "Fix the  login\tpage ",
    "Ünïcödé façade — ﬁx",
    "日本語だけ",
    "-leading and trailing-",
    "a" * 300,
    "back\\slash ~tilde ^caret :colon ?q *star [br",
    "new\nline\x00nul\x1b[31mred",
    "",
    "...",
    "/",
]


def git(cwd: Path, *args: str) -> str:
    result = process.run(["git", *args], cwd=cwd)
    assert result.ok, f"git {' '.join(args)}: {result.tail()}"
    return result.stdout.strip()


def valid_ref(repo: Path, branch: str) -> bool:
    return process.run(["git", "check-ref-format", f"refs/heads/{branch}"], cwd=repo).ok


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "my project"  # a space: commands shown must quote it
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q", "-m", "init")
    return repo


@pytest.fixture
def sandboxes(tmp_path: Path) -> Sandboxes:
    return Sandboxes(tmp_path / "data" / "sandboxes", warm_per_project=0)


def work(sandboxes: Sandboxes, project: Path, execution: str, text: str) -> Sandbox:
    box = sandboxes.create(project, execution)
    (box.dir / "work.txt").write_text(text)
    return box


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_name_makes_a_valid_branch(name: str, project: Path) -> None:
    branch = naming.task_branch(TASK_ID, name)
    assert valid_ref(project, branch), branch
    assert branch.startswith("claudomator/1a2b3c4d")
    slug = branch.removeprefix("claudomator/1a2b3c4d").removeprefix("-")
    assert len(slug) <= naming.MAX_SLUG
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in slug)
    assert not slug.startswith("-")
    assert not slug.endswith("-")


def test_branch_names() -> None:
    assert (
        naming.task_branch(TASK_ID, "Fix the login page!")
        == "claudomator/1a2b3c4d-fix-the-login-page"
    )
    assert naming.task_branch(TASK_ID, "Ünïcödé façade") == "claudomator/1a2b3c4d-unicode-facade"
    assert naming.task_branch(TASK_ID, "日本語") == "claudomator/1a2b3c4d"  # empty slug
    assert naming.task_branch(TASK_ID, "../x.lock") == "claudomator/1a2b3c4d-x-lock"
    assert naming.legacy_branch(TASK_ID) == f"claudomator/{TASK_ID}"
    assert naming.branch_candidates(TASK_ID, "go") == [
        "claudomator/1a2b3c4d-go",
        "claudomator/1a2b3c4d-5e6-go",
        f"claudomator/{TASK_ID}-go",
    ]


def test_commit_message_subject_body_and_trailers(project: Path) -> None:
    long_name = "Make the login page remember the user " * 4 + "\nsecond line"
    text = naming.commit_message(long_name, TASK_ID, "claude", "Why:\x1b[31m it forgets.\n")
    subject, _, rest = text.partition("\n")
    assert len(subject) <= naming.MAX_SUBJECT
    assert subject.startswith("Make the login page")
    assert "second line" not in text
    assert "\x1b" not in text
    parsed = process.run(["git", "interpret-trailers", "--parse"], cwd=project, input_text=text)
    assert parsed.stdout == f"Claudomator-Task: {TASK_ID}\nClaudomator-Agent: claude\n"
    assert "Why:[31m it forgets." in rest
    assert naming.commit_message("  \n", TASK_ID, "").startswith(naming.FALLBACK_SUBJECT + "\n")


# -- the autocommit, in real repositories --------------------------------------------------------


def test_the_autocommit_is_named_after_the_task(
    sandboxes: Sandboxes, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "git-home"  # no identity configured: the fallback
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    box = work(sandboxes, project, "e1", "work\n")
    hostile = "# not a comment; `rm -rf ~` $(touch pwned) 'quote\"\n-F /etc/passwd"
    text = naming.commit_message(hostile, TASK_ID, "gemini", "")
    [commit] = sandboxes.collect(box, message=text).commits
    assert commit.message == "# not a comment; `rm -rf ~` $(touch pwned) 'quote\""
    log = ["log", "-1", "--format=%an <%ae>%n%(trailers:key=Claudomator-Task,valueonly)"]
    who, task = git(box.dir, *log).splitlines()
    assert who == f"{FALLBACK_NAME} <{FALLBACK_EMAIL}>" == "Claudomator <claudomator@localhost>"
    assert task == TASK_ID
    assert not (box.dir / "pwned").exists()


def test_the_users_identity_is_kept(
    sandboxes: Sandboxes, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "git-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Ada\n\temail = ada@example.com\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    box = work(sandboxes, project, "e1", "work\n")
    sandboxes.collect(box, message=naming.commit_message("t", TASK_ID, "claude"))
    assert git(box.dir, "log", "-1", "--format=%an <%ae>") == "Ada <ada@example.com>"


# -- kept branches ------------------------------------------------------------------------------


def deliver(sandboxes: Sandboxes, box: Sandbox, task_id: str, name: str, recorded: str = "") -> str:
    sandboxes.collect(box, message=naming.commit_message(name, task_id, "claude"))
    done = sandboxes.deliver(
        box, task_id=task_id, delivery=Delivery.BRANCH, task_name=name, branch=recorded
    )
    return done.branch


def test_the_branch_is_named_after_the_task_and_reused_after_a_rename(
    sandboxes: Sandboxes, project: Path
) -> None:
    first = deliver(sandboxes, work(sandboxes, project, "e1", "v1\n"), TASK_ID, "Fix login")
    assert first == "claudomator/1a2b3c4d-fix-login"
    assert git(project, "show", f"{first}:work.txt") == "v1"
    # a review re-run after the task was renamed: the recorded branch is used again
    second = work(sandboxes, project, "e2", "v2\n")
    assert deliver(sandboxes, second, TASK_ID, "Renamed entirely", recorded=first) == first
    assert git(project, "show", f"{first}:work.txt") == "v2"
    assert "renamed" not in git(project, "branch", "--list")


def test_an_old_style_branch_keeps_being_used(sandboxes: Sandboxes, project: Path) -> None:
    legacy = f"claudomator/{TASK_ID}"
    git(project, "branch", legacy)  # delivered by an earlier version
    box = work(sandboxes, project, "e1", "v2\n")
    assert deliver(sandboxes, box, TASK_ID, "Fix login") == legacy
    assert git(project, "show", f"{legacy}:work.txt") == "v2"
    assert git(project, "branch", "--list", "claudomator/*", "--format=%(refname:short)") == legacy


def test_another_tasks_branch_is_never_overwritten(sandboxes: Sandboxes, project: Path) -> None:
    theirs = deliver(sandboxes, work(sandboxes, project, "e1", "theirs\n"), OTHER_ID, "Fix login")
    assert theirs == "claudomator/1a2b3c4d-fix-login"
    tip = git(project, "rev-parse", theirs)
    ours = deliver(sandboxes, work(sandboxes, project, "e2", "ours\n"), TASK_ID, "Fix login")
    assert ours == "claudomator/1a2b3c4d-5e6-fix-login"  # a longer id
    assert git(project, "rev-parse", theirs) == tip
    assert git(project, "show", f"{ours}:work.txt") == "ours"
    # a user's own branch of that name, with work of theirs, is not ours either
    git(project, "checkout", "-q", "-b", "claudomator/1a2b3c4d-other")
    (project / "user.txt").write_text("user\n")
    git(project, "add", "user.txt")
    git(project, "-c", "user.name=U", "-c", "user.email=u@e", "commit", "-q", "-m", "user")
    users = git(project, "rev-parse", "HEAD")
    git(project, "checkout", "-q", "main")
    mine = deliver(sandboxes, work(sandboxes, project, "e3", "x\n"), TASK_ID, "Other")
    assert mine == "claudomator/1a2b3c4d-5e6-other"
    assert git(project, "rev-parse", "claudomator/1a2b3c4d-other") == users
    # an ancestor of the work (nothing of it would be lost) is taken: a fast-forward
    git(project, "branch", "claudomator/1a2b3c4d-third")
    third = deliver(sandboxes, work(sandboxes, project, "e4", "y\n"), TASK_ID, "Third")
    assert third == "claudomator/1a2b3c4d-third"


# -- where the work went, in words ----------------------------------------------------------------


def test_where_the_work_went_with_the_command_to_look() -> None:
    kept = DeliveryRecord(how="branch", project_dir="/srv/my web", branch="claudomator/1a2b-fix")
    assert where(kept).line == (
        "kept as branch claudomator/1a2b-fix in /srv/my web — see: "
        "git -C '/srv/my web' log HEAD..claudomator/1a2b-fix"
    )
    assert shlex.split(where(kept).command)[:3] == ["git", "-C", "/srv/my web"]
    pushed = DeliveryRecord(
        how="pushed", project_dir="/srv/web", remote="origin", url="/srv/web.git", branch="main"
    )
    assert where(pushed).line == (
        "pushed to origin/main (/srv/web.git) — see: git -C /srv/web.git log main"
    )
    ssh = pushed.model_copy(update={"url": "git@host:web.git", "rebased": True})
    assert where(ssh).text.endswith("(rebased onto new upstream work)")
    assert where(ssh).command == "git -C /srv/web fetch origin && git -C /srv/web log origin/main"
    assert where(DeliveryRecord(how="nothing")).line == "no new commits; nothing delivered"
    hostile = kept.model_copy(update={"project_dir": "/tmp/$(touch x); rm -rf ~"})
    assert shlex.split(where(hostile).command)[2] == "/tmp/$(touch x); rm -rf ~"


def test_a_push_notification_says_where_the_work_is() -> None:
    agent = AgentConfig(instructions="x")
    task = Task(name="Fix login", agent=agent, state=TaskState.READY, summary="done " * 300)
    line = where(DeliveryRecord(how="branch", project_dir="/p", branch="claudomator/x")).line
    body = message("task.ready", task, line)["body"]
    assert body.endswith(f"\nDelivered: {line}")
    assert len(body) <= 600


# -- recovery after a kill -9 records the delivery -----------------------------------------------


def test_recovery_finds_the_named_branch_and_records_the_delivery(
    tmp_path: Path, project: Path, sandboxes: Sandboxes, settings: Settings
) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        agent = AgentConfig(type="claude", instructions="x", project_dir=str(project))
        [task] = store.add_tasks([Task(name="Fix login", agent=agent)])
        dead = f"{socket.gethostname()}:1:deadboot-0"  # an orchestrator of an earlier boot
        execution = Execution(task_id=task.id, agent="claude", worker_id=dead)
        store.transition(
            task.id, TaskState.RUNNING, "claimed", expected=TaskState.QUEUED, execution=execution
        )
        box = work(sandboxes, project, execution.id, "recovered\n")
        store.record_delivery_intent(
            DeliveryIntent(
                execution_id=execution.id,
                task_id=task.id,
                project_dir=str(project),
                sandbox_dir=str(box.dir),
                branch=box.branch,
                base_commit=box.base_commit,
            )
        )
        # the branch was written, then the orchestrator died before recording anything
        branch = deliver(sandboxes, box, task.id, task.name)
        assert branch == naming.task_branch(task.id, "Fix login")
        store.update_task(task.id, name="Renamed since")  # found all the same

        assert reconcile.recover(settings, store) == 1
        assert store.get_task(task.id).state == TaskState.COMPLETED
        done = store.get_execution(execution.id)
        assert done.delivery == DeliveryRecord(
            how="branch", project_dir=str(project), branch=branch
        )
        assert [c.message for c in done.commits] == ["Fix login"]
    finally:
        store.close()
