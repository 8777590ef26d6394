"""The cost of an outcome whose agent reported none, and the budget check it allows.

Pricing returns a new :class:`~claudomator.agents.base.Outcome` (the runner's is frozen) and
the note the task's final state change carries when a budget could not be checked.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from claudomator.agents.base import Outcome
from claudomator.config import ModelPrice, estimate_cost
from claudomator.models import TaskState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Priced:
    """An outcome with its cost settled."""

    outcome: Outcome
    cost_note: str = ""  # said in the final state change when the budget went unchecked


def price(
    outcome: Outcome,
    *,
    prices: dict[str, ModelPrice],
    model: str,
    budget: float | None,
    task_id: str,
    agent: str,
) -> Priced:
    """Estimate the cost of an agent that reported none; enforce the budget for it.

    ``model`` is the execution's (the outcome's own wins). An agent that ran, reported no cost
    and whose model has no price (``[prices]``) has an unknown cost: it is recorded as unknown
    (not as $0), and a budget on the task could not be checked, which is logged and noted."""
    if outcome.cost_reported:
        return Priced(outcome)
    model = outcome.model or model
    cost = estimate_cost(prices, model, outcome.tokens_in, outcome.tokens_out)
    if cost is None:
        unchecked = "" if budget is None else f"; the budget of ${budget:g} was not checked"
        logger.warning(
            "task %s: %s reported no cost and model %r has no price: its cost is unknown%s",
            task_id,
            agent,
            model,
            unchecked,
            extra={"action": "price"},
        )
        note = ""
        if budget is not None:
            note = f"cost unknown (no price for model {model or '(unnamed)'}){unchecked}"
        return Priced(dataclasses.replace(outcome, cost_known=False), note)
    priced = dataclasses.replace(outcome, cost_usd=cost, cost_estimated=True)
    if budget is not None and cost > budget and outcome.status == TaskState.COMPLETED:
        priced = dataclasses.replace(
            priced,
            status=TaskState.BUDGET_EXCEEDED,
            error_msg=(
                f"estimated cost ${cost:.4f} exceeds the budget of ${budget:g}; "
                "the work was not delivered"
            ),
        )
    return Priced(priced)
