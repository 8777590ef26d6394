"""The ``plain`` launcher: the agent runs as it is, with the orchestrator's own rights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.isolation.base import Access, Launcher

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package


class PlainLauncher:
    """Starts the agent's command unchanged (no isolation beyond its own process group).

    It enforces none of :class:`~claudomator.isolation.base.Access`: a read-only working
    directory (a one-shot call's project) is left to the CLI's own read-only tools
    (docs/agents.md §12 and §15)."""

    name = "plain"

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        return list(argv), dict(env)


def make_launcher(settings: Settings) -> Launcher:
    return PlainLauncher()
