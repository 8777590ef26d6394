"""Names Claudomator gives the work: the autocommit's message and a task's kept branch.

A task's branch is ``claudomator/<short-id>-<slug>``: the first 8 characters of the task id and
up to :data:`MAX_SLUG` characters of its name in lowercase ASCII (``[a-z0-9-]``), e.g.
``claudomator/1a2b3c4d-fix-login``. The name is user input: whatever it holds, the slug cannot
make an invalid ref (``..``, ``.lock``, ``@{``, spaces, control characters are all dropped).
Earlier versions named it ``claudomator/<task-id>`` (:func:`legacy_branch`); code that looks
for a task's branch looks for both (:func:`task_branches`).

The autocommit's subject is the task's name (first line, at most :data:`MAX_SUBJECT`
characters), its body the task's description, and it ends with the trailers
``Claudomator-Task: <task id>`` and ``Claudomator-Agent: <agent>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from claudomator.models import Execution

BRANCH_PREFIX = "claudomator/"
SHORT_ID = 8  # characters of the task id in its branch's name
LONGER_IDS = (12, 0)  # when the short name belongs to another task: 12 characters, then all
MAX_SLUG = 40
MAX_SUBJECT = 72
MAX_BODY = 2000
TASK_TRAILER = "Claudomator-Task"
AGENT_TRAILER = "Claudomator-Agent"
FALLBACK_SUBJECT = "Claudomator task"

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def slug(name: str) -> str:
    """``name`` as lowercase ASCII words joined by ``-`` (at most :data:`MAX_SLUG` characters,
    no leading or trailing ``-``; "" if nothing is left)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")
    return words[:MAX_SLUG].rstrip("-")


def _id_part(task_id: str, length: int) -> str:
    part = _NOT_SLUG.sub("-", task_id.lower()).strip("-")
    return part[:length].rstrip("-") if length else part


def task_branch(task_id: str, name: str, *, id_length: int = SHORT_ID) -> str:
    """The branch a task's work is kept on (``id_length`` 0: the whole id)."""
    ident = _id_part(task_id, id_length) or "task"
    words = slug(name)
    return f"{BRANCH_PREFIX}{ident}-{words}" if words else f"{BRANCH_PREFIX}{ident}"


def branch_candidates(task_id: str, name: str) -> list[str]:
    """The new-style names a task's branch may have, in the order they are tried."""
    names = [task_branch(task_id, name, id_length=n) for n in (SHORT_ID, *LONGER_IDS)]
    return list(dict.fromkeys(names))


def legacy_branch(task_id: str) -> str:
    """The branch name of versions that named it after the whole task id."""
    return f"{BRANCH_PREFIX}{task_id}"


def recorded_branch(executions: Iterable[Execution]) -> str:
    """The branch an earlier execution of the task kept its work on ("" if none did)."""
    kept = [e.delivery.branch for e in executions if e.delivery and e.delivery.how == "branch"]
    return kept[-1] if kept else ""


def task_branches(task_id: str, name: str, executions: Iterable[Execution] = ()) -> list[str]:
    """Every branch a task's work may be kept on: recorded, named now, and the old name."""
    recorded = [e.delivery.branch for e in executions if e.delivery and e.delivery.how == "branch"]
    names = [*reversed(recorded), *branch_candidates(task_id, name), legacy_branch(task_id)]
    return [n for n in dict.fromkeys(names) if n]


def _clean_line(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


def commit_message(name: str, task_id: str, agent: str, description: str = "") -> str:
    """The autocommit's message: subject from ``name``, body from ``description``, trailers."""
    first = name.strip().splitlines()[0] if name.strip() else ""
    subject = _clean_line(first) or FALLBACK_SUBJECT
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1].rstrip() + "…"
    lines = [_CONTROL.sub("", line).rstrip() for line in description.strip().splitlines()]
    body = "\n".join(lines).strip()[:MAX_BODY]
    who = _clean_line(agent) or "unknown"
    trailers = f"{TASK_TRAILER}: {_clean_line(task_id)}\n{AGENT_TRAILER}: {who}"
    parts = [subject, body, trailers] if body else [subject, trailers]
    return "\n\n".join(parts) + "\n"
