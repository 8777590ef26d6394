"""The agent protocol of docs/design.md §3: the preamble, the environment, the question file.

Agents learn from the preamble how to ask a human (write the question file and exit), how to
report (the summary file) and how to split work (subtasks through the API). This module builds
the preamble and the environment, and reads back what the agent left.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.models import Interaction, Task

logger = logging.getLogger(__name__)

PREAMBLE_HEADING = "## Runtime Environment"

_PREAMBLE = """{heading}

You are running unattended under Claudomator, in a sandbox: a private git copy of the project
(your working directory). Work only there: the user's own checkout, the rest of their files and
other processes are not yours to change. When you finish successfully, your commits (and
anything left uncommitted, after a build check) are delivered to the project.

- If you cannot go on without a human decision, ask: write JSON
  `{{"text": "your question", "options": ["choice A", "choice B"]}}` (options optional) to the
  file named by $CLAUDOMATOR_QUESTION_FILE, then exit. You will be resumed in this same session,
  in this same sandbox, with the answer.
- Before you exit, write a short plain-text summary of what you did to the file named by
  $CLAUDOMATOR_SUMMARY_FILE (or end your final message with a "## Summary" section).
- To split the work (when the Claudomator service is running), create subtasks: POST JSON
  {{"name": "...", "agent": {{"instructions": "...", "project_dir": "$CLAUDOMATOR_PROJECT_DIR"}}}}
  to $CLAUDOMATOR_API_URL/api/tasks with the header
  "Authorization: Bearer $CLAUDOMATOR_API_TOKEN"; they become subtasks of this task
  (parent_task_id $CLAUDOMATOR_TASK_ID) in this same project. The token is valid only while
  this run lasts.
- Your task id is $CLAUDOMATOR_TASK_ID; the user's project is $CLAUDOMATOR_PROJECT_DIR (do not
  modify it: work in your sandbox).

## Task

"""


def with_preamble(instructions: str) -> str:
    """The instructions prefixed with the runtime preamble."""
    return _PREAMBLE.format(heading=PREAMBLE_HEADING) + instructions


def prompt_for(task: Task) -> str:
    """What the agent is told on a first run."""
    agent = task.agent
    return agent.instructions if agent.skip_planning else with_preamble(agent.instructions)


def resume_prompt(question: str, answer: str) -> str:
    """What a resumed agent is told: the question it asked and the human's answer."""
    return (
        f"A human answered your question.\n\nYour question: {question}\n\nAnswer: {answer}\n\n"
        "Continue the task from where you left off."
    )


REVIEW_QUESTION = "(review of the delivered branch)"


def feedback_prompt(feedback: str) -> str:
    """What a resumed agent is told when a reviewer rejected its work."""
    return (
        "A reviewer looked at the work you delivered and asks for changes:\n\n"
        f"{feedback}\n\nMake these changes in this sandbox, then finish as before."
    )


def history_prompt(task: Task, history: Sequence[Interaction]) -> str:
    """A fresh session's prompt carrying earlier questions and answers (resume impossible)."""
    lines = [prompt_for(task), "", "## Earlier questions and answers", ""]
    for item in history:
        lines += [f"Q: {item.question}", f"A: {item.answer or '(no answer)'}", ""]
    lines.append("Your earlier session could not be resumed; continue the task with these answers.")
    return "\n".join(lines)


def agent_env(
    base: Mapping[str, str],
    *,
    api_url: str,
    task_id: str,
    project_dir: Path,
    log_dir: Path,
    api_token: str = "",
) -> dict[str, str]:
    """The agent's environment: the inherited one plus the protocol variables."""
    env = dict(base)
    env.update(
        {
            "CLAUDOMATOR_API_URL": api_url,
            "CLAUDOMATOR_API_TOKEN": api_token,
            "CLAUDOMATOR_TASK_ID": task_id,
            "CLAUDOMATOR_PROJECT_DIR": str(project_dir),
            "CLAUDOMATOR_QUESTION_FILE": str(question_file(log_dir)),
            "CLAUDOMATOR_SUMMARY_FILE": str(summary_file(log_dir)),
        }
    )
    return env


MAX_AGENT_FILE = 64 * 1024


def read_agent_file(path: Path, limit: int = MAX_AGENT_FILE) -> str | None:
    """Text an agent left in ``path``: a regular file only (no symlink, FIFO or device), at
    most ``limit`` bytes; None if there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            logger.warning("ignoring %s: not a regular file", path, extra={"action": "agent_file"})
            return None
        data = os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")


def question_file(log_dir: Path) -> Path:
    return log_dir / "question.json"


def summary_file(log_dir: Path) -> Path:
    return log_dir / "summary.txt"


def diff_file(log_dir: Path) -> Path:
    """Where the unified diff of an execution's delivered work is kept (written by us)."""
    return log_dir / "changes.diff"


@dataclass(frozen=True)
class Question:
    """What the agent asked."""

    text: str
    options: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"text": self.text, "options": list(self.options)})


_REPORT_WORDS = re.compile(
    r"\b(summary|completed|done|finished|implemented|created|added|fixed)\b", re.IGNORECASE
)


def looks_like_report(question: Question) -> bool:
    """A "question" that is really a completion report (no question mark, no options)."""
    text = question.text.strip()
    return not question.options and "?" not in text and bool(_REPORT_WORDS.search(text))


def read_question(log_dir: Path) -> Question | None:
    """The question the agent wrote, if any. Plain text is accepted as the question itself."""
    path = question_file(log_dir)
    raw = (read_agent_file(path) or "").strip()
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return Question(raw)
    if isinstance(data, dict):
        text = data.get("text") or data.get("question") or ""
        options = data.get("options") or []
        if isinstance(text, str) and text.strip():
            opts = tuple(str(o) for o in options) if isinstance(options, list) else ()
            return Question(text.strip(), opts)
    if isinstance(data, str) and data.strip():
        return Question(data.strip())
    logger.warning("unusable question file %s", path, extra={"action": "question"})
    return Question(raw)


def parse_question(stored: str) -> Question:
    """A question as stored on a task (JSON text, see :meth:`Question.to_json`)."""
    try:
        data = json.loads(stored)
    except json.JSONDecodeError:
        return Question(stored)
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        options = data.get("options") or []
        return Question(data["text"], tuple(str(o) for o in options))
    return Question(stored)
