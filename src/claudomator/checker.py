"""Acceptance checks: a task with ``acceptance_criteria`` gets a checker task once it completes.

The checker is an ordinary task (``checker_for_task_id`` names the task it checks) whose agent
inspects the delivered commits against the criteria, changes nothing, and ends with a JSON
verdict. The verdict and report are stored on the original task.
"""

from __future__ import annotations

import json
import re

from claudomator.models import AgentConfig, Execution, Task

VERDICTS = ("pass", "fail")


def checker_task(task: Task, execution: Execution, delivered_to: str) -> Task:
    """The task that checks ``task``'s delivered work against its acceptance criteria."""
    commits = "\n".join(f"- {c.hash} {c.message}" for c in execution.commits) or "- (none)"
    instructions = f"""You are checking work another agent delivered. Do not change any files.

Task: {task.name}
Its instructions:
{task.agent.instructions}

Acceptance criteria:
{task.acceptance_criteria}

The work was delivered as these commits ({delivered_to}):
{commits}
Inspect them with git (`git show <hash>`, `git log`, `git diff`); if a commit is missing from
your copy, fetch it from where it was delivered. Run the project's tests if that helps.

Finish with one line of JSON and nothing after it:
{{"verdict": "pass" or "fail", "report": "what you checked and what you found"}}
"""
    agent = AgentConfig(
        type=execution.agent,
        model=task.agent.model,
        instructions=instructions,
        project_dir=task.agent.project_dir,
        permission_mode=task.agent.permission_mode,
        skip_planning=True,
    )
    return Task(
        name=f"check: {task.name}",
        description=f"acceptance check of task {task.id}",
        agent=agent,
        timeout=task.timeout,
        priority=task.priority,
        tags=(*task.tags, "checker"),
        checker_for_task_id=task.id,
    )


def verdict_from(text: str) -> tuple[str, str]:
    """(verdict, report) from the checker's words; ("", reason) if it gave no verdict.

    The last JSON object with a valid verdict wins; reports may quote code with braces.
    """
    decoder = json.JSONDecoder()
    found: tuple[str, str] | None = None
    for match in re.finditer(r"\{", text):
        try:
            data, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            verdict = str(data.get("verdict", "")).strip().lower()
            if verdict in VERDICTS:
                found = (verdict, str(data.get("report", "")).strip())
    return found or ("", "the checker gave no verdict")
