"""Normalising a model's answer into a task-file document, and checking it (see
:mod:`claudomator.elaborate`).

An answer is normalised before it is validated (:func:`normalise_spec`): unknown keys are dropped
with a note, agent fields written at the top level are moved under ``agent``, ``agent.type``
becomes a known agent's name or empty, and a ``project_dir`` the model invented is replaced by the
request's project. :func:`check_spec` checks the result with
:func:`~claudomator.taskfile.parse_tasks`; nothing is stored here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claudomator.agents.registry import default_registry
from claudomator.durations import parse_duration
from claudomator.errors import TaskFileError
from claudomator.taskfile import parse_tasks

logger = logging.getLogger(__name__)

TASK_FIELDS = ("name", "description", "agent", "timeout", "priority", "tags")
SPEC_FIELDS = (*TASK_FIELDS, "acceptance_criteria")
AGENT_FIELDS = ("type", "model", "instructions", "max_budget_usd", "allowed_tools")
_PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "medium": "normal"}
_PRIORITIES |= {"urgent": "high", "critical": "high", "minor": "low"}
_UNIT_WORDS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(hours?|hrs?|minutes?|mins?|seconds?|secs?)\b", re.IGNORECASE
)


def _text(value: object, *, bullets: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        lines = [str(item).strip() for item in value if str(item).strip()]
        return "\n".join(f"- {line}" if bullets else line for line in lines)
    return str(value).strip()


def _names(value: object) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return []
    found = (item.strip() for item in items if isinstance(item, str))
    return list(dict.fromkeys(name for name in found if name))


def _name(value: object, prompt: str, notes: list[str]) -> str:
    lines = _text(value).splitlines()
    if lines and lines[0].strip():
        return lines[0].strip()[:80]
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:6]
    notes.append("the answer had no name; named it from the prompt")
    return "-".join(words) or "task"


def _agent_type(value: object, notes: list[str]) -> str:
    text = str(value or "").strip().lower()
    known = default_registry().names()
    if text in known or text in ("", "auto", "any", "none", "null"):
        return text if text in known else ""
    for name in known:
        if name in text:
            notes.append(f"agent.type {value!r} read as {name!r}")
            return name
    notes.append(f"agent.type {value!r} is no agent; left empty (Claudomator chooses)")
    return ""


def _budget(value: object, notes: list[str]) -> float | None:
    if value is None or value == "":
        return None
    amount = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            amount = float(value.strip().lstrip("$"))
    if not (math.isfinite(amount) and amount > 0):
        notes.append(f"dropped agent.max_budget_usd {value!r}: not a positive amount")
        return None
    return amount


def _timeout(value: object, notes: list[str]) -> str | float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = "".join(
            _UNIT_WORDS.sub(lambda m: m.group(1) + m.group(2)[0].lower(), value).split()
        )
    try:
        parse_duration(value)
    except ValueError:
        notes.append(f"dropped timeout {value!r}: not a duration (the default applies)")
        return None
    if isinstance(value, str):
        return value
    seconds = float(value) if isinstance(value, int | float) else math.nan
    return int(seconds) if seconds.is_integer() else seconds


def _priority(value: object, notes: list[str]) -> str:
    if value is None or value == "":
        return "normal"
    found = _PRIORITIES.get(str(value).strip().lower())
    if found is None:
        notes.append(f"priority {value!r} is not low, normal or high; used normal")
        return "normal"
    return found


def _unwrap(raw: object, notes: list[str]) -> dict[str, Any]:
    """The task mapping of an answer; ``{"task": {...}}`` and ``{"tasks": [{...}]}`` are fine."""
    data = raw
    if isinstance(data, Mapping) and len(data) == 1:
        key, inner = next(iter(data.items()))
        if key in ("task", "spec") and isinstance(inner, Mapping):
            data = inner
        elif key == "tasks" and isinstance(inner, list) and inner:
            if len(inner) > 1:
                notes.append(f"the answer had {len(inner)} tasks; kept the first")
            data = inner[0]
    if not isinstance(data, Mapping):
        raise ValueError(f"the answer is no task mapping: {str(raw)[:200]!r}")
    return {str(key): value for key, value in data.items()}


def normalise_spec(
    raw: object, *, project_dir: str = "", prompt: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """A task-file document from a model's answer, and notes on what was changed.

    Raises ``ValueError`` when the answer is no task mapping or has no instructions.
    """
    notes: list[str] = []
    data = _unwrap(raw, notes)
    given = data.get("agent")
    agent_in = {str(k): v for k, v in given.items()} if isinstance(given, Mapping) else {}
    if given is not None and not isinstance(given, Mapping):
        notes.append("dropped agent: not a mapping")
    for key in AGENT_FIELDS:
        if key in data and key not in agent_in:
            agent_in[key] = data[key]
            notes.append(f"moved {key} into agent")
        elif key in data:
            notes.append(f"dropped {key!r}: agent.{key} is set")
    notes.extend(
        f"dropped unknown key {key!r}"
        for key in data
        if key not in SPEC_FIELDS and key not in AGENT_FIELDS
    )
    for key in agent_in:
        if key == "project_dir":
            notes.append("dropped agent.project_dir: the project comes from the request")
        elif key not in AGENT_FIELDS:
            notes.append(f"dropped unknown key 'agent.{key}'")
    instructions = _text(agent_in.get("instructions"))
    if not instructions:
        raise ValueError("the answer has no agent.instructions")
    model = agent_in.get("model")
    agent = {
        "type": _agent_type(agent_in.get("type"), notes),
        "model": model.strip() if isinstance(model, str) else "",
        "instructions": instructions,
        "project_dir": project_dir,
        "max_budget_usd": _budget(agent_in.get("max_budget_usd"), notes),
        "allowed_tools": _names(agent_in.get("allowed_tools")),
    }
    spec = {
        "name": _name(data.get("name"), prompt, notes),
        "description": _text(data.get("description")),
        "agent": agent,
        "timeout": _timeout(data.get("timeout"), notes),
        "priority": _priority(data.get("priority"), notes),
        "tags": _names(data.get("tags")),
        "acceptance_criteria": _text(data.get("acceptance_criteria"), bullets=True),
    }
    return spec, notes


def check_spec(spec: Mapping[str, Any], source: str, base_dir: Path) -> None:
    """Raise ``ValueError`` naming every problem unless ``spec`` is a valid task document."""
    try:
        parse_tasks(dict(spec), source=source, base_dir=base_dir)
    except TaskFileError as exc:
        problems = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
        raise ValueError(f"not a valid task spec: {problems}") from exc
