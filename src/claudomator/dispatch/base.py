"""What the rest of the orchestrator needs from a dispatcher.

A dispatcher claims QUEUED tasks from the store and runs them to a recorded outcome. The
:class:`~claudomator.runtime.Runtime` starts one, wakes it on in-process submits and stops it;
views ask it which tasks it runs and how its agents are. :class:`~claudomator.dispatch.local.
Pool` is the one in this process (asyncio tasks, one per running attempt); another (a queue
worker over a job broker, say) would implement the same protocol beside it and reuse
:mod:`claudomator.dispatch.select` for what to claim and :mod:`claudomator.dispatch.liveness`
for its identity and reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from claudomator.models import AgentStatus
from claudomator.readiness import Readiness


class Dispatcher(Protocol):
    """Claims queued tasks and runs them within the limits."""

    worker_id: str  # recorded on every execution it claims (see claudomator.reconcile)

    async def start(self) -> None:
        """Reconcile what a dead orchestrator left behind, then start claiming."""
        ...

    def wake(self) -> None:
        """Look at the queue now (called on the event loop's thread)."""
        ...

    @property
    def running(self) -> Mapping[str, str]:
        """Task id -> agent of the tasks it runs now."""
        ...

    async def shutdown(self, *, requeue: bool = True) -> None:
        """Stop claiming, stop every running agent and wait for their outcomes to be recorded:
        QUEUED ("orchestrator shutdown") if ``requeue``, else CANCELLED."""
        ...

    def reconcile(self) -> int:
        """Recover the tasks of orchestrators that died (blocking); how many were moved."""
        ...

    def readiness(self) -> dict[str, Readiness]:
        """Every agent's readiness for this dispatcher now (blocking: reads the store)."""
        ...

    def agent_health(self) -> dict[str, AgentStatus]:
        """Every agent's recorded status (blocking: reads the store)."""
        ...
