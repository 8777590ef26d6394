"""Which launcher ``[isolation] launcher`` resolves to on this machine: :func:`choose` (pure),
and :func:`resolve` (the configured value, with bubblewrap's availability looked up here).

``plain`` and any other launcher module are taken as they are. ``bubblewrap`` needs bwrap to
run here: without it the orchestrator refuses to start (:attr:`Choice.refusal`), never runs the
agents unconfined in its place. ``auto`` is bubblewrap when it can run here, else ``plain``
with a warning (:attr:`Choice.warning`).

This module is not a launcher: its name starts with ``_``, which
:func:`claudomator.isolation.launcher_names` skips.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from claudomator.errors import ConfigError

if TYPE_CHECKING:  # the settings import this module (the names it accepts): typing only
    from claudomator.config import Settings

logger = logging.getLogger(__name__)

AUTO = "auto"
BUBBLEWRAP = "bubblewrap"
PLAIN = "plain"
CHOICES = (AUTO, BUBBLEWRAP)
"""What ``[isolation] launcher`` accepts beyond the launcher modules themselves."""
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
)
NOT_INSTALLED = "the bubblewrap launcher is not installed (no claudomator.isolation.bubblewrap)"


@dataclass(frozen=True)
class Choice:
    """What the configured launcher comes to here: the launcher to build (``launcher``), or a
    refusal to start (``refusal``, ``launcher`` empty). ``warning``: said once at start when
    ``auto`` falls back to ``plain``."""

    configured: str  # as ``[isolation] launcher`` says it
    launcher: str  # the launcher module to build; "" when refused
    warning: str = ""
    refusal: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.refusal)

    @property
    def confined(self) -> bool:
        """The agents run under a launcher that confines them (not ``plain``)."""
        return bool(self.launcher) and self.launcher != PLAIN

    def required(self) -> str:
        """The launcher to build; :class:`~claudomator.errors.ConfigError` when refused."""
        if self.refused:
            raise ConfigError(self.refusal)
        return self.launcher

    def summary(self) -> str:
        """The start-up line: which confinement the agents get (or why none can start)."""
        if self.refused:
            return self.refusal
        if self.warning:
            return self.warning
        if self.confined:
            return f"agents run confined ({self.launcher})"
        return f"agents run unconfined ({self.launcher} launcher)"


def choose(configured: str, unavailable_reason: str) -> Choice:
    """The launcher ``configured`` comes to, given why bubblewrap cannot run here (``""``: it
    can). ``unavailable_reason`` only matters for ``bubblewrap`` and ``auto``."""
    if configured == BUBBLEWRAP:
        if unavailable_reason:
            return Choice(
                configured,
                "",
                refusal=(
                    f'[isolation] launcher = "bubblewrap", but bubblewrap cannot run here: '
                    f"{unavailable_reason}. To confine the agents, {INSTALL_HINT}; to run them "
                    'unconfined, set [isolation] launcher = "plain" (or "auto": bubblewrap '
                    "when it can run, else plain)."
                ),
            )
        return Choice(configured, BUBBLEWRAP)
    if configured == AUTO:
        if unavailable_reason:
            return Choice(
                configured,
                PLAIN,
                warning=(
                    f'agents run unconfined (plain launcher): [isolation] launcher = "auto" and '
                    f"bubblewrap cannot run here: {unavailable_reason}; to confine them, "
                    f"{INSTALL_HINT}"
                ),
            )
        return Choice(configured, BUBBLEWRAP)
    return Choice(configured, configured)


def bubblewrap_unavailable(settings: Settings) -> str:
    """Why the bubblewrap launcher cannot run here (``""``: it can), as its module says
    (``claudomator.isolation.bubblewrap.unavailable``); :data:`NOT_INSTALLED` without it."""
    try:
        module = importlib.import_module("claudomator.isolation.bubblewrap")
    except ModuleNotFoundError as exc:
        if exc.name != "claudomator.isolation.bubblewrap":
            raise
        return NOT_INSTALLED
    unavailable = getattr(module, "unavailable", None)
    if not callable(unavailable):
        return NOT_INSTALLED
    return str(cast(Callable[[object], str], unavailable)(settings))


def resolve(settings: Settings) -> Choice:
    """What ``settings.isolation.launcher`` comes to on this machine (bubblewrap looked up only
    when the setting may use it)."""
    configured = settings.isolation.launcher
    reason = bubblewrap_unavailable(settings) if configured in CHOICES else ""
    choice = choose(configured, reason)
    logger.debug(
        "isolation: %s -> %s",
        configured,
        choice.launcher or "refused",
        extra={"action": "isolation"},
    )
    return choice


def with_launcher(settings: Settings, name: str) -> Settings:
    """``settings`` with ``[isolation] launcher = name`` (what the choice resolved ``auto``
    to), for whoever builds the launcher by name
    (:meth:`claudomator.agents.registry.AgentRegistry.launcher`)."""
    if settings.isolation.launcher == name:
        return settings
    isolation = settings.isolation.model_copy(update={"launcher": name})
    return settings.model_copy(update={"isolation": isolation})


def chosen_settings(settings: Settings) -> Settings:
    """``settings`` with ``[isolation] launcher`` replaced by the launcher it resolves to here
    (:func:`resolve`); :class:`~claudomator.errors.ConfigError` when that is a refusal."""
    return with_launcher(settings, resolve(settings).required())
