"""Whether each agent can run here, and why a queued task waits: decided once, for every view.

:func:`probe` looks at the machine (the CLI binary on ``PATH`` or at its configured path, the
credentials the CLI reads, the ``[local_model]`` settings); :func:`assess` adds the rate-limit
and quota state kept in the store. The pool claims with the result, and ``serve``, ``agents``,
``list``, the API and the board show the same values. :func:`waiting_reason` says, in a few
words, why a QUEUED task cannot be taken by any usable agent (``agents`` says the rest).

Credentials are reported, not enforced: a CLI may find a login this module cannot see (a macOS
keychain, a wrapper script). An agent whose credentials were not found still runs, and its own
error message ends the task; an unpinned task prefers an agent whose credentials were found.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from claudomator.agents import claude, gemini
from claudomator.agents.registry import AgentRegistry, AgentSpec, default_registry
from claudomator.config import Settings
from claudomator.models import AgentStatus, Execution, Task, TaskState

logger = logging.getLogger(__name__)

# where each built-in CLI finds its credentials (re-exported: they live in the agent modules)
claude_credentials = claude.credentials
gemini_credentials = gemini.credentials


class Readiness(BaseModel):
    """One agent's readiness: ``usable`` unless one of ``reasons`` says why not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    usable: bool
    binary: str | None = None  # the CLI's resolved path (None: not found, or no CLI)
    credentials: bool | None = None  # found / not found / cannot tell (or none needed)
    credentials_from: str = ""  # where they were found: a variable's name or a file
    reasons: tuple[str, ...] = ()  # why it cannot run now (empty when usable)
    short: str = ""  # the same in a few words, for a task card or a list row
    warnings: tuple[str, ...] = ()  # what may still stop it (credentials not found)
    blocked_until: datetime | None = None  # rate-limited or out of quota until then
    status: AgentStatus  # the health the pool recorded (failures, limits, last error)
    # what every view (``agents``, the web page) shows, decided here once (see _described):
    state: str = ""  # "ready", "rate-limited", "out of quota" or "cannot run"
    details: tuple[str, ...] = ()  # CLI, credentials and warnings; or why it cannot run
    last_error: str = ""  # the first line of the recorded last error, at most 200 characters


def _described(ready: Readiness) -> Readiness:
    """``ready`` with the state, details and last error every view shows."""
    if ready.usable:
        state = "ready"
        details = [f"CLI {ready.binary}"] if ready.binary else []
        if ready.credentials_from:
            details.append(f"credentials from {ready.credentials_from}")
        details += [f"warning: {w}" for w in ready.warnings]
    else:
        limited = ready.blocked_until is not None and len(ready.reasons) == 1  # only the limit
        quota = ready.status.unavailable_until == ready.blocked_until
        state = ("out of quota" if quota else "rate-limited") if limited else "cannot run"
        details = list(ready.reasons)
    lines = ready.status.last_error.strip().splitlines()
    error = lines[0][:200] if lines else ""
    return ready.model_copy(update={"state": state, "details": tuple(details), "last_error": error})


def _credentials(
    spec: AgentSpec, settings: Settings, env: Mapping[str, str]
) -> tuple[bool | None, str]:
    """Whether the agent finds its key: the variable ``[agents.<name>] api_key_env`` names
    when it names one (set or not: that is where the run will look), else as its spec says."""
    table = settings.agents.get(spec.name)
    if table is not None and table.api_key_env:
        return bool(env.get(table.api_key_env)), table.api_key_env
    return spec.credentials(env) if spec.credentials is not None else (None, "")


def _cli(spec: AgentSpec, settings: Settings, env: Mapping[str, str]) -> Readiness:
    agent = spec.name
    configured = spec.binary(settings)
    binary = shutil.which(configured, path=env.get("PATH")) if configured else None
    status = AgentStatus(agent=agent)
    if binary is None:
        where = "is missing or not executable" if "/" in configured else "is not on PATH"
        why = (
            f"{agent} CLI not found: {configured!r} {where} "
            f"(install it with `{spec.install_hint}` or set {spec.binary_setting})"
        )
        return Readiness(
            agent=agent, usable=False, reasons=(why,), short="CLI not found", status=status
        )
    found, where = _credentials(spec, settings, env)
    warnings: tuple[str, ...] = ()
    if found is False:
        how = spec.login_hint
        table = settings.agents.get(agent)
        if table is not None and table.api_key_env:
            how = f"set {table.api_key_env}, which [agents.{agent}] api_key_env names"
            where = ""
        warnings = (f"no {agent} credentials found ({how}); its tasks will fail until there are",)
    return Readiness(
        agent=agent,
        usable=True,
        binary=binary,
        credentials=found,
        credentials_from=where,
        warnings=warnings,
        status=status,
    )


def probe(
    settings: Settings, env: Mapping[str, str], registry: AgentRegistry | None = None
) -> dict[str, Readiness]:
    """Every known agent's readiness from this machine alone (no rate-limit state yet).

    ``env`` is the environment the agents get (its ``PATH`` finds the CLIs, its variables and
    ``HOME`` hold their credentials).
    """
    probed: dict[str, Readiness] = {}
    for spec in registry or default_registry():
        if spec.default_binary is not None:
            probed[spec.name] = _cli(spec, settings, env)
            continue
        reasons = spec.unconfigured(settings) if spec.unconfigured is not None else ()
        probed[spec.name] = Readiness(
            agent=spec.name,
            usable=not reasons,
            reasons=reasons,
            short="not configured" if reasons else "",
            status=AgentStatus(agent=spec.name),
        )
    return {name: _described(ready) for name, ready in probed.items()}


def assess(
    probed: Mapping[str, Readiness], statuses: Mapping[str, AgentStatus], now: datetime
) -> dict[str, Readiness]:
    """``probed`` with the recorded health: a rate-limited or out-of-quota agent is not usable
    until its window ends."""
    assessed: dict[str, Readiness] = {}
    for name, ready in probed.items():
        status = statuses.get(name, AgentStatus(agent=name))
        until = status.blocked_until(now)
        update: dict[str, object] = {"status": status, "blocked_until": until}
        if until is not None:
            kind = "out of quota" if status.unavailable_until == until else "rate-limited"
            update["usable"] = False
            when = f"{kind} until {until.isoformat(timespec='seconds')}"
            update["short"] = f"{ready.short}; {when}" if ready.short else when
            update["reasons"] = (*ready.reasons, when)
        assessed[name] = _described(ready.model_copy(update=update))
    return assessed


def resuming_agent(executions: Sequence[Execution]) -> str | None:
    """The agent of the last real execution if it ended BLOCKED or READY: the task is queued
    again because of an answer or a review, and the same session resumes with that agent."""
    for execution in reversed(executions):
        if execution.status == TaskState.QUEUED:
            continue  # ended in a re-queue: look further back
        waiting = (TaskState.BLOCKED, TaskState.READY)
        return execution.agent if execution.status in waiting else None
    return None


def waiting_reason(
    task: Task, ready: Mapping[str, Readiness], resuming: str | None = None
) -> str | None:
    """Why no usable agent can take this QUEUED task now, or None if one can.

    A task pinned to an agent (or resuming that agent's session) waits for that agent; an
    unpinned one waits only when no agent at all is usable.
    """
    if task.state != TaskState.QUEUED:
        return None
    wanted = task.agent.type or resuming
    if wanted:
        mine = ready.get(wanted)
        if mine is None:
            return f"agent {wanted!r} is not known here"
        if mine.usable:
            return None
        return f"{wanted} cannot run here: {mine.short}"
    if any(r.usable for r in ready.values()):
        return None
    return (
        "no agent can run here (" + "; ".join(f"{r.agent}: {r.short}" for r in ready.values()) + ")"
    )


def summary_line(ready: Readiness) -> str:
    """One line for people: what the agent can do, and why not."""
    if not ready.usable:
        return f"{ready.agent}: cannot run: " + "; ".join(ready.reasons)
    where = f" ({ready.binary})" if ready.binary else ""
    creds = f", credentials from {ready.credentials_from}" if ready.credentials_from else ""
    warning = f"; warning: {'; '.join(ready.warnings)}" if ready.warnings else ""
    return f"{ready.agent}: ready{where}{creds}{warning}"
