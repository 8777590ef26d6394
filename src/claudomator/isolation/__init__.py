"""How an agent CLI process is isolated: a :class:`~claudomator.isolation.base.Launcher` wraps
every agent spawn (docs/agents.md §15).

Each launcher lives in its own module of this package, named as ``[isolation] launcher`` names
it, and exposes ``make_launcher(settings) -> Launcher``: ``plain``
(:mod:`claudomator.isolation.plain`) runs the agent as it is, ``bubblewrap``
(:mod:`claudomator.isolation.bubblewrap`) confines it with ``bwrap``. A new kind of isolation
is one new module here; the config accepts its name as soon as the module exists
(:func:`launcher_names`).

The launcher is built once, from the settings, by whoever builds the runners
(:meth:`claudomator.agents.registry.AgentRegistry.runners`), and handed to each runner.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import TYPE_CHECKING

from claudomator.errors import ConfigError
from claudomator.isolation.base import Access, Launcher, LauncherFactory

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

logger = logging.getLogger(__name__)

_NOT_LAUNCHERS = frozenset({"base", "policy"})


def launcher_names() -> tuple[str, ...]:
    """The launchers this installation has: the modules of this package (sorted)."""
    found = (m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg)
    return tuple(sorted(n for n in found if n not in _NOT_LAUNCHERS and not n.startswith("_")))


def build_launcher(name: str, settings: Settings) -> Launcher:
    """The launcher ``name`` (one of :func:`launcher_names`; the config has checked it), for
    ``settings``."""
    if name not in launcher_names():
        known = ", ".join(launcher_names())
        raise ConfigError(f"[isolation] launcher = {name!r} is not a launcher; use one of: {known}")
    module = importlib.import_module(f"{__name__}.{name}")
    factory = getattr(module, "make_launcher", None)
    if not callable(factory):
        raise ConfigError(
            f"[isolation] launcher = {name!r}: {module.__name__} has no make_launcher()"
        )
    launcher: Launcher = factory(settings)
    logger.debug("agent launcher: %s", name, extra={"action": "isolation"})
    return launcher


__all__ = ["Access", "Launcher", "LauncherFactory", "build_launcher", "launcher_names"]
