"""Outgoing notifications: a JSON webhook (signed with HMAC-SHA256 when a secret is set) and
Web Push to subscribed browsers.

A notification never fails or delays a task: :meth:`Notifier.post` sends in the background and
retries with backoff; errors are logged (without the secret).
Receivers verify ``X-Claudomator-Signature: sha256=<hex>`` over the raw body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Coroutine
from typing import Any

import httpx

from claudomator.errors import ClaudomatorError
from claudomator.models import Task, utcnow
from claudomator.webpush import WebPush

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Claudomator-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Notifier:
    """Posts task events to the configured webhook (a no-op without one)."""

    def __init__(
        self,
        webhook_url: str,
        secret: str = "",
        *,
        timeout: float = 10.0,
        retry_delays: tuple[float, ...] = (2.0, 10.0, 30.0),
        push: WebPush | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.push = push
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, event: str, task: Task, **extra: Any) -> None:
        """Send ``event`` in the background, retrying with backoff; never waits for it.

        ``extra`` joins the webhook's payload; ``delivered`` (where the work went, see
        :func:`claudomator.delivered.where`) also ends the Web Push message's body.
        """
        if self.enabled:
            self._spawn(self._deliver(event, task, extra))
        if self.push is not None and self.push.wants(event):
            delivered = str(extra.get("delivered", ""))
            self._spawn(self._push(self.push, event, task, delivered))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        job = asyncio.get_running_loop().create_task(work)
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    async def _push(self, push: WebPush, event: str, task: Task, delivered: str) -> None:
        try:
            await push.send(event, task, delivered)
        except ClaudomatorError as exc:  # e.g. an unreadable VAPID key, a database error
            logger.warning("web push for %s failed: %s", event, exc, extra={"action": "notify"})

    async def _deliver(self, event: str, task: Task, extra: dict[str, Any]) -> None:
        for attempt, delay in enumerate((0.0, *self.retry_delays), 1):
            if delay:
                await asyncio.sleep(delay)
            if await self.task_event(event, task, **extra):
                return
            logger.info(
                "webhook attempt %d for %s failed", attempt, event, extra={"action": "notify"}
            )
        logger.warning("gave up on webhook for %s", event, extra={"action": "notify"})

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a grace period
        """Wait (at most ``timeout`` seconds) for notifications still being sent."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    async def task_event(self, event: str, task: Task, **extra: Any) -> bool:
        """Send ``event`` (e.g. "task.blocked") about ``task`` once; True if it was taken."""
        if not self.enabled:
            return False
        payload = {
            "event": event,
            "at": utcnow().isoformat(),
            "task": {
                "id": task.id,
                "name": task.name,
                "state": task.state.value,
                "summary": task.summary,
                "question": task.question,
            },
            **extra,
        }
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "claudomator"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning(
                "webhook for %s failed: %s", event, type(exc).__name__, extra={"action": "notify"}
            )
            return False
        if response.status_code >= 300:
            logger.warning(
                "webhook for %s answered %d",
                event,
                response.status_code,
                extra={"action": "notify"},
            )
            return False
        return True
