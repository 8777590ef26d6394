"""How one execution's agent is confined: :func:`confinement_for` turns the operator's
``[isolation]`` table (and, as it grows, the project's and the task's overrides) into the
:class:`~claudomator.isolation.base.Confinement` the runner adds to the agent's
:class:`~claudomator.isolation.base.Access` and the build check uses too.

Not a launcher: the module name is in :data:`claudomator.isolation._NOT_LAUNCHERS`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from claudomator.isolation.base import MODEL_ONLY, Confinement

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

logger = logging.getLogger(__name__)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` ("" when it has no host)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def confinement_for(settings: Settings) -> Confinement:
    """The confinement ``settings`` give every agent: the configured network policy, the
    operator's read-only paths, and under ``model-only`` the operator's extra endpoints and the
    Claudomator API (so an agent can still ask questions and file subtasks)."""
    isolation = settings.isolation
    endpoints: tuple[str, ...] = ()
    if isolation.network == MODEL_ONLY:
        api = origin(settings.api_url)
        endpoints = tuple(dict.fromkeys((*isolation.allowed_endpoints, *([api] if api else []))))
    return Confinement(
        network=isolation.network,
        read_only=tuple(Path(p) for p in isolation.read_only_paths),
        endpoints=endpoints,
    )
