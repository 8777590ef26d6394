"""The start-up line of ``serve`` and ``run``: which confinement the agents get
(:func:`claudomator.isolation._choice.resolve`), or the refusal to start (exit 2): an
unusable explicit bubblewrap, or a ``network = "model-only"`` this machine cannot enforce
(:func:`claudomator.isolation._host.network_problem`)."""

from __future__ import annotations

import logging

from claudomator.cli.common import fail, make_console
from claudomator.config import Settings
from claudomator.isolation._choice import Choice, resolve
from claudomator.isolation._host import network_problem

logger = logging.getLogger(__name__)


def confinement(settings: Settings) -> Choice:
    """Which confinement the agents get; exit 2 (nothing started) when ``[isolation] launcher``
    asks for bubblewrap and it cannot run here, or ``[isolation] network = "model-only"``
    cannot be enforced (the plain launcher, no network namespace). Called before anything
    opens."""
    choice = resolve(settings)
    if choice.refused:
        raise fail(choice.refusal, 2)
    problem = network_problem(settings.isolation.network, choice.launcher)
    if problem:
        raise fail(problem, 2)
    return choice


def announce(choice: Choice) -> None:
    """Say once, on stderr, which confinement the agents get (once the database opened: a
    data dir that cannot be opened is the one error line)."""
    style = "yellow" if choice.warning else ("green" if choice.confined else None)
    make_console(stderr=True).print(choice.summary(), style=style, markup=False, soft_wrap=True)
