"""Turning a one-line request into a task spec a human reviews before it is stored.

:mod:`claudomator.elaborate.elaborator` asks the backends (the local model, then the agent CLIs'
one-shot calls); :mod:`claudomator.elaborate.spec` normalises and checks their answers.
"""

from __future__ import annotations

from claudomator.elaborate.elaborator import (
    DEFAULT_BUDGET,
    MIN_TURN,
    SYSTEM_PROMPT,
    Elaborated,
    ElaborationFailed,
    Elaborator,
    ElaboratorFactory,
    Tried,
    cli_prompt,
    elaborator_factory,
    local_first,
    request_text,
    resolve_project,
)
from claudomator.elaborate.spec import AGENT_FIELDS, SPEC_FIELDS, check_spec, normalise_spec

__all__ = [
    "AGENT_FIELDS",
    "DEFAULT_BUDGET",
    "MIN_TURN",
    "SPEC_FIELDS",
    "SYSTEM_PROMPT",
    "Elaborated",
    "ElaborationFailed",
    "Elaborator",
    "ElaboratorFactory",
    "Tried",
    "check_spec",
    "cli_prompt",
    "elaborator_factory",
    "local_first",
    "normalise_spec",
    "request_text",
    "resolve_project",
]
