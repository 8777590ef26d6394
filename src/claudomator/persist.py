"""Writes that must not be lost: an execution's outcome is written again until it is stored.

A database can refuse a write for a while (another process holds its lock past the busy
timeout: a backup, a ``sqlite3`` shell). :func:`until_stored` keeps the value it was given
and retries with a growing delay for as long as the process lives, logging a warning with
the count each time and keeping the write in the store's :class:`~claudomator.store.backlog.
WriteBacklog` (seen by ``/api/health`` and ``/metrics``) until it lands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from claudomator.blocking import Blocking
from claudomator.errors import StoreError
from claudomator.store.base import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.1  # seconds before the first retry
MAX_DELAY = 5.0  # the delay doubles up to this


async def until_stored(
    what: str,
    write: Callable[[], T],
    *,
    store: Store,
    blocking: Blocking,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> T:
    """``write()`` (in the store pool), retried on :class:`StoreError` until it succeeds.

    Other errors propagate at once: only the database refusing the write is worth waiting
    for. ``what`` names the write in the log ("task 1a2b: outcome COMPLETED").
    """
    failures = 0
    delay = first_delay
    stored = False
    try:
        while True:
            try:
                result = await blocking.store(write)
                stored = True
                return result
            except StoreError as exc:
                failures += 1
                store.backlog.refused(str(exc), first=failures == 1)
                logger.warning(
                    "%s not stored (refused %d time(s)); retrying in %.1fs: %s",
                    what,
                    failures,
                    delay,
                    exc,
                    extra={"action": "store_retry"},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    finally:
        if failures:
            store.backlog.settled()
            if stored:
                logger.info(
                    "%s stored after %d refusal(s)", what, failures, extra={"action": "store_retry"}
                )
            else:
                logger.error(
                    "%s abandoned after %d refusal(s): the process is stopping",
                    what,
                    failures,
                    extra={"action": "store_retry"},
                )
