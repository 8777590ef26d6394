"""The store contract beyond single tasks: listing, editing and deleting tasks, the event feed,
questions, agent health, intake keys, the catalog, push subscriptions and aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from claudomator.errors import InvalidTransition, NotFound, ProjectExists
from claudomator.models import (
    AgentConfig,
    AgentStatus,
    Commit,
    DeliveryRecord,
    Execution,
    Interaction,
    Project,
    PushSubscription,
    Story,
    Task,
    TaskCost,
    TaskState,
    utcnow,
)
from claudomator.store.base import Store
from claudomator.store.intents import DeliveryIntent
from contract import backends

store = backends.store  # the fixture: each test runs on every backend

S = TaskState


def _task(name: str = "t", **fields: object) -> Task:
    return Task.model_validate({"name": name, "agent": AgentConfig(instructions="x"), **fields})


def test_list_tasks_filters_combine_and_paginate(store: Store) -> None:
    story = store.add_story(Story(name="s"))
    parent = store.add_tasks([_task("parent")])[0]
    a, b, c = store.add_tasks(
        [
            _task("a", tags=("x", "y"), parent_task_id=parent.id, story_id=story.id),
            _task("b", tags=("x",), agent=AgentConfig(instructions="x", project_dir="/p")),
            _task("c"),
        ]
    )
    assert [t.name for t in store.list_tasks()] == ["c", "b", "a", "parent"]
    assert [t.name for t in store.list_tasks(tags=["x"])] == ["b", "a"]
    assert [t.name for t in store.list_tasks(tags=["x", "y"])] == ["a"]
    assert [t.name for t in store.list_tasks(parent=parent.id)] == ["a"]
    assert [t.name for t in store.list_tasks(story=story.id)] == ["a"]
    assert [t.name for t in store.list_tasks(project_dir="/p")] == ["b"]
    assert [t.name for t in store.list_tasks(project_dir="")] == ["c", "a", "parent"]
    assert [t.name for t in store.list_tasks(limit=2, offset=1)] == ["b", "a"]
    assert [t.name for t in store.list_tasks(offset=3)] == ["parent"]
    assert [t.name for t in store.queued_tasks(limit=1, offset=1)] == ["a"]
    assert store.children_of([parent.id]) == [a]
    checker = store.add_tasks([_task("check", checker_for_task_id=b.id)])[0]
    assert store.children_of([parent.id, b.id]) == [a, checker]
    assert store.children_of([]) == []
    assert store.story_progress(story.id) == {S.QUEUED: 1}
    store.add_tasks([_task("c")])
    assert [t.id for t in store.tasks_named("c")][1:] == [c.id]
    assert store.tasks_named("c", limit=1)[0].id != c.id


def test_cancel_requests(store: Store) -> None:
    a, b = store.add_tasks([_task("a"), _task("b")])
    assert store.request_cancel(a.id) is False  # QUEUED: nothing to stop
    store.transition(a.id, S.RUNNING, "claim")
    assert store.request_cancel(a.id) is True
    assert store.cancel_requested([a.id, b.id, "missing"]) == {a.id}
    assert store.cancel_requested([]) == set()
    assert store.request_cancel("missing") is False


def test_replace_task_only_in_the_allowed_states(store: Store) -> None:
    [task] = store.add_tasks([_task("old", tags=("a",))], submit=False)
    edited = task.model_copy(update={"name": "new", "tags": ("b", "c"), "summary": "ignored"})
    replaced = store.replace_task(edited, only_in=[S.PENDING])
    assert (replaced.name, replaced.tags, replaced.state) == ("new", ("b", "c"), S.PENDING)
    assert replaced.summary == ""  # not part of the definition
    assert [t.name for t in store.list_tasks(tags=["b"])] == ["new"]
    assert store.list_tasks(tags=["a"]) == []
    with pytest.raises(InvalidTransition) as info:
        store.replace_task(edited, only_in=[S.QUEUED])
    assert (info.value.source, info.value.target) == ("PENDING", "edited")
    with pytest.raises(NotFound):
        store.replace_task(_task("ghost"), only_in=[S.PENDING])


def test_delete_task_takes_its_history(store: Store) -> None:
    a, b = store.add_tasks([_task("a"), _task("b")])
    store.transition(a.id, S.RUNNING, "claim", execution=Execution(task_id=a.id))
    store.add_interaction(Interaction(task_id=a.id, execution_id="e", question="q?"))
    with pytest.raises(InvalidTransition):
        store.delete_task(a.id, not_in=[S.RUNNING])
    store.transition(a.id, S.CANCELLED, "stop")
    store.delete_task(a.id, not_in=[S.RUNNING])
    with pytest.raises(NotFound):
        store.get_task(a.id)
    assert (store.events(a.id), store.executions_of(a.id)) == ([], [])
    assert store.interactions_of(a.id) == []
    assert [t.id for t in store.list_tasks()] == [b.id]
    with pytest.raises(NotFound):
        store.delete_task(a.id, not_in=[])


def test_event_feed(store: Store) -> None:
    assert store.last_event_id() == 0
    assert store.events_since(0) == []
    a, b = store.add_tasks([_task("a"), _task("b")])
    store.transition(b.id, S.RUNNING, "claim")
    feed = store.events_since(0)
    assert [(e.task_id, e.to_state) for e in feed] == [
        (a.id, S.PENDING),
        (a.id, S.QUEUED),
        (b.id, S.PENDING),
        (b.id, S.QUEUED),
        (b.id, S.RUNNING),
    ]
    ids = [e.id or 0 for e in feed]
    assert ids == sorted(ids)
    assert store.last_event_id() == ids[-1]
    assert store.events_since(ids[2], limit=1) == [feed[3]]


def test_closing_a_running_execution_once(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    running = store.add_execution(Execution(task_id=task.id, status=S.RUNNING))
    delivery = DeliveryRecord(how="branch", project_dir="/p", branch="claudomator/x")
    commits = [Commit(hash="c" * 40, message="m")]
    assert store.close_running_execution(
        running.id, S.FAILED, "lost", commits=commits, cost_known=False, delivery=delivery
    )
    closed = store.get_execution(running.id)
    assert (closed.status, closed.error_msg, closed.cost_known) == (S.FAILED, "lost", False)
    assert closed.commits == tuple(commits)
    assert closed.delivery == delivery
    assert closed.end_time is not None
    assert not store.close_running_execution(running.id, S.COMPLETED, "again")
    assert store.get_execution(running.id).status == S.FAILED
    assert store.running_executions() == []
    assert store.delivered_executions() == [closed]


def test_delivery_intents_are_overwritten(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    execution = store.add_execution(Execution(task_id=task.id))
    assert store.delivery_intent(execution.id) is None
    intent = DeliveryIntent(execution.id, task.id, "/p", "/s", "main", "a" * 40)
    store.record_delivery_intent(intent)
    assert store.delivery_intent(execution.id) == intent
    later = DeliveryIntent(execution.id, task.id, "/p", "/s", "main", "a" * 40, head="b" * 40)
    store.record_delivery_intent(later)
    assert store.delivery_intent(execution.id) == later


def test_questions_are_answered_once(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    first = store.add_interaction(
        Interaction(task_id=task.id, execution_id="e", question="which?", options=("a", "b"))
    )
    second = store.add_interaction(Interaction(task_id=task.id, execution_id="e", question="2?"))
    assert first.id is not None
    assert second.id is not None
    assert first.id < second.id
    assert store.answer_interaction(first.id, "a") is True
    assert store.answer_interaction(first.id, "b") is False
    asked = store.interactions_of(task.id)
    assert [(q.question, q.options, q.answer) for q in asked] == [
        ("which?", ("a", "b"), "a"),
        ("2?", (), ""),
    ]
    assert asked[0].answered_at is not None
    assert asked[1].answered_at is None


def test_agent_status_is_replaced(store: Store) -> None:
    unknown = store.agent_status("claude")  # never saved: a healthy agent
    assert (unknown.agent, unknown.limited_until, unknown.rate_limit_strikes) == ("claude", None, 0)
    assert store.agent_statuses() == {}
    until = datetime(2030, 1, 1, tzinfo=UTC)
    store.save_agent_status(AgentStatus(agent="claude", limited_until=until, rate_limit_strikes=1))
    store.save_agent_status(AgentStatus(agent="claude", limited_until=until, rate_limit_strikes=2))
    assert store.agent_status("claude").rate_limit_strikes == 2
    assert store.agent_status("claude").limited_until == until
    assert list(store.agent_statuses()) == ["claude"]


def test_intake_keys_hold_one_task_per_event(store: Store) -> None:
    assert store.intake_holder("k") is None
    assert store.reserve_intake_key("k", "t1") is None
    assert store.reserve_intake_key("k", "t2") == "t1"  # reserved lately
    assert store.intake_holder("k") == "t1"
    # a stale reservation of a task that was never stored is free again, and taken over
    assert store.intake_holder("k", stale_after=0) is None
    assert store.reserve_intake_key("k", "t2", stale_after=0) is None
    assert store.intake_holder("k") == "t2"
    # a stored task holds its key however old the reservation
    [task] = store.add_tasks([_task()])
    assert store.reserve_intake_key("stored", task.id) is None
    assert store.reserve_intake_key("stored", "t3", stale_after=0) == task.id
    store.release_intake_key("k", "someone-else")  # not theirs: kept
    assert store.intake_holder("k") == "t2"
    store.release_intake_key("k", "t2")
    assert store.intake_holder("k") is None


def test_projects(store: Store) -> None:
    web = Project(name="web", dir="/srv/web", build_command=("make",))
    api = Project(name="api", dir="/srv/api")
    store.save_project(web, create=True)
    store.save_project(api, create=True)
    with pytest.raises(ProjectExists):
        store.save_project(web, create=True)
    assert store.projects() == [api, web]  # by name
    moved = web.model_copy(update={"dir": "/srv/web2", "review": True})
    store.save_project(moved, create=False)
    assert store.projects()[1] == moved
    with pytest.raises(NotFound):
        store.save_project(Project(name="ghost", dir="/x"), create=False)
    store.delete_project("api")
    assert store.projects() == [moved]
    with pytest.raises(NotFound):
        store.delete_project("api")


def test_stories(store: Store) -> None:
    now = utcnow()
    old = store.add_story(Story(name="old", created_at=now - timedelta(hours=1)))
    new = store.add_story(Story(name="new", description="d", created_at=now))
    assert store.stories() == [new, old]  # newest first
    assert store.get_story(old.id) == old
    [task] = store.add_tasks([_task(story_id=old.id)])
    renamed = store.update_story(old.id, name="renamed")
    assert (renamed.name, renamed.description) == ("renamed", "")
    assert store.update_story(old.id) == renamed
    store.delete_story(old.id)
    assert store.get_task(task.id).story_id is None  # the task stays, without a story
    for missing in (store.get_story, store.delete_story):
        with pytest.raises(NotFound):
            missing(old.id)
    with pytest.raises(NotFound):
        store.update_story(old.id, name="x")


def test_push_subscriptions(store: Store) -> None:
    now = utcnow()
    a = PushSubscription(endpoint="https://a", p256dh="k", auth="s", created_at=now)
    b = PushSubscription(endpoint="https://b", p256dh="k", auth="s", created_at=now)
    store.save_push_subscription(a)
    store.save_push_subscription(b)
    rekeyed = a.model_copy(update={"p256dh": "k2", "created_at": now + timedelta(seconds=1)})
    store.save_push_subscription(rekeyed)
    assert store.push_subscriptions() == [b, rekeyed]  # oldest first
    assert store.delete_push_subscription("https://b") is True
    assert store.delete_push_subscription("https://b") is False
    assert store.push_subscriptions() == [rekeyed]


def test_aggregates(store: Store) -> None:
    a, b = store.add_tasks([_task("a"), _task("b")])
    start = utcnow() - timedelta(minutes=10)
    ran = Execution(
        task_id=a.id,
        agent="claude",
        model="opus",
        status=S.COMPLETED,
        start_time=start,
        end_time=start + timedelta(minutes=2),
        cost_usd=0.5,
        tokens_in=10,
        tokens_out=3,
    )
    store.transition(b.id, S.RUNNING, "claim", execution=Execution(task_id=b.id, agent="claude"))
    store.add_execution(ran)
    assert store.task_costs([a.id, b.id, "none"]) == {
        a.id: TaskCost(total_usd=0.5, executions=1, ended=1),
        b.id: TaskCost(executions=1, ended=0),
        "none": TaskCost(),
    }
    groups = {(g.agent, g.model, g.status): g for g in store.execution_groups()}
    assert groups[("claude", "opus", "COMPLETED")].cost_usd == 0.5
    assert groups[("claude", "opus", "COMPLETED")].tokens_in == 10
    assert groups[("claude", "", "RUNNING")].count == 1
    [run] = store.run_times()
    assert (run.agent, run.model, run.seconds) == ("claude", "opus", 120.0)
    [wait] = store.queue_waits()  # one claim
    assert wait >= 0


def test_task_costs_say_unknown_and_estimated(store: Store) -> None:
    known, estimated, unknown = store.add_tasks([_task("known"), _task("est"), _task("unknown")])
    start = utcnow() - timedelta(minutes=10)
    for task, cost, flags in (
        (known, 0.25, {}),
        (known, 0.5, {}),
        (estimated, 0.125, {"cost_estimated": True}),
        (unknown, 0.0, {"cost_known": False}),
        (unknown, 0.75, {}),
    ):
        store.add_execution(
            Execution(task_id=task.id, start_time=start, end_time=start, cost_usd=cost, **flags)
        )
    assert store.task_costs([known.id, estimated.id, unknown.id]) == {
        known.id: TaskCost(total_usd=0.75, executions=2, ended=2),
        estimated.id: TaskCost(total_usd=0.125, estimated=True, executions=1, ended=1),
        unknown.id: TaskCost(total_usd=0.75, known=False, executions=2, ended=2),
    }
