"""Triage of GitHub CI failures: which conclusions count, the template, the local model's plan."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from claudomator.config import LocalModelSettings
from claudomator.llm import LLMClient
from claudomator.triage import (
    CHECK_RUN_FAILURES,
    WORKFLOW_RUN_FAILURES,
    CIFailure,
    Ignored,
    PayloadError,
    ci_failure,
    claude_md,
    enrich,
    fix_task,
    instructions_for,
    plan_prompt,
    recent_commits,
)
from conftest import MakeRepo, git
from fakes.openai_server import ApiError, FakeOpenAI, Reply

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = {"name": "webapp", "full_name": "octo-org/webapp"}


def check_run(conclusion: str | None, action: str = "completed", **run: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "test",
        "head_sha": SHA,
        "status": "completed" if conclusion else "in_progress",
        "conclusion": conclusion,
        "html_url": "https://github.com/octo-org/webapp/runs/1",
        "details_url": "https://ci.example/details/1",
        "check_suite": {"head_branch": "main"},
        "pull_requests": [],
    }
    body.update(run)
    return {"action": action, "check_run": body, "repository": dict(REPO)}


def workflow_run(conclusion: str | None, action: str = "completed", **run: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "CI",
        "head_sha": SHA,
        "head_branch": "release/2.0",
        "conclusion": conclusion,
        "html_url": "https://github.com/octo-org/webapp/actions/runs/7",
        "path": ".github/workflows/ci.yml",
        "pull_requests": [{"number": 5, "head": {"ref": "release/2.0"}}],
    }
    body.update(run)
    return {"action": action, "workflow_run": body, "repository": dict(REPO)}


# -- the failing-conclusion rules --------------------------------------------------------------


@pytest.mark.parametrize(
    ("conclusion", "fails"),
    [
        ("failure", True),
        ("timed_out", True),
        ("action_required", True),
        ("startup_failure", True),
        ("success", False),
        ("neutral", False),
        ("skipped", False),
        ("stale", False),
        ("cancelled", False),
        (None, False),
    ],
)
def test_check_run_conclusions(conclusion: str | None, fails: bool) -> None:
    found = ci_failure("check_run", check_run(conclusion))
    assert isinstance(found, CIFailure) == fails
    assert (conclusion in CHECK_RUN_FAILURES) == fails
    if not fails:
        assert isinstance(found, Ignored)
        assert str(conclusion) in found.reason


@pytest.mark.parametrize(
    ("conclusion", "fails"),
    [
        ("failure", True),
        ("timed_out", True),
        ("startup_failure", True),
        ("action_required", False),  # a fork's run waiting for approval
        ("cancelled", False),
        ("success", False),
        ("neutral", False),
        ("skipped", False),
        (None, False),
    ],
)
def test_workflow_run_conclusions(conclusion: str | None, fails: bool) -> None:
    found = ci_failure("workflow_run", workflow_run(conclusion))
    assert isinstance(found, CIFailure) == fails
    assert (conclusion in WORKFLOW_RUN_FAILURES) == fails


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("check_run", check_run("failure", action="created"), "'created'"),
        ("check_run", check_run("failure", action="rerequested"), "'rerequested'"),
        ("workflow_run", workflow_run("failure", action="requested"), "'requested'"),
        ("push", {"ref": "refs/heads/main"}, "'push' is not handled"),
        ("check_suite", {"action": "completed"}, "'check_suite' is not handled"),
    ],
)
def test_other_actions_and_events_are_ignored(
    event: str, payload: dict[str, Any], reason: str
) -> None:
    found = ci_failure(event, payload)
    assert isinstance(found, Ignored)
    assert reason in found.reason


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("check_run", {"action": "completed"}, "check_run"),
        ("check_run", {**check_run("failure"), "repository": {"name": "x"}}, "full_name"),
        ("check_run", check_run("failure", head_sha=""), "check_run.head_sha"),
        ("check_run", check_run("failure", name=7), "check_run.name"),
        ("workflow_run", workflow_run("failure", head_sha=None), "workflow_run.head_sha"),
        ("workflow_run", workflow_run("failure", name=None, path=""), "workflow_run.name"),
    ],
)
def test_malformed_payloads_name_the_field(event: str, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=f"malformed {event} payload") as raised:
        ci_failure(event, payload)
    assert field in str(raised.value)


def test_a_check_run_is_read_with_its_details() -> None:
    payload = check_run(
        "failure",
        pull_requests=[{"number": 42}, {"number": 43}],
        output={"title": "2 tests failed", "summary": "test_login failed\n" + "x" * 5000},
    )
    found = ci_failure("check_run", payload)
    assert isinstance(found, CIFailure)
    assert found.kind == "check_run"
    assert (found.repository, found.repository_name) == ("octo-org/webapp", "webapp")
    assert (found.branch, found.sha, found.check) == ("main", SHA, "test")
    assert found.url == "https://github.com/octo-org/webapp/runs/1"  # html_url first
    assert found.pull_requests == (42, 43)
    assert found.report.startswith("2 tests failed\ntest_login failed")
    assert len(found.report) < 2100
    assert found.dedupe_key == f"github:octo-org/webapp:{SHA}:test"


def test_a_check_run_without_html_url_uses_details_url_and_the_sha_without_branch() -> None:
    found = ci_failure(
        "check_run", check_run("timed_out", html_url=None, check_suite={"head_branch": None})
    )
    assert isinstance(found, CIFailure)
    assert found.url == "https://ci.example/details/1"
    assert found.branch == ""
    assert found.where == SHA[:12]


def test_a_workflow_run_falls_back_to_the_workflow_name() -> None:
    payload = workflow_run("failure", name=None)
    payload["workflow"] = {"name": "Nightly", "path": ".github/workflows/nightly.yml"}
    found = ci_failure("workflow_run", payload)
    assert isinstance(found, CIFailure)
    assert found.check == "Nightly"
    assert found.workflow_path == ".github/workflows/ci.yml"  # the run's own path first
    assert found.pull_requests == (5,)


# -- the template and the task ---------------------------------------------------------------


def failure(**changes: Any) -> CIFailure:
    found = ci_failure("workflow_run", workflow_run("failure"))
    assert isinstance(found, CIFailure)
    return CIFailure(**{**found.__dict__, **changes})


def test_the_template_names_everything_needed_to_fix_it() -> None:
    text = instructions_for(failure(report="1 failed"))
    for expected in (
        "Repository: octo-org/webapp",
        "Branch: release/2.0",
        f"Commit (SHA): {SHA}",
        "Workflow: CI",
        "Conclusion: failure",
        "Run: https://github.com/octo-org/webapp/actions/runs/7",
        "Workflow file: .github/workflows/ci.yml",
        "Pull request(s): #5",
        "1 failed",
        "Reproduce the failure locally",
        "Do not disable, skip or loosen",
        "commit",
        "## Summary",
    ):
        assert expected in text, expected


def test_the_template_says_what_github_did_not() -> None:
    text = instructions_for(
        failure(kind="check_run", branch="", url="", workflow_path="", pull_requests=())
    )
    assert "Check run: CI" in text
    assert "Branch: (not reported)" in text
    assert "Run: (no URL reported)" in text
    assert "Workflow file" not in text
    assert "Pull request" not in text
    assert "`.github/workflows/`" in text


def test_the_fix_task() -> None:
    found = failure()
    task = fix_task(found, "/srv/webapp", "do it")
    assert task.name == "fix CI: CI on release/2.0"
    assert task.tags == ("ci", "github")
    assert task.agent.type == ""
    assert task.agent.project_dir == "/srv/webapp"
    assert task.agent.instructions == "do it"
    assert "octo-org/webapp@0123456789ab" in task.description
    assert found.url in task.description
    assert fix_task(failure(branch=""), "/p", "i").name == f"fix CI: CI on {SHA[:12]}"


# -- the project context and the local model's plan ------------------------------------------


def test_recent_commits_and_claude_md(make_repo: MakeRepo) -> None:
    repo = make_repo("proj", {"CLAUDE.md": "é" * 3000})  # 6000 bytes of two-byte characters
    for n in range(6):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"change {n}")
    log = recent_commits(repo).splitlines()
    assert len(log) == 5
    assert log[0].endswith("change 5")
    assert log[-1].endswith("change 1")
    guide = claude_md(repo)
    assert guide == "é" * 2048  # 4 KB, cut on a character boundary
    assert claude_md(repo / "missing") == ""
    assert recent_commits(repo / "missing") == ""


def test_the_plan_prompt_says_what_is_missing() -> None:
    prompt = plan_prompt("fix it", "", "")
    assert "fix it" in prompt
    assert "(none available)" in prompt
    assert "(the project has no CLAUDE.md)" in prompt


async def test_enrich_appends_the_plan(make_repo: MakeRepo) -> None:
    repo = make_repo("proj", {"CLAUDE.md": "Use `make check`."})
    with FakeOpenAI([Reply("  1. make check\n2. fix  \n")]) as fake:
        async with LLMClient(LocalModelSettings(endpoint=fake.url, model="m")) as llm:
            text = await enrich("TEMPLATE", repo, llm, timeout=5)
        [request] = fake.chat_requests
    assert text == "TEMPLATE\n\n## Suggested plan\n\n1. make check\n2. fix\n"
    user = request.messages[-1]["content"]
    assert "TEMPLATE" in user
    assert "initial" in user  # the commit make_repo made
    assert "Use `make check`." in user


@pytest.mark.parametrize("script", [[ApiError(500, "boom")], [Reply("   ")]])
async def test_enrich_keeps_the_template_when_the_model_fails(
    make_repo: MakeRepo, script: list[Any]
) -> None:
    repo = make_repo("proj")
    with FakeOpenAI(copy.copy(script), repeat_last=True) as fake:
        async with LLMClient(
            LocalModelSettings(endpoint=fake.url, model="m"), max_retries=0, extra_attempts=0
        ) as llm:
            assert await enrich("TEMPLATE", repo, llm, timeout=5) == "TEMPLATE"


async def test_enrich_without_a_model_asks_nothing(tmp_path: Path) -> None:
    async with LLMClient(LocalModelSettings()) as llm:
        assert await enrich("TEMPLATE", tmp_path, llm) == "TEMPLATE"
