"""A running orchestrator in this process: service + pool wired together, started and stopped.

Both ``claudomator run`` (a pool limited to the file's tasks) and ``claudomator serve`` (a pool
for everything, plus the HTTP API) use :class:`Runtime`.
"""

from __future__ import annotations

from collections.abc import Collection
from types import TracebackType

from claudomator.agents import build_registry
from claudomator.config import Settings
from claudomator.pool import Pool
from claudomator.service import Service


class Runtime:
    """``async with Runtime(settings) as rt:`` starts the pool; leaving stops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        only: Collection[str] | None = None,
        max_concurrent: int | None = None,
        service: Service | None = None,
    ) -> None:
        self.settings = settings
        self.service = service or Service.open(settings)
        self.pool = Pool(
            settings,
            self.service.store,
            build_registry(settings),
            only=only,
            max_concurrent=max_concurrent,
        )
        self.service.on_submit = self.pool.wake
        self.requeue_on_exit = True

    async def __aenter__(self) -> Runtime:
        await self.pool.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.pool.shutdown(requeue=self.requeue_on_exit)
