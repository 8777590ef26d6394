"""Costs as people read them: one wording for the CLI, serve's log and notifications.

A task's cost is the sum over its executions (:class:`~claudomator.models.TaskCost`); a cost
no agent reported and no price covers is *unknown*, never ``$0``.
"""

from __future__ import annotations

from claudomator.models import Execution, Task, TaskCost


def cost_text(cost: TaskCost | None) -> str:
    """A task's cost (see :class:`TaskCost`): ``$0.1234``, ``~$0.1234`` when estimated,
    ``≥ $0.1234`` when some of it is unknown, ``unknown`` when none is known; "" before it ran."""
    if cost is None or (cost.ended == 0 and cost.total_usd == 0 and cost.known):
        return ""
    amount = f"{'~' if cost.estimated else ''}${cost.total_usd:.4f}"
    if cost.known:
        return amount
    return f"≥ {amount}" if cost.total_usd > 0 else "unknown"


def execution_cost_text(execution: Execution) -> str:
    """One execution's cost, in the words of :func:`cost_text`."""
    if not execution.cost_known:
        return "unknown"
    if execution.cost_usd == 0 and execution.end_time is None:
        return ""
    return f"{'~' if execution.cost_estimated else ''}${execution.cost_usd:.4f}"


def budget_unchecked(task: Task, known: bool) -> str:
    """The note for a task whose budget could not be checked, as its cost is unknown."""
    budget = task.agent.max_budget_usd
    if known or budget is None:
        return ""
    return f" (no price for the model: the budget of ${budget:g} was not checked)"
