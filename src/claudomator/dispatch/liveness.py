"""Who this dispatcher is, and what it does about dispatchers that died.

Every execution a dispatcher claims carries its :func:`~claudomator.reconcile.worker_identity`;
:class:`Liveness` runs :func:`~claudomator.reconcile.recover` (kill what a dead orchestrator's
executions left running, re-queue or finish their tasks) at start and every ``every`` seconds,
so an orchestrator that dies while this one runs is caught too. The recovery itself lives in
:mod:`claudomator.reconcile`; this module only says when and as whom.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from claudomator.config import Settings
from claudomator.reconcile import recover, worker_identity
from claudomator.store.base import Store

__all__ = ["RECONCILE_EVERY", "Liveness", "worker_identity"]

logger = logging.getLogger(__name__)

RECONCILE_EVERY = 60.0
"""Seconds between two reconciles while a dispatcher runs."""


class Liveness:
    """This process's worker identity and its periodic reconcile."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker_id = worker_id or worker_identity()
        self._clock = clock
        self._last = clock()

    def reconcile(self) -> int:
        """Recover tasks whose execution belongs to an orchestrator process that is gone
        (blocking: run it off the event loop); the number of tasks moved."""
        self._last = self._clock()
        return recover(self.settings, self.store)

    def due(self, every: float = RECONCILE_EVERY) -> bool:
        """Whether ``every`` seconds have passed since the last reconcile."""
        return self._clock() - self._last > every
