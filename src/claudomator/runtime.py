"""A running orchestrator in this process: service + pool wired together, started and stopped.

Both ``claudomator run`` (a pool limited to the file's tasks) and ``claudomator serve`` (a pool
for everything, plus the HTTP API) use :class:`Runtime`. It is the composition root: the one
place that builds the process's long-lived objects and hands them down. It builds the one
local-model client (:class:`~claudomator.llm.LLMClient`: the agent chooser, the summariser, the
local runner, and for ``serve`` the API's elaborate and CI triage use it), the one agent
launcher (the runners and the one-shot CLI calls start through it; ``[isolation] launcher``
resolved by :func:`claudomator.isolation._choice.resolve`), the pool's sandboxes and
notifier (:func:`pool_parts`, which tests and benchmarks use to build a pool the same way) and
the bounded executors of blocking work (:class:`~claudomator.blocking.Blocking`); it closes the
client and the executors on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import TypedDict

from claudomator import retention
from claudomator.agents import AgentRegistry
from claudomator.blocking import Blocking
from claudomator.chooser import AgentChooser
from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.isolation._choice import resolve
from claudomator.isolation.base import Launcher
from claudomator.isolation.policy import confinement_for
from claudomator.llm import LLMClient
from claudomator.notify import Notifier
from claudomator.orchestrators import held_by_runs
from claudomator.projects import all_projects
from claudomator.readiness import probe
from claudomator.sandbox import Sandboxes
from claudomator.service import Service
from claudomator.store.base import Store
from claudomator.summarize import ModelSummarizer
from claudomator.webpush import WebPush

logger = logging.getLogger(__name__)


class PoolParts(TypedDict):
    """What a :class:`~claudomator.dispatch.Pool` is built with beyond its runners:
    ``Pool(settings, store, runners, **pool_parts(settings, store), ...)``."""

    sandboxes: Sandboxes
    notifier: Notifier
    launcher: Launcher


def pool_parts(settings: Settings, store: Store, launcher: Launcher | None = None) -> PoolParts:
    """The sandboxes, the notifier (webhook and Web Push) and the agents' launcher (the build
    checks start through it; ``launcher``, else the one ``[isolation] launcher`` comes to) of a
    pool over ``store``, built the way the :class:`Runtime` builds its own (it calls this)."""
    return PoolParts(
        launcher=launcher or AgentRegistry.launcher(settings),
        sandboxes=Sandboxes(
            settings.sandboxes_dir,
            data_dir=settings.data_dir,  # plain project folders must not be or hold these
            projects=lambda: [Path(p.dir) for p, _ in all_projects(settings, store)],
        ),
        notifier=Notifier(
            settings.webhook_url, settings.webhook_secret, push=WebPush(settings, store)
        ),
    )


class Runtime:
    """``async with Runtime(settings) as rt:`` starts the pool; leaving stops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        only: Collection[str] | None = None,
        max_concurrent: int | None = None,
        service: Service | None = None,
        base_env: Mapping[str, str] | None = None,
        agents: AgentRegistry | None = None,
    ) -> None:
        self.settings = settings
        # which launcher [isolation] launcher comes to here ("auto": bubblewrap or plain); an
        # explicit bubblewrap that cannot run raises ConfigError before anything starts
        self.confinement = resolve(settings)
        self.confinement.required()
        # the one registry this orchestrator runs with: the built-ins unless one is given
        self.service = service or Service.open(settings, agents=agents)
        self.agents = agents or self.service.agents
        self.llm = LLMClient(settings.local_model)  # the process's one: closed in __aexit__
        # every agent CLI spawn goes through it: the chosen launcher, built by the registry,
        # which starts an agent whose project or task names another launcher through that one
        self.launcher = self.agents.launcher(settings, self.confinement)
        env = dict(os.environ if base_env is None else base_env)
        runners = self.agents.runners(settings, self.launcher, llm=self.llm)
        usable = {name for name, r in probe(settings, env, self.agents).items() if r.usable}
        self.blocking = Blocking.for_slots(max_concurrent or settings.max_concurrent)
        self.pool = Pool(
            settings,
            self.service.store,
            runners,
            **pool_parts(settings, self.service.store, self.launcher),
            only=only,
            max_concurrent=max_concurrent,
            base_env=env,
            chooser=AgentChooser(
                self.llm if self.llm.available else None,
                gemini_binary=settings.agent_binary("gemini") if "gemini" in usable else "",
                env=env,
                registry=self.agents,
                launcher=self.launcher,
                confinement=confinement_for(settings),
            ),
            summarizer=ModelSummarizer(self.llm) if self.llm.available else None,
            probe=functools.partial(
                probe, settings, env, self.agents
            ),  # each round: new CLIs count
            blocking=self.blocking,
            # a pool for every task (serve) leaves the tasks of a `run` with its own pool to it
            held_elsewhere=(
                functools.partial(held_by_runs, settings.data_dir) if only is None else None
            ),
        )
        self.service.on_submit = self._wake
        self.service.sandboxes = lambda: self.pool.sandboxes  # accept releases into the pool's
        self.requeue_on_exit = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retention: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        """Wake the pool; safe from any thread (API routes run in a thread pool)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.pool.wake)

    async def __aenter__(self) -> Runtime:
        self._loop = asyncio.get_running_loop()
        await self.pool.start()
        if self.settings.retention.every > 0:
            self._retention = asyncio.create_task(self._keep_tidy(), name="claudomator-retention")
        return self

    async def _keep_tidy(self) -> None:
        """Apply the ``[retention]`` policy now and every ``every`` seconds, in the sandbox
        executor (git and folder walks never run on the event loop)."""
        while True:
            try:
                done = await self.blocking.sandbox(
                    retention.collect_garbage, self.settings, self.service.store
                )
            except Exception:  # a bug must not stop the orchestrator; next round tries again
                logger.exception("retention failed", extra={"action": "retention"})
            else:
                level = logging.INFO if done.removed or done.failed else logging.DEBUG
                logger.log(level, "retention: %s", done.summary(), extra={"action": "retention"})
            await asyncio.sleep(self.settings.retention.every)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        try:
            await self.pool.shutdown(requeue=self.requeue_on_exit)
        finally:
            try:
                await self.llm.aclose()
            finally:
                await asyncio.get_running_loop().run_in_executor(None, self.blocking.shutdown)
