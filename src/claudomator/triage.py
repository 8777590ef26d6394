"""Triage of a failed CI run on GitHub: what failed, and the task that fixes it.

* :func:`ci_failure` reads a ``check_run`` or ``workflow_run`` delivery into a :class:`CIFailure`,
  or says why it is no failure to fix (:class:`Ignored`); a malformed one raises
  :class:`PayloadError`.
* :func:`instructions_for` is the template: repository, branch, SHA, check, conclusion, run URL
  and what to do. :func:`fix_task` wraps it in a :class:`~claudomator.models.Task`.
* :func:`enrich` asks the local model for a project-aware plan (from the project's last commits
  and its ``CLAUDE.md``) and appends it under ``## Suggested plan``. Best effort: a missing,
  slow or failing model leaves the template alone.

Which conclusions are failures to fix (anything else is ignored):

* ``check_run``: ``failure``, ``timed_out``, ``action_required`` (GitHub counts it as failing;
  the details say what the check wants), ``startup_failure`` (the check could not start).
* ``workflow_run``: ``failure``, ``timed_out``, ``startup_failure`` (an invalid workflow file
  is a fix in the repository too). Its ``action_required`` means a run from a fork waits for a
  maintainer's approval, which is nothing to fix.
* Never: ``success``, ``neutral``, ``skipped``, ``stale`` (superseded), and ``cancelled``
  (a person or a newer push stopped the run; no code is known to be wrong).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from claudomator.errors import ClaudomatorError
from claudomator.llm import LLMClient
from claudomator.models import AgentConfig, Task
from claudomator.process import run

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

CHECK_RUN_FAILURES = frozenset({"failure", "timed_out", "action_required", "startup_failure"})
WORKFLOW_RUN_FAILURES = frozenset({"failure", "timed_out", "startup_failure"})
HANDLED_EVENTS = ("check_run", "workflow_run")

PLAN_TIMEOUT_SECONDS = 10.0
RECENT_COMMITS = 5
CLAUDE_MD_BYTES = 4096
_REPORT_CHARS = 2000  # of the check's own report (output title and summary)

_PLAN_SYSTEM = (
    "You help an AI coding agent fix a failing CI check in a git repository. From the task, "
    "the project's recent commits and its CLAUDE.md, write a short numbered plan (at most 6 "
    "steps) specific to this project: the commands that likely reproduce the failure, where "
    "to look, how to verify the fix. Plain text, no preamble, no headings."
)


class PayloadError(ClaudomatorError):
    """A delivery that is not the JSON GitHub sends for its event (names the bad field)."""


@dataclass(frozen=True)
class Ignored:
    """A delivery that asks for no task, and why."""

    reason: str


@dataclass(frozen=True)
class CIFailure:
    """A failed check run or workflow run, as far as fixing it is concerned."""

    kind: Literal["check_run", "workflow_run"]
    repository: str  # owner/name
    repository_name: str  # name
    branch: str  # empty when GitHub did not say
    sha: str
    check: str  # the check run's or the workflow's name
    conclusion: str
    url: str  # where the run is shown on GitHub; may be empty
    workflow_path: str = ""  # e.g. .github/workflows/ci.yml (workflow runs only)
    report: str = ""  # the check's own title and summary, shortened
    pull_requests: tuple[int, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """One task per repository, commit and check, however often GitHub delivers it."""
        return f"github:{self.repository}:{self.sha}:{self.check}"

    @property
    def where(self) -> str:
        """The branch, else the short SHA."""
        return self.branch or self.sha[:12]


# -- the payloads (only the fields we read; GitHub sends many more) --------------------------

_LOOSE = ConfigDict(frozen=True, extra="ignore")


class _Repository(BaseModel):
    model_config = _LOOSE
    name: str = Field(min_length=1)
    full_name: str = Field(min_length=1)


class _PullRequest(BaseModel):
    model_config = _LOOSE
    number: int


class _CheckSuite(BaseModel):
    model_config = _LOOSE
    head_branch: str | None = None


class _Output(BaseModel):
    model_config = _LOOSE
    title: str | None = None
    summary: str | None = None


class _CheckRun(BaseModel):
    model_config = _LOOSE
    name: str = Field(min_length=1)
    head_sha: str = Field(min_length=1)
    conclusion: str | None = None
    html_url: str | None = None
    details_url: str | None = None
    check_suite: _CheckSuite | None = None
    output: _Output | None = None
    pull_requests: list[_PullRequest] = Field(default_factory=list)


class _CheckRunEvent(BaseModel):
    model_config = _LOOSE
    action: str
    check_run: _CheckRun
    repository: _Repository


class _WorkflowRun(BaseModel):
    model_config = _LOOSE
    name: str | None = None
    head_sha: str = Field(min_length=1)
    head_branch: str | None = None
    conclusion: str | None = None
    html_url: str | None = None
    path: str = ""
    pull_requests: list[_PullRequest] = Field(default_factory=list)


class _Workflow(BaseModel):
    model_config = _LOOSE
    name: str | None = None
    path: str = ""


class _WorkflowRunEvent(BaseModel):
    model_config = _LOOSE
    action: str
    workflow_run: _WorkflowRun
    workflow: _Workflow | None = None
    repository: _Repository


def _parse(model: type[_M], event: str, payload: Mapping[str, Any]) -> _M:
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise PayloadError(f"malformed {event} payload: {problems}") from exc


def _report(output: _Output | None) -> str:
    if output is None:
        return ""
    text = "\n".join(part.strip() for part in (output.title, output.summary) if part)
    return text if len(text) <= _REPORT_CHARS else text[:_REPORT_CHARS] + " …"


def ci_failure(event: str, payload: Mapping[str, Any]) -> CIFailure | Ignored:
    """The CI failure a GitHub delivery reports, or why it reports none.

    ``event`` is the ``X-GitHub-Event`` header. Raises :class:`PayloadError` when a handled
    event lacks a field we need.
    """
    if event == "check_run":
        check = _parse(_CheckRunEvent, event, payload)
        run_ = check.check_run
        if check.action != "completed":
            return Ignored(f"check_run action '{check.action}' is not 'completed'")
        if run_.conclusion not in CHECK_RUN_FAILURES:
            return Ignored(f"check run '{run_.name}' concluded '{run_.conclusion}': no failure")
        return CIFailure(
            kind="check_run",
            repository=check.repository.full_name,
            repository_name=check.repository.name,
            branch=(run_.check_suite.head_branch if run_.check_suite else None) or "",
            sha=run_.head_sha,
            check=run_.name,
            conclusion=run_.conclusion,
            url=run_.html_url or run_.details_url or "",
            report=_report(run_.output),
            pull_requests=tuple(p.number for p in run_.pull_requests),
        )
    if event == "workflow_run":
        flow = _parse(_WorkflowRunEvent, event, payload)
        wrun = flow.workflow_run
        name = wrun.name or (flow.workflow.name if flow.workflow else None) or wrun.path
        if not name:
            raise PayloadError("malformed workflow_run payload: workflow_run.name: missing")
        if flow.action != "completed":
            return Ignored(f"workflow_run action '{flow.action}' is not 'completed'")
        if wrun.conclusion not in WORKFLOW_RUN_FAILURES:
            return Ignored(f"workflow run '{name}' concluded '{wrun.conclusion}': no failure")
        return CIFailure(
            kind="workflow_run",
            repository=flow.repository.full_name,
            repository_name=flow.repository.name,
            branch=wrun.head_branch or "",
            sha=wrun.head_sha,
            check=name,
            conclusion=wrun.conclusion,
            url=wrun.html_url or "",
            workflow_path=wrun.path or (flow.workflow.path if flow.workflow else ""),
            pull_requests=tuple(p.number for p in wrun.pull_requests),
        )
    handled = ", ".join(HANDLED_EVENTS)
    return Ignored(f"event '{event}' is not handled (only {handled} and ping)")


# -- the task ---------------------------------------------------------------------------------


def instructions_for(failure: CIFailure) -> str:
    """The task's instructions: what failed where, and how to go about fixing it."""
    what = "Check run" if failure.kind == "check_run" else "Workflow"
    lines = [
        f"A CI check failed on GitHub for {failure.repository}. Find the cause and fix it.",
        "",
        f"- Repository: {failure.repository}",
        f"- Branch: {failure.branch or '(not reported)'}",
        f"- Commit (SHA): {failure.sha}",
        f"- {what}: {failure.check}",
        f"- Conclusion: {failure.conclusion}",
        f"- Run: {failure.url or '(no URL reported)'}",
    ]
    if failure.workflow_path:
        lines.append(f"- Workflow file: {failure.workflow_path}")
    if failure.pull_requests:
        lines.append(f"- Pull request(s): {', '.join(f'#{n}' for n in failure.pull_requests)}")
    if failure.report:
        lines += ["", "What the check reported:", "", failure.report]
    where = f"`{failure.workflow_path}`" if failure.workflow_path else "`.github/workflows/`"
    lines += [
        "",
        "What to do:",
        "",
        f"1. Find the commands behind '{failure.check}': look in {where} (or the project's "
        "other CI configuration) for that job or workflow and the steps it runs.",
        f"2. Reproduce the failure locally by running those commands. The failing commit is "
        f"{failure.sha[:12]}; if it is not in this repository, work from the current HEAD and "
        "say so in your summary. If you can read the run's log (the URL above), use it.",
        "3. Fix the cause in the code. Do not disable, skip or loosen the check or its tests.",
        "4. Run the same commands again until they pass, then commit with a message that names "
        "the check.",
        '5. End with a "## Summary": the cause, the fix, and how you verified it.',
    ]
    return "\n".join(lines)


def fix_task(failure: CIFailure, project_dir: str, instructions: str) -> Task:
    """The task that fixes ``failure`` in ``project_dir`` (the agent is left to the chooser)."""
    return Task(
        name=f"fix CI: {failure.check} on {failure.where}",
        description=(
            f"GitHub {failure.kind} '{failure.check}' concluded '{failure.conclusion}' "
            f"for {failure.repository}@{failure.sha[:12]}"
            + (f": {failure.url}" if failure.url else "")
        ),
        agent=AgentConfig(instructions=instructions, project_dir=project_dir),
        tags=("ci", "github"),
    )


# -- enrichment by the local model -------------------------------------------------------------


def recent_commits(project_dir: Path, count: int = RECENT_COMMITS, timeout: float = 5.0) -> str:
    """``git log -<count> --oneline`` of the project, or "" when git cannot say."""
    done = run(["git", "log", f"-{count}", "--oneline"], cwd=project_dir, timeout=timeout)
    return done.stdout.strip() if done.ok else ""


def claude_md(project_dir: Path, limit: int = CLAUDE_MD_BYTES) -> str:
    """The first ``limit`` bytes of the project's ``CLAUDE.md``, or "" if it has none."""
    try:
        with (project_dir / "CLAUDE.md").open("rb") as fh:
            head = fh.read(limit)
    except OSError:
        return ""
    return head.decode("utf-8", errors="ignore").strip()


def plan_prompt(instructions: str, commits: str, guide: str) -> str:
    """What the model is asked: the task, the recent commits and the CLAUDE.md excerpt."""
    parts = [
        "## Task",
        instructions,
        "",
        f"## Last {RECENT_COMMITS} commits",
        commits or "(none available)",
        "",
        f"## CLAUDE.md (first {CLAUDE_MD_BYTES} bytes)",
        guide or "(the project has no CLAUDE.md)",
    ]
    return "\n".join(parts)


async def enrich(
    instructions: str,
    project_dir: Path,
    llm: LLMClient,
    *,
    timeout: float = PLAN_TIMEOUT_SECONDS,  # noqa: ASYNC109 - a bound over the whole enrichment
) -> str:
    """``instructions`` with a ``## Suggested plan`` from the local model appended.

    The whole enrichment takes at most ``timeout`` seconds; without a model, or on any failure
    (unreachable, refused, too slow, empty reply), the instructions come back unchanged.
    """
    if not llm.available:
        return instructions
    try:
        async with asyncio.timeout(timeout):
            commits = await asyncio.to_thread(recent_commits, project_dir, timeout=timeout)
            guide = await asyncio.to_thread(claude_md, project_dir)
            prompt = plan_prompt(instructions, commits, guide)
            plan = await llm.complete(_PLAN_SYSTEM, prompt, max_tokens=600, timeout=timeout)
    except Exception as exc:  # best effort: a plan is never worth losing the task over
        logger.info(
            "no suggested plan for %s: %s", project_dir, exc, extra={"action": "triage_plan"}
        )
        return instructions
    plan = plan.strip()
    if not plan:
        return instructions
    logger.info("suggested plan added for %s", project_dir, extra={"action": "triage_plan"})
    return f"{instructions}\n\n## Suggested plan\n\n{plan}\n"
