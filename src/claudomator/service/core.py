"""What every part of the service stands on: the settings, the store and the collaborators the
composition root (:meth:`ServiceCore.open`, or :class:`claudomator.runtime.Runtime`) hands over.

Collaborators that cost an import (the agent registry, the sandboxes) are taken as given or
made on first use, so ``import claudomator.service`` and ``claudomator list`` stay cheap.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Self

from claudomator import tokens
from claudomator.errors import InvalidTransition
from claudomator.logs.local import LocalLogStore

if TYPE_CHECKING:
    from claudomator.agents.registry import AgentRegistry
    from claudomator.config import Settings
    from claudomator.logs.base import LogStore
    from claudomator.sandbox import Sandboxes
    from claudomator.store.base import Store

logger = logging.getLogger(__name__)

# what each action says when the task's state does not allow it (the CLI and the API alike)
_REFUSALS = {
    "submit": "task {id} is {state}, not a PENDING draft; nothing to submit",
    "cancel": "task {id} is already {state}; nothing to cancel",
    "answer": "task {id} is {state}, not BLOCKED; no question to answer",
    "accept": "task {id} is {state}, not READY; only READY tasks can be accepted",
    "reject": "task {id} is {state}, not READY; only READY tasks can be rejected",
    "retry": (
        "task {id} is {state}: only FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED tasks "
        "can be retried"
    ),
    "edit": "task {id} is {state}: only PENDING or QUEUED tasks can be edited",
    "again": (
        "task {id} is {state}: only ended (COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED or "
        "CANCELLED) tasks can be run again"
    ),
    "delete": "task {id} is {state}: cancel it first, then delete it",
}


@contextmanager
def refusing(action: str) -> Iterator[None]:
    """Turn the state machine's refusal into what ``action`` needs and which state it is in."""
    try:
        yield
    except InvalidTransition as exc:
        message = _REFUSALS[action].format(id=exc.task_id, state=exc.source)
        raise InvalidTransition(exc.task_id, exc.source, exc.target, message) from exc


def same_dir(a: str, b: str) -> bool:
    """Whether two project directories are the same folder (both empty counts)."""
    if not a or not b:
        return a == b
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def local_sandboxes(settings: Settings) -> Sandboxes:
    """The sandboxes under the data dir, as a process without a pool sees them."""
    from claudomator.sandbox import Sandboxes  # git plumbing: not for `list`

    return Sandboxes(settings.sandboxes_dir, data_dir=settings.data_dir)


class ServiceCore:
    """The service's state: settings, store and collaborators (see the module docstring).

    ``logs`` is where executions' log files are read (local disk under the data dir unless
    given); ``sandboxes`` gives the sandboxes accepted work is released into (made on first use
    unless given: the runtime gives its pool's); ``agents`` is the agent registry readiness is
    reported for (the built-ins unless given).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        on_submit: Callable[[], None] | None = None,
        agents: AgentRegistry | None = None,
        logs: LogStore | None = None,
        sandboxes: Callable[[], Sandboxes] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_submit = on_submit
        self.logs: LogStore = logs or LocalLogStore(settings.logs_dir)
        self.sandboxes: Callable[[], Sandboxes] = sandboxes or functools.cache(
            functools.partial(local_sandboxes, settings)
        )
        self._agents = agents

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        agents: AgentRegistry | None = None,
        logs: LogStore | None = None,
        sandboxes: Callable[[], Sandboxes] | None = None,
        quick: bool = False,
    ) -> Self:
        """Open the configured database (migrating it) and build the service with its
        collaborators; the data dir gets its agent-token key here if it has none (agents'
        tokens are never minted with a key made later). ``quick``: for a short command (see
        :class:`~claudomator.store.quick.QuickStore`)."""
        from claudomator.store.open import open_store  # the database driver: only when opened

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.database_url or settings.db_path, quick=quick)
        try:
            tokens.token_key(settings.data_dir)
        except BaseException:
            store.close()
            raise
        logs = logs or LocalLogStore(settings.logs_dir)
        return cls(settings, store, agents=agents, logs=logs, sandboxes=sandboxes)

    @property
    def agents(self) -> AgentRegistry:
        """The agent registry this service reports readiness for."""
        if self._agents is None:
            from claudomator.agents.registry import default_registry  # every runner's module

            self._agents = default_registry()
        return self._agents

    def close(self) -> None:
        self.store.close()
