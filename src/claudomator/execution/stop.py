"""Why the pool stopped an attempt before its agent ended on its own."""

from __future__ import annotations

import enum
import logging

logger = logging.getLogger(__name__)


class StopReason(enum.StrEnum):
    """Set on an attempt by the pool just before it sets the attempt's stop event."""

    CANCEL = "cancel"  # a user cancelled the task: it ends CANCELLED
    SHUTDOWN = "shutdown"  # the orchestrator is stopping: the task goes back to QUEUED
