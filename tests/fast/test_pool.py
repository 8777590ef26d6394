"""The local pool over the in-memory store with scripted agents: claims, limits, dependencies,
rate limits, cancels, shutdown, questions, reconcile."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from claudomator.chooser import Choice
from claudomator.config import Settings
from claudomator.dispatch import Dispatcher, Pool
from claudomator.models import AgentStatus, Execution, Task, TaskState, new_id
from conftest import MakeRepo, git
from fast.conftest import Rig, make_rig, task
from fast.scripted import (
    ScriptedRunner,
    asks,
    completed,
    crashes,
    failed,
    held,
    rate_limited,
)

ROUNDS = 0.05  # seconds: several claim rounds of a pool polling every 10 ms


def test_the_pool_is_a_dispatcher(rig: Rig) -> None:
    dispatcher: Dispatcher = rig.pool()  # mypy checks the protocol; the view is the running map
    assert dispatcher.running == {}


async def test_a_completed_run_is_recorded(rig: Rig, runner: ScriptedRunner) -> None:
    runner.then(completed("all done", **{"notes.txt": "written by the agent\n"}))
    await rig.started()
    [t] = rig.submit(task("write notes", "scripted"))
    done = await rig.reaches(t.id, TaskState.COMPLETED)
    [execution] = rig.memory.executions_of(t.id)
    assert execution.status == TaskState.COMPLETED
    assert execution.summary == "all done"
    assert [c.message for c in execution.commits] != []  # the file was committed in the sandbox
    [call] = runner.calls
    assert call.resume is False
    assert call.session_id == execution.session_id
    assert "do write notes" in call.prompt
    assert call.env["CLAUDOMATOR_TASK_ID"] == t.id
    assert done.summary == "all done"


async def test_the_agents_commit_is_delivered_to_its_project(
    rig: Rig, runner: ScriptedRunner, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    runner.then(completed("added it", **{"feature.txt": "new\n"}))
    await rig.started()
    [t] = rig.submit(
        task("add a feature", "scripted").model_copy(
            update={
                "agent": task("x", "scripted").agent.model_copy(update={"project_dir": str(repo)})
            }
        )
    )
    await rig.reaches(t.id, TaskState.COMPLETED)
    [execution] = rig.memory.executions_of(t.id)
    assert execution.delivery is not None
    [commit] = execution.commits
    branches = git(repo, "branch", "--contains", commit.hash, "--format=%(refname:short)")
    assert branches  # pushed to main or kept as the task's branch
    assert not (repo / "feature.txt").exists() or git(repo, "status", "--porcelain") == ""


async def test_claims_stop_at_max_concurrent(rig: Rig, runner: ScriptedRunner) -> None:
    runner.then(held(), held(), held())
    pool = await rig.started(max_concurrent=2)
    a, b, c = rig.submit(task("a", "scripted"), task("b", "scripted"), task("c", "scripted"))
    await rig.runs("scripted", a.id)
    await rig.runs("scripted", b.id)
    await asyncio.sleep(ROUNDS)
    assert rig.get(c.id).state == TaskState.QUEUED
    assert set(pool.running) == {a.id, b.id}
    runner.release(a.id)
    await rig.runs("scripted", c.id)
    runner.release(b.id)
    runner.release(c.id)
    for t in (a, b, c):
        await rig.reaches(t.id, TaskState.COMPLETED)
    assert runner.most_at_once == 2


async def test_an_agent_limit_leaves_slots_to_the_others(settings: Settings) -> None:
    alpha = ScriptedRunner([held(), held()], name="alpha")
    beta = ScriptedRunner([held()], name="beta")
    limited = settings.model_copy(update={"agent_limits": {"alpha": 1}})
    rig = make_rig(limited, {"alpha": alpha, "beta": beta})
    try:
        await rig.started(max_concurrent=3)
        a1, a2, b1 = rig.submit(task("a1", "alpha"), task("a2", "alpha"), task("b1", "beta"))
        await rig.runs("alpha", a1.id)
        await rig.runs("beta", b1.id)
        await asyncio.sleep(ROUNDS)
        assert rig.get(a2.id).state == TaskState.QUEUED  # a slot is free, but not for alpha
        alpha.release(a1.id)
        await rig.runs("alpha", a2.id)
        assert alpha.most_at_once == 1
        alpha.release(a2.id)
        beta.release(b1.id)
        await rig.reaches(a2.id, TaskState.COMPLETED)
    finally:
        for pool in rig.pools:
            await pool.shutdown()


async def test_an_unpinned_task_goes_to_the_least_loaded_agent_or_the_choosers(
    settings: Settings,
) -> None:
    alpha = ScriptedRunner([held(), completed()], name="alpha")
    beta = ScriptedRunner([completed(), completed()], name="beta")
    rig = make_rig(settings, {"alpha": alpha, "beta": beta})
    asked: list[list[str]] = []

    async def chooser(
        t: Task, available: list[str], counts: dict[str, int], blocked: dict[str, str]
    ) -> Choice:
        asked.append(available)
        return Choice("nobody" if t.name == "odd" else "alpha", reason="the chooser said so")

    try:
        await rig.started(max_concurrent=3)
        [first] = rig.submit(task("first", "alpha"))
        await rig.runs("alpha", first.id)
        [free] = rig.submit(task("free"))  # alpha is busy: beta is the least loaded
        await rig.reaches(free.id, TaskState.COMPLETED)
        assert [c.task_id for c in beta.calls] == [free.id]
        alpha.release(first.id)
        await rig.reaches(first.id, TaskState.COMPLETED)
        await rig.pools[0].shutdown()
        await rig.started(chooser=chooser)  # now with a chooser
        chosen, odd = rig.submit(task("chosen"), task("odd"))
        await rig.reaches(chosen.id, TaskState.COMPLETED)
        await rig.reaches(odd.id, TaskState.COMPLETED)
        assert [c.task_id for c in alpha.calls][-1] == chosen.id
        assert beta.calls[-1].task_id == odd.id  # not an available agent: the fallback
        assert asked
        assert all(set(a) == {"alpha", "beta"} for a in asked)
        reasons = [e.reason for e in rig.memory.events(chosen.id)]
        assert any("agent alpha: the chooser said so" in r for r in reasons)
    finally:
        for pool in rig.pools:
            await pool.shutdown()


async def test_dependencies_gate_the_claim(rig: Rig, runner: ScriptedRunner) -> None:
    runner.then(held(), completed())
    await rig.started()
    first = task("first", "scripted")
    second = task("second", "scripted", depends_on=[first.id])
    rig.submit(first, second)
    await rig.runs("scripted", first.id)
    await asyncio.sleep(ROUNDS)
    assert rig.get(second.id).state == TaskState.QUEUED
    assert [c.task_id for c in runner.calls] == [first.id]
    runner.release(first.id)
    await rig.reaches(second.id, TaskState.COMPLETED)
    assert [c.task_id for c in runner.calls] == [first.id, second.id]


async def test_a_failed_or_missing_dependency_fails_the_task(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(failed("no luck"))
    await rig.started()
    first = task("first", "scripted")
    second = task("second", "scripted", depends_on=[first.id])
    orphan = task("orphan", "scripted", depends_on=["no-such-task"])
    rig.submit(first, second, orphan)
    await rig.reaches(second.id, TaskState.FAILED)
    await rig.reaches(orphan.id, TaskState.FAILED)
    assert rig.memory.events(second.id)[-1].reason == f"dependency {first.id} ended FAILED"
    assert rig.memory.events(orphan.id)[-1].reason == "dependency no-such-task does not exist"
    assert [c.task_id for c in runner.calls] == [first.id]
    assert rig.memory.agent_status("scripted").consecutive_failures == 1


async def test_a_rate_limited_agent_backs_off_and_its_task_is_requeued(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(rate_limited(), completed("second try"))
    pool = await rig.started()
    [t] = rig.submit(task("limited", "scripted"))
    requeued = await rig.requeued(t.id)
    assert "rate_limit on scripted; re-queued until" in rig.memory.events(t.id)[-1].reason
    status = rig.memory.agent_status("scripted")
    assert status.limited_until is not None
    assert status.rate_limit_strikes == 1
    assert not pool.readiness()["scripted"].usable
    await asyncio.sleep(ROUNDS)
    assert len(runner.calls) == 1  # not claimed again while the agent is limited
    assert rig.memory.executions_of(t.id)[0].status == TaskState.QUEUED
    rig.memory.save_agent_status(AgentStatus(agent="scripted"))  # the window ended
    pool.wake()
    done = await rig.reaches(t.id, TaskState.COMPLETED)
    assert done.summary == "second try"
    assert requeued.state == TaskState.QUEUED


async def test_a_cancel_stops_the_running_agent(rig: Rig, runner: ScriptedRunner) -> None:
    runner.then(held())
    await rig.started()
    [t] = rig.submit(task("long", "scripted"))
    await rig.runs("scripted", t.id)
    assert rig.service.cancel(t.id).cancel_requested
    cancelled = await rig.reaches(t.id, TaskState.CANCELLED)
    assert not runner.active
    assert cancelled.state == TaskState.CANCELLED
    assert rig.memory.executions_of(t.id)[-1].status == TaskState.CANCELLED


async def test_shutdown_requeues_or_cancels_the_running_tasks(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(held(), held())
    pool = await rig.started()
    [t] = rig.submit(task("interrupted", "scripted"))
    await rig.runs("scripted", t.id)
    await pool.shutdown()
    assert rig.get(t.id).state == TaskState.QUEUED
    assert rig.memory.events(t.id)[-1].reason == "orchestrator shutdown; re-queued"
    assert rig.memory.executions_of(t.id)[-1].error_msg == "interrupted by orchestrator shutdown"
    again = await rig.started()
    await rig.runs("scripted", t.id)
    await again.shutdown(requeue=False)
    assert rig.get(t.id).state == TaskState.CANCELLED


async def test_a_held_run_times_out(rig: Rig, runner: ScriptedRunner) -> None:
    runner.then(held())
    await rig.started()
    [t] = rig.submit(task("slow", "scripted", timeout=0.05))
    ended = await rig.reaches(t.id, TaskState.TIMED_OUT)
    assert rig.memory.executions_of(t.id)[-1].error_msg.startswith("timed out after 0.05s")
    assert ended.state == TaskState.TIMED_OUT


async def test_a_crashing_runner_fails_its_task_with_an_internal_error(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(crashes("boom"), completed())
    await rig.started()
    [t] = rig.submit(task("buggy", "scripted"))
    await rig.reaches(t.id, TaskState.FAILED)
    [execution] = rig.memory.executions_of(t.id)
    assert execution.status == TaskState.FAILED
    assert execution.error_msg == "internal error: RuntimeError('boom')"
    assert rig.memory.events(t.id)[-1].reason == "internal error: boom"


async def test_a_blocked_task_resumes_the_same_session_in_the_same_sandbox(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(asks("Which colour?", "red", "blue"), completed("painted it red"))
    await rig.started()
    [t] = rig.submit(task("paint", "scripted"))
    blocked = await rig.reaches(t.id, TaskState.BLOCKED)
    assert blocked.question is not None
    assert "Which colour?" in blocked.question
    [interaction] = rig.memory.interactions_of(t.id)
    assert list(interaction.options) == ["red", "blue"]
    rig.service.answer(t.id, "red")
    for pool in rig.pools:
        pool.wake()
    await rig.reaches(t.id, TaskState.COMPLETED)
    first, second = runner.calls
    assert second.resume is True
    assert second.session_id == first.session_id
    assert second.workdir == first.workdir
    assert "red" in second.prompt
    assert second.execution_id != first.execution_id


async def test_reconcile_requeues_a_dead_orchestrators_task(
    rig: Rig, runner: ScriptedRunner
) -> None:
    runner.then(completed("ran again"))
    [t] = rig.memory.add_tasks([task("orphaned", "scripted")])
    dead = Execution(
        id=new_id(),
        task_id=t.id,
        agent="scripted",
        worker_id=f"{socket.gethostname()}:1:gone0000-1",  # a boot that is over
        stdout_path=str(Path(rig.settings.logs_dir) / "x" / "stdout.log"),
        stderr_path=str(Path(rig.settings.logs_dir) / "x" / "stderr.log"),
    )
    rig.memory.transition(
        t.id, TaskState.RUNNING, "claimed", expected=TaskState.QUEUED, execution=dead
    )
    pool = rig.pool()
    assert pool.reconcile() == 1
    assert rig.get(t.id).state == TaskState.QUEUED
    await pool.start()
    await rig.reaches(t.id, TaskState.COMPLETED)
    assert rig.memory.get_execution(dead.id).status == TaskState.QUEUED


def test_an_empty_pool_has_every_runner_usable(rig: Rig) -> None:
    pool: Pool = rig.pool()
    assert {n: r.usable for n, r in pool.readiness().items()} == {"scripted": True}
    [health] = pool.agent_health().values()
    assert (health.agent, health.consecutive_failures, health.limited_until) == (
        "scripted",
        0,
        None,
    )
