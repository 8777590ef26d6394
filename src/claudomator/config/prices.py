"""The price table: what models cost, to estimate the cost of agents that report none."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens, for agents that report no cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gemini-2.5-pro": ModelPrice(input_per_million=1.25, output_per_million=10.0),
    "gemini-2.5-flash": ModelPrice(input_per_million=0.30, output_per_million=2.50),
    "gemini-2.5-flash-lite": ModelPrice(input_per_million=0.10, output_per_million=0.40),
}


def estimate_cost(
    prices: dict[str, ModelPrice], model: str, tokens_in: int, tokens_out: int
) -> float | None:
    """Estimated USD for a run, or None if the model has no price (exact or prefix match)."""
    price = prices.get(model)
    if price is None:
        matches = [name for name in prices if model.startswith(name)]
        price = prices[max(matches, key=len)] if matches else None
    if price is None:
        return None
    return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6
