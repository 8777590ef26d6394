"""Bounded thread pools for the orchestrator's blocking work, built once and passed down.

Sandbox work (git, build checks, clean-ups) and the writes of outcomes run here, never in
asyncio's default executor: that one (``min(32, cpus + 4)`` threads, six on two cores) serves
the API's webhook and stream routes, which must answer while every slot runs a build check.
The :class:`~claudomator.runtime.Runtime` builds one :class:`Blocking` and shuts it down on
the way out; a :class:`~claudomator.dispatch.local.Pool` built without one makes (and owns) its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

STORE_WORKERS = 2
"""Threads for outcome writes: the store serialises this process's writers anyway, so more
threads would only queue on its write lock."""


class Blocking:
    """A sandbox pool (git and build checks) and a store pool (outcome writes)."""

    def __init__(self, sandbox_workers: int, store_workers: int = STORE_WORKERS) -> None:
        if sandbox_workers < 1 or store_workers < 1:
            raise ValueError(
                f"executor sizes must be >= 1 (sandbox {sandbox_workers}, store {store_workers})"
            )
        self.sandbox_workers = sandbox_workers
        self.sandbox_pool = ThreadPoolExecutor(sandbox_workers, "claudomator-sandbox")
        self.store_pool = ThreadPoolExecutor(store_workers, "claudomator-store")

    @classmethod
    def for_slots(cls, max_concurrent: int) -> Blocking:
        """Pools for a pool running ``max_concurrent`` tasks: one sandbox thread per slot (an
        attempt runs one blocking step at a time) and one for reconciling."""
        return cls(max_concurrent + 1)

    async def sandbox(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the sandbox pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.sandbox_pool, functools.partial(fn, *args, **kwargs))

    async def store(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the store pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store_pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Wait for the work in flight, then stop the threads."""
        self.sandbox_pool.shutdown(wait=True, cancel_futures=False)
        self.store_pool.shutdown(wait=True, cancel_futures=False)
        logger.debug("blocking executors stopped", extra={"action": "blocking_shutdown"})
