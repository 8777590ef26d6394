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
    # OpenAI's published list prices (Responses API, standard tier), for the Codex CLI, which
    # reports tokens and no cost; a name that only starts with one of these (a dated snapshot,
    # "gpt-5-codex-...") gets the longest match. Override or extend them in [prices].
    "gpt-5": ModelPrice(input_per_million=1.25, output_per_million=10.0),
    "gpt-5-codex": ModelPrice(input_per_million=1.25, output_per_million=10.0),
    "gpt-5-mini": ModelPrice(input_per_million=0.25, output_per_million=2.0),
    "gpt-5-nano": ModelPrice(input_per_million=0.05, output_per_million=0.40),
    "gpt-5-pro": ModelPrice(input_per_million=15.0, output_per_million=120.0),
    "gpt-5.1": ModelPrice(input_per_million=1.25, output_per_million=10.0),
    "gpt-5.2": ModelPrice(input_per_million=1.75, output_per_million=14.0),
    "gpt-4.1": ModelPrice(input_per_million=2.0, output_per_million=8.0),
    "gpt-4.1-mini": ModelPrice(input_per_million=0.40, output_per_million=1.60),
    "o3": ModelPrice(input_per_million=2.0, output_per_million=8.0),
    "o3-pro": ModelPrice(input_per_million=20.0, output_per_million=80.0),
    "o4-mini": ModelPrice(input_per_million=1.10, output_per_million=4.40),
    "codex-mini-latest": ModelPrice(input_per_million=1.50, output_per_million=6.0),
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
