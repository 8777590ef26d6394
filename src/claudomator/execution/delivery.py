"""Handing a completed execution's work over: build check, commits, diff, push or branch.

:meth:`Delivery.hand_over` records the delivery intent before anything is pushed, collects and
delivers the sandbox's work, and returns a :class:`Handed`: the execution with its commits and
:class:`~claudomator.models.DeliveryRecord`, and the :class:`~claudomator.execution.finish.Handover`
the finish decision reads (kept for review, or why the delivery failed).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from claudomator import naming, projects, protocol
from claudomator.blocking import Blocking
from claudomator.config import Settings
from claudomator.delivered import where
from claudomator.errors import DeliveryConflict, SandboxError, StoreError
from claudomator.execution.access import StoreAccess
from claudomator.execution.finish import Handover
from claudomator.isolation.base import Access, Launcher
from claudomator.models import Commit, DeliveryRecord, Execution, Task
from claudomator.sandbox import Delivered, DeliveryKind, Sandbox, Sandboxes
from claudomator.sandbox.build import Wrap
from claudomator.store.intents import DeliveryIntent

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Handed:
    """What a delivery did to the execution, and what the finish decision needs of it."""

    execution: Execution  # with its commits, change stats and delivery record
    handover: Handover
    delivered_to: str = ""  # where the work went, for people ("" if nowhere)


def release(sandboxes: Sandboxes, task: Task, sandbox: Sandbox) -> None:
    """Retire a finished sandbox. A scratch project's tree is deleted, not kept warm: no
    other task shares that project, so a warm tree would only take disk space."""
    if task.agent.project_dir:
        sandboxes.release(sandbox)
    else:
        sandboxes.with_pool(0).release(sandbox)


def build_wrap(launcher: Launcher, access: Access, project_dir: Path) -> Wrap:
    """How the build check of an execution starts its commands: through the launcher that
    started its agent, with ``access`` (the agent's confinement, with none of its CLI's paths,
    files or variables) for the folder each command runs in. The build runs what the agent
    wrote, so it gets no more than the agent had. ``project_dir`` is the sandbox's project,
    whose git objects a shared clone borrows."""

    def wrap(
        argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        named = {**env, "CLAUDOMATOR_PROJECT_DIR": str(project_dir)}
        return launcher.wrap(argv, cwd, named, dataclasses.replace(access, workdir=cwd))

    return wrap


def record_of(sandbox: Sandbox, delivered: Delivered) -> DeliveryRecord:
    """Where the work went, as the execution records it."""
    return DeliveryRecord(
        how=delivered.how.value,
        project_dir=str(sandbox.project_dir),
        remote=delivered.remote,
        url=delivered.url,
        branch=delivered.branch,
        rebased=delivered.rebased,
    )


class Delivery:
    """Delivers the work of one task's execution from its sandbox."""

    def __init__(
        self,
        *,
        settings: Settings,
        sandboxes: Sandboxes,
        blocking: Blocking,
        access: StoreAccess,
        task: Task,
        log_dir: Path,
        since: str,
        build_access: Access | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.settings = settings
        # the build check starts through the agent's launcher with this access (None: as is)
        self.build_access = build_access
        self.launcher = launcher
        self.sandboxes = sandboxes
        self.blocking = blocking
        self.access = access
        self.store = access.store
        self.task = task
        self.log_dir = log_dir
        self.since = since  # a resumed review round's work counts from this head

    async def _off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.blocking.sandbox(fn, *args, **kwargs)

    async def hand_over(self, sandbox: Sandbox, execution: Execution) -> Handed:
        """Build check, autocommit, record and deliver the work; a failure is the handover's
        error (the outcome fails)."""
        await self._intend(sandbox, execution)
        project, build_dir = await self.access.once(
            projects.of_sandbox, self.settings, self.store, sandbox
        )
        build = project.build_command if project else ()
        message = naming.commit_message(
            self.task.name, self.task.id, execution.agent, self.task.description
        )
        delivered_to = ""
        try:
            collected = await self._off_loop(
                self.sandboxes.collect,
                sandbox,
                build_command=build,
                build_dir=build_dir,
                since=self.since,
                message=message,
                wrap=self._build_wrap(sandbox),
            )
            execution = execution.model_copy(
                update={"commits": collected.commits, "changestats": collected.changestats}
            )
            kept_as_branch = False
            if collected.commits:
                await self._keep_diff(sandbox)
                kwargs = {"delivery": project.delivery} if project else {}
                await self._note_head(sandbox, execution, collected.commits)  # before the push
                runs = await self.access.kept(
                    "its deliveries", self.store.executions_of, self.task.id
                )
                delivered = await self._off_loop(
                    self.sandboxes.deliver,
                    sandbox,
                    task_id=self.task.id,
                    task_name=self.task.name,
                    branch=naming.recorded_branch(runs),
                    **kwargs,
                )
                record = record_of(sandbox, delivered)
                execution = execution.model_copy(update={"delivery": record})
                delivered_to = where(record).line
                kept_as_branch = delivered.how is DeliveryKind.BRANCH
                if delivered.rebased:  # the delivered commits have new hashes
                    commits = await self._off_loop(
                        self.sandboxes.head_commits, sandbox, len(collected.commits)
                    )
                    execution = execution.model_copy(update={"commits": commits})
                logger.info(
                    "task %s delivered: %s",
                    self.task.id,
                    delivered_to,
                    extra={"action": "deliver"},
                )
            # kept, with its sandbox, for the review loop (a round that changed nothing leaves
            # the branch an earlier round delivered, and waits for the reviewer again)
            review = project is not None and project.review and (kept_as_branch or self.since)
            if not review:
                await self._off_loop(release, self.sandboxes, self.task, sandbox)
            if not collected.commits:
                nothing = record_of(sandbox, Delivered(DeliveryKind.NOTHING))
                execution = execution.model_copy(update={"delivery": nothing})
            return Handed(execution, Handover(for_review=bool(review)), delivered_to)
        except SandboxError as exc:
            if isinstance(exc, DeliveryConflict):  # the work was kept as a branch instead
                kept = record_of(sandbox, Delivered(DeliveryKind.BRANCH, branch=exc.branch))
                execution = execution.model_copy(update={"delivery": kept})
            return Handed(execution, Handover(error=str(exc)), delivered_to)

    def _build_wrap(self, sandbox: Sandbox) -> Wrap | None:
        if self.launcher is None or self.build_access is None:
            return None
        return build_wrap(self.launcher, self.build_access, sandbox.project_dir)

    def _intent(
        self, sandbox: Sandbox, execution: Execution, commits: Sequence[Commit]
    ) -> DeliveryIntent:
        return DeliveryIntent(
            execution_id=execution.id,
            task_id=self.task.id,
            project_dir=str(sandbox.project_dir),
            sandbox_dir=str(sandbox.dir),
            branch=sandbox.branch,
            base_commit=sandbox.base_commit,
            head=commits[-1].hash if commits else "",
        )

    async def _intend(self, sandbox: Sandbox, execution: Execution) -> None:
        """Record, before anything is pushed, what this execution is about to deliver: after a
        kill -9 during the push, the pool's reconcile finds the work on the target and
        finishes the record instead of running the agent again. Without the commits (not yet
        collected) recovery reads the sandbox's HEAD."""
        intent = self._intent(sandbox, execution, ())
        await self.access.kept("its delivery intent", self.store.record_delivery_intent, intent)

    async def _note_head(
        self, sandbox: Sandbox, execution: Execution, commits: Sequence[Commit]
    ) -> None:
        """Add the exact head to the delivery intent recorded before the agent's work was
        collected. Best effort: if the database refuses now, the delivery goes on, and recovery
        reads the head from the sandbox (where a rebase before the push also happens)."""
        intent = self._intent(sandbox, execution, commits)
        try:
            await self.access.once(self.store.record_delivery_intent, intent)
        except StoreError as exc:
            logger.warning(
                "task %s: could not add the head to the delivery intent (%s); recovery will "
                "read it from the sandbox",
                self.task.id,
                exc,
                extra={"action": "deliver"},
            )

    async def _keep_diff(self, sandbox: Sandbox) -> None:
        """Save the diff of the work for people to read later; a failure only costs the diff."""
        try:
            diff = protocol.diff_file(self.log_dir)
            await self._off_loop(self.sandboxes.write_diff, sandbox, diff, since=self.since)
        except (OSError, SandboxError) as exc:
            logger.warning(
                "task %s: could not save the diff: %s", self.task.id, exc, extra={"action": "diff"}
            )
