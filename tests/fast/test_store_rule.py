"""The store rule: async code calls the (synchronous) store only through the store executor
(``Blocking.store``) or ``until_stored``, never on the event loop's thread."""

from __future__ import annotations

import threading
from typing import Any, cast

from claudomator.config import Settings
from claudomator.models import AgentStatus, TaskState
from claudomator.store.base import Store
from claudomator.store.memory import MemoryStore
from fast.conftest import Rig, make_rig, task
from fast.scripted import ScriptedRunner, asks, completed, crashes, failed, held, rate_limited


class OffLoopStore:
    """``inner``, refusing (and noting) every method called on the thread of the event loop."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.loop_thread: int | None = None  # set once the loop runs
        self.on_loop: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name.startswith("_") or not callable(found):
            return found

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.loop_thread:
                self.on_loop.append(name)
                raise AssertionError(f"store.{name} called on the event loop")
            return found(*args, **kwargs)

        return guarded


def guarded_rig(settings: Settings, runner: ScriptedRunner) -> tuple[Rig, OffLoopStore]:
    proxies: list[OffLoopStore] = []

    def wrap(memory: MemoryStore) -> Store:
        proxies.append(OffLoopStore(memory))
        return cast(Store, proxies[0])

    return make_rig(settings, {runner.name: runner}, wrap), proxies[0]


async def test_a_pool_round_calls_the_store_only_off_the_loop(settings: Settings) -> None:
    runner = ScriptedRunner(
        [
            completed("plain", **{"a.txt": "a\n"}),
            failed("broken"),
            rate_limited(),
            asks("Go on?", "yes", "no"),
            held(),
            crashes("boom"),
        ]
    )
    rig, guard = guarded_rig(settings, runner)
    guard.loop_thread = threading.get_ident()
    try:
        pool = await rig.started()
        first = task("plain", "scripted")
        dependent = task("dependent", "scripted", depends_on=[first.id])
        a, b = rig.submit(first, dependent)
        await rig.reaches(a.id, TaskState.COMPLETED)
        await rig.reaches(b.id, TaskState.FAILED)  # the scripted failure
        [limited] = rig.submit(task("limited", "scripted"))
        await rig.requeued(limited.id)
        rig.memory.save_agent_status(AgentStatus(agent="scripted"))  # the window ended
        pool.wake()
        await rig.reaches(limited.id, TaskState.BLOCKED)
        [free] = rig.submit(task("free"))  # unpinned: the choice reads its executions
        await rig.runs("scripted", free.id)
        rig.service.cancel(free.id)
        await rig.reaches(free.id, TaskState.CANCELLED)
        [buggy] = rig.submit(task("buggy", "scripted"))
        await rig.reaches(buggy.id, TaskState.FAILED)  # recorded through until_stored
    finally:
        for started in rig.pools:
            await started.shutdown()
        assert guard.on_loop == [], (
            f"store methods called on the event loop: {sorted(set(guard.on_loop))}"
        )
