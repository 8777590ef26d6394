"""The facade every entry point calls: :class:`Service`, one class made of the service's parts.

Each part is a module of :mod:`claudomator.service` with one noun: ``core`` (settings, store,
collaborators), ``catalog`` (projects, stories), ``queries`` (finding and listing tasks, their
executions, events and costs), ``submission`` (checking and storing new tasks), ``lifecycle``
(the actions on stored tasks), ``health`` (agents' readiness), ``push`` (Web Push
subscriptions) and ``retention``. Each part builds on those it needs, so imports point down.
"""

from __future__ import annotations

import logging

from claudomator.service.health import AgentHealth
from claudomator.service.lifecycle import Lifecycle
from claudomator.service.push import PushSubscriptions
from claudomator.service.retention import Retention

logger = logging.getLogger(__name__)


class Service(Lifecycle, AgentHealth, PushSubscriptions, Retention):
    """Operations on tasks, shared by every entry point (see
    :class:`~claudomator.service.core.ServiceCore` for what it
    is built with: :meth:`open` opens the configured database and builds it)."""
