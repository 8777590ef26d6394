"""The launcher that picks, per process, the launcher its :class:`~claudomator.isolation.base.
Access` names: a project or task may confine its agents more (or, when the operator allows,
less) than the orchestrator's own launcher (:mod:`claudomator.isolation.policy`).

:class:`SelectingLauncher` is built once (:meth:`claudomator.agents.registry.AgentRegistry.
launcher`) around the orchestrator's launcher; every other launcher it is asked for is built on
first use and kept. :meth:`SelectingLauncher.settle` turns a policy's
:class:`~claudomator.isolation.base.Confinement` into a :class:`Settled` one: the launcher
really used (``auto`` resolved on this machine), the refusal of an explicit ``bubblewrap`` that
cannot run here (the task fails, never runs unconfined in its place), or the warning of an
``auto`` that fell back to ``plain``, and the line the execution records.

Not a launcher: its name starts with ``_``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.errors import ConfigError
from claudomator.isolation import build_launcher
from claudomator.isolation._choice import (
    AUTO,
    BUBBLEWRAP,
    INSTALL_HINT,
    PLAIN,
    Choice,
    bubblewrap_unavailable,
    with_launcher,
)
from claudomator.isolation.base import Access, Confinement, Launcher
from claudomator.isolation.policy import describe

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    """What one execution's confinement comes to here.

    ``confinement.launcher`` is the launcher the agent starts through (never ``auto``, never
    empty) unless ``refusal`` says why it cannot start at all. ``warning``: an ``auto`` that
    fell back to ``plain`` (said in the log and recorded on the execution). ``record``: the
    line :attr:`claudomator.models.Execution.confinement` keeps."""

    confinement: Confinement
    record: str
    warning: str = ""
    refusal: str = ""


def settle(
    confinement: Confinement, choice: Choice, unavailable: Callable[[], str], *, origin: str = ""
) -> Settled:
    """``confinement`` (a policy's) settled against the orchestrator's own ``choice`` and
    bubblewrap's availability here (``unavailable()``: why it cannot run, "" when it can;
    asked only when it matters). ``origin`` names who asked for the launcher, for messages."""
    requested = confinement.launcher
    if not requested:  # the orchestrator's own, settled when it started
        own = dataclasses.replace(confinement, launcher=choice.launcher)
        note = ""
        if choice.warning:  # "auto" fell back to plain when the orchestrator started
            note = f"{AUTO}: bubblewrap unavailable: {unavailable()}"
        return Settled(own, describe(choice.launcher, own, note), warning=choice.warning)
    who = origin or "the task's confinement"
    if requested not in (BUBBLEWRAP, AUTO):
        chosen = dataclasses.replace(confinement, launcher=requested)
        return Settled(chosen, describe(requested, chosen))
    reason = unavailable()
    if not reason:
        chosen = dataclasses.replace(confinement, launcher=BUBBLEWRAP)
        return Settled(chosen, describe(BUBBLEWRAP, chosen))
    if requested == BUBBLEWRAP:
        refusal = (
            f'{who} = "bubblewrap", but bubblewrap cannot run here: {reason}. To confine '
            f'this agent, {INSTALL_HINT}; to let it run unconfined, set {who} = "auto" (or '
            '"plain")'
        )
        return Settled(confinement, f"refused: {refusal}", refusal=refusal)
    plain = dataclasses.replace(confinement, launcher=PLAIN)
    warning = (
        f'runs unconfined (plain launcher): {who} = "auto" and bubblewrap cannot run here: '
        f"{reason}; to confine it, {INSTALL_HINT}"
    )
    return Settled(
        plain, describe(PLAIN, plain, f"{AUTO}: bubblewrap unavailable: {reason}"), warning
    )


class SelectingLauncher:
    """Starts each process through the launcher its :class:`Access` names (``launcher``; ""
    for the orchestrator's own), building each other launcher once, when first needed.

    Its ``name`` is the orchestrator's launcher's: what a process started with an empty
    ``Access.launcher`` gets."""

    def __init__(self, settings: Settings, choice: Choice, own: Launcher) -> None:
        self.settings = settings
        self.choice = choice  # the orchestrator's: what [isolation] launcher came to here
        self.own = own
        self.name = own.name
        self._built: dict[str, Launcher] = {own.name: own}
        self._unavailable: str | None = None
        self._lock = threading.Lock()

    def unavailable(self) -> str:
        """Why bubblewrap cannot run here ("" when it can), looked up once (it runs bwrap:
        call it off the event loop)."""
        with self._lock:
            if self._unavailable is None:
                if self.choice.launcher == BUBBLEWRAP:
                    self._unavailable = ""  # the orchestrator runs its agents under it
                else:
                    self._unavailable = bubblewrap_unavailable(self.settings)
            return self._unavailable

    def settle(self, confinement: Confinement, *, origin: str = "") -> Settled:
        """``confinement`` as it comes to here (:func:`settle`); may run bwrap once."""
        return settle(confinement, self.choice, self.unavailable, origin=origin)

    def launcher(self, name: str) -> Launcher:
        """The launcher ``name`` ("": the orchestrator's), built on first use;
        :class:`~claudomator.errors.ConfigError` for ``auto`` (settle it first) or an unknown
        name."""
        if not name:
            return self.own
        with self._lock:
            found = self._built.get(name)
            if found is None:
                if name == AUTO:
                    raise ConfigError('launcher "auto" must be settled before a process starts')
                found = build_launcher(name, with_launcher(self.settings, name))
                self._built[name] = found
                logger.info(
                    "launcher %s built for the projects or tasks that ask for it",
                    name,
                    extra={"action": "isolation"},
                )
            return found

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        return self.launcher(paths.launcher).wrap(argv, cwd, env, paths)


def as_selecting(launcher: Launcher | None) -> SelectingLauncher | None:
    """``launcher`` if it can select (the orchestrator's), else None."""
    return launcher if isinstance(launcher, SelectingLauncher) else None
