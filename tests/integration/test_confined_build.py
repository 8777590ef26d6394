# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""The build check runs what the agent wrote (its Makefile), so a confined agent's build check
is confined too (issue 13): the real Claude CLI, confined, writes a Makefile whose ``build``
rule tries to read a secret of the user's and write into the user's checkout; the build check
that runs it before the autocommit gets neither. Under ``plain`` (the control run) both work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    claude_settings,
    fake,
    make_task,
    user_home,
)

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
]

SECRET = "ssh-private-key-do-not-leak"


def _makefile(secret: Path, checkout: Path) -> str:
    """A ``build`` rule that reports what it could reach into ``report.txt`` (committed)."""
    return "".join(
        (
            "build:\n",
            f"\t-cat {secret} > report.txt 2>&1 || echo read-failed > report.txt\n",
            f"\t-touch {checkout}/pwned 2>/dev/null && echo wrote >> report.txt || true\n",
            "\t-env > build-env.txt\n",
        )
    )


@pytest.mark.parametrize("launcher", ["bubblewrap", "plain"])
async def test_the_build_check_of_a_confined_agent_is_confined_too(
    launcher: str,
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_SECRET", "never-in-a-build")  # the orchestrator's own
    # one the operator passes on ([isolation] pass_env): a private registry's, for the build
    monkeypatch.setenv("NPM_TOKEN", "registry-token")
    agent_env = {**agent_env, "NPM_TOKEN": "registry-token"}
    secret = tmp_path / "user" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_text(SECRET, encoding="utf-8")
    project = make_repo()
    makefile = _makefile(secret, project).replace("\t", "\\t").replace("\n", "\\n")
    fake.set_script(
        [
            ToolUse(
                "Bash",
                {"command": f"printf '{makefile}' > Makefile; env > agent-env.txt; echo x > w"},
            ),
            Text("Done.\n\n## Summary\nAdded a Makefile."),
        ]
    )
    settings = claude_settings.model_copy(
        update={"isolation": IsolationSettings(launcher=launcher, pass_env=("NPM_*",))}
    )
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, "Add a Makefile"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    report = git(project, "show", f"{branch}:report.txt")
    build_env = git(project, "show", f"{branch}:build-env.txt")
    if launcher == "plain":  # the control: unconfined, the build reaches both
        assert SECRET in report
        assert "wrote" in report
        assert (project / "pwned").exists()
        assert "ORCHESTRATOR_SECRET" in build_env
    else:
        assert SECRET not in report
        assert "read-failed" in report
        # (the namespace's own /tmp may take the write: the user's checkout never does)
        assert not (project / "pwned").exists()
        assert "ORCHESTRATOR_SECRET" not in build_env
        assert "ANTHROPIC_API_KEY" not in build_env  # nor the agent's own credentials
        assert "HOME=/home/agent" in build_env
    # the variables the operator passes on reach the agent and its build check either way
    assert "NPM_TOKEN=registry-token" in build_env
    assert "NPM_TOKEN=registry-token" in git(project, "show", f"{branch}:agent-env.txt")
