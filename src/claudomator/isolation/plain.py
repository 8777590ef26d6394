"""The ``plain`` launcher: the agent runs as it is, with the orchestrator's own rights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.errors import ConfinementError
from claudomator.isolation.base import OPEN, Access, Launcher

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

MODEL_ONLY_REFUSAL = (
    'network = "model-only" cannot be enforced by the plain launcher (the agent would have '
    'the host\'s whole network); set [isolation] launcher = "bubblewrap", or network = "open"'
)


class PlainLauncher:
    """Starts the agent's command unchanged (no isolation beyond its own process group).

    It enforces none of :class:`~claudomator.isolation.base.Access`: a read-only working
    directory (a one-shot call's project) is left to the CLI's own read-only tools
    (docs/agents.md §12 and §15). A network policy it cannot enforce (``model-only``) it
    refuses (:class:`~claudomator.errors.ConfinementError`): it never starts such an agent
    with the open network in its place."""

    name = "plain"

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        if paths.network != OPEN:
            raise ConfinementError(MODEL_ONLY_REFUSAL)
        return list(argv), dict(env)


def make_launcher(settings: Settings) -> Launcher:
    return PlainLauncher()
