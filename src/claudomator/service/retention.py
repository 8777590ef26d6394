"""The service's view of the ``[retention]`` policy: what it would remove, and removing it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from claudomator.service.core import ServiceCore

if TYPE_CHECKING:
    from claudomator import retention

logger = logging.getLogger(__name__)


class Retention(ServiceCore):
    """Retention plans and their application."""

    def retention_plan(self) -> retention.Plan:
        """What the ``[retention]`` policy would remove now (nothing is removed)."""
        from claudomator import retention  # git plumbing: only for `gc` and the orchestrator

        return retention.plan(self.settings, self.store)

    def apply_retention(self, plan: retention.Plan) -> retention.Applied:
        """Remove what ``plan`` lists (each removal checked again first)."""
        from claudomator import retention

        return retention.apply(self.settings, plan)
