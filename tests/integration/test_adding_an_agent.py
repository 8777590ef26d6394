"""Adding an agent is one module plus one registration (docs/design.md, "Adding an agent"):
``scribe_agent.py`` is the module, ``registry.register(SCRIBE)`` the registration; a task file
naming it is accepted and the pool runs it, with its process started through the launcher."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import scribe_agent
from scribe_agent import SCRIBE, ScribeRunner

from claudomator.agents.registry import default_registry
from claudomator.config import AgentSettings, Settings
from claudomator.dispatch import Pool
from claudomator.models import TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store.memory import MemoryStore
from conftest import REPO_ROOT, MakeRepo, git, kept_branch

# the made-up CLI: writes NOTES.md from the last line of its prompt, then says what it did
SCRIBE_CLI = """#!{python}
import sys
prompt = sys.argv[sys.argv.index("--prompt") + 1]
with open("NOTES.md", "w", encoding="utf-8") as fh:
    fh.write(prompt.strip().splitlines()[-1] + "\\n")
print("Wrote NOTES.md.")
print("## Summary")
print("Wrote the notes to NOTES.md.")
"""


async def test_a_registered_agent_runs_a_task_through_the_pool(
    settings: Settings, make_repo: MakeRepo, tmp_path: Path
) -> None:
    cli = tmp_path / "bin" / "scribe"
    cli.parent.mkdir()
    cli.write_text(SCRIBE_CLI.format(python=sys.executable), encoding="utf-8")
    cli.chmod(0o755)
    cfg = settings.model_copy(
        update={"agents": {"scribe": AgentSettings(binary_path=str(cli))}, "kill_grace_seconds": 2}
    )
    registry = default_registry()
    registry.register(SCRIBE)  # the one registration

    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    store = MemoryStore()
    service = Service(cfg, store, agents=registry)
    document = {
        "name": "notes",
        "agent": {"type": "scribe", "instructions": "Note the plan.", "project_dir": str(project)},
    }
    tasks = service.prepare(document, source="tasks.yaml", base_dir=project).tasks
    runners = registry.runners(cfg)
    assert isinstance(runners["scribe"], ScribeRunner)
    pool = Pool(
        cfg,
        store,
        runners,
        **pool_parts(cfg, store),
        base_env={"PATH": "/usr/bin:/bin"},
        poll_interval=0.1,
    )
    service.on_submit = pool.wake
    await pool.start()
    try:
        [task] = service.submit(tasks)
        deadline = time.monotonic() + 60
        while store.get_task(task.id).state not in (TaskState.COMPLETED, TaskState.FAILED):
            assert time.monotonic() < deadline, store.get_task(task.id).state
            await asyncio.sleep(0.1)
    finally:
        await pool.shutdown()

    done = store.get_task(task.id)
    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert run.agent == "scribe"
    assert done.summary == "Wrote the notes to NOTES.md."
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:NOTES.md") == "Note the plan."
    assert git(project, "rev-parse", "HEAD") == user_head


def test_the_documented_example_is_this_module() -> None:
    """docs/design.md shows the module and the registration exactly as they are here."""
    section = (REPO_ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = section[section.index("## 6. Adding an agent") :]
    blocks = [b.split("\n", 1)[1] for b in section.split("```python")[1:3]]
    module, registration = (textwrap.dedent(b[: b.index("```")]).strip() for b in blocks)
    source = Path(scribe_agent.__file__).read_text(encoding="utf-8")
    assert module == source[source.index("class ScribeRunner") :].strip()
    assert registration == "registry = default_registry()\nregistry.register(SCRIBE)"
