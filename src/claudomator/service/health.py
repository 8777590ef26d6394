"""What the service says about agents: their health, their readiness to run here, and why a
QUEUED task waits for one."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from claudomator.models import AgentStatus, Task, TaskState, utcnow
from claudomator.service.queries import Queries

if TYPE_CHECKING:
    from claudomator.readiness import Readiness

logger = logging.getLogger(__name__)


class AgentHealth(Queries):
    """Agents' health and readiness."""

    def agent_health(self) -> list[AgentStatus]:
        return sorted(self.store.agent_statuses().values(), key=lambda s: s.agent)

    def agent_readiness(self, env: Mapping[str, str] | None = None) -> dict[str, Readiness]:
        """Every known agent's readiness as the pool sees it (``env``: this process's)."""
        from claudomator import readiness  # every agent's module: not for `show`

        probed = readiness.probe(self.settings, os.environ if env is None else env, self.agents)
        return readiness.assess(probed, self.store.agent_statuses(), utcnow())

    def waiting_reasons(
        self, tasks: Iterable[Task], ready: Mapping[str, Readiness] | None = None
    ) -> dict[str, str]:
        """Task id -> why it waits, for the QUEUED ones no usable agent can take."""
        queued = [t for t in tasks if t.state == TaskState.QUEUED]
        if not queued:
            return {}
        ready = self.agent_readiness() if ready is None else ready
        from claudomator import readiness

        reasons = {}
        for task in queued:
            resuming = None
            if not task.agent.type:
                resuming = readiness.resuming_agent(self.store.executions_of(task.id))
            why = readiness.waiting_reason(task, ready, resuming)
            if why is not None:
                reasons[task.id] = why
        return reasons
