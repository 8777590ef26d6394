"""How an attempt reaches the store from async code: only through the store executor.

Store methods are synchronous. An attempt calls them through :meth:`StoreAccess.once` (one try
in :meth:`~claudomator.blocking.Blocking.store`) or :meth:`StoreAccess.kept` (retried by
:func:`~claudomator.persist.until_stored` until the database takes it), never on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from claudomator.blocking import Blocking
from claudomator.persist import until_stored
from claudomator.store.base import Store

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class StoreAccess:
    """The store steps of one task's attempt."""

    def __init__(self, store: Store, blocking: Blocking, task_id: str) -> None:
        self.store = store
        self.blocking = blocking
        self.task_id = task_id

    async def once(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the store executor; a refusal propagates."""
        return await self.blocking.store(fn, *args, **kwargs)

    async def kept(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A store step of the outcome, written again until the database takes it."""
        return await until_stored(
            f"task {self.task_id}: {what}",
            lambda: fn(*args, **kwargs),
            store=self.store,
            blocking=self.blocking,
        )
