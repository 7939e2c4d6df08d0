"""Token usage and its cost: `Usage` of a call, the price list, `estimate_cost`, and `UsageMeter` per model.

Plain data, no client: run records, reports and digests read it without importing the Anthropic SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @classmethod
    def of(cls, message: dict[str, Any]) -> Usage:
        """The usage of a Message as JSON (missing counts are 0)."""
        usage = message.get("usage") or {}
        return cls(
            usage.get("input_tokens") or 0,
            usage.get("output_tokens") or 0,
            usage.get("cache_read_input_tokens") or 0,
            usage.get("cache_creation_input_tokens") or 0,
        )


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


# Checked in order: the first fragment found in the model name wins (specific entries before families).
# Cache reads cost 0.1x and cache writes 1.25x the input price; the Message Batches API costs half.
PRICES: tuple[tuple[str, Price], ...] = (
    ("opus-4-0", Price(15.0, 75.0)),
    ("opus-4-1", Price(15.0, 75.0)),
    ("opus-4-2025", Price(15.0, 75.0)),
    ("3-opus", Price(15.0, 75.0)),
    ("opus", Price(5.0, 25.0)),
    ("sonnet", Price(3.0, 15.0)),
    ("3-5-haiku", Price(0.8, 4.0)),
    ("3-haiku", Price(0.25, 1.25)),
    ("haiku", Price(1.0, 5.0)),
)


def price_for(model: str) -> Price | None:
    """The price of `model` by family, or None for a model the table does not know."""
    name = model.lower()
    return next((price for fragment, price in PRICES if fragment in name), None)


def estimate_cost(model: str, usage: Usage, *, batch: bool = False) -> float | None:
    """Estimated US dollars for `usage` on `model`, or None when the model's price is unknown."""
    price = price_for(model)
    if price is None:
        return None
    dollars = (
        usage.input_tokens * price.input
        + usage.cache_read_tokens * price.input * 0.1
        + usage.cache_write_tokens * price.input * 1.25
        + usage.output_tokens * price.output
    ) / 1_000_000
    return dollars / 2 if batch else dollars


@dataclass
class UsageMeter:
    """Usage summed per model over many calls (thread-unsafe; one event loop updates it)."""

    by_model: dict[str, Usage] = field(default_factory=dict)
    calls: int = 0

    def add(self, model: str, usage: Usage) -> None:
        self.by_model[model] = self.by_model.get(model, Usage()) + usage
        self.calls += 1

    @property
    def total(self) -> Usage:
        return sum(self.by_model.values(), Usage())

    def dump(self) -> dict[str, list[int]]:
        """The usage per model as JSON: `{model: [input, output, cache_read, cache_write]}`."""
        return {model: [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens]
                for model, u in sorted(self.by_model.items())}

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> UsageMeter:
        """The meter `dump()` wrote (calls are not kept)."""
        return cls({model: Usage(*counts) for model, counts in (data or {}).items()})

    def cost(self, *, batch: bool = False) -> tuple[float, list[str]]:
        """Estimated dollars over the models with a known price, and the models whose price is unknown."""
        dollars, unknown = 0.0, []
        for model, usage in sorted(self.by_model.items()):
            cost = estimate_cost(model, usage, batch=batch)
            if cost is None:
                unknown.append(model)
            else:
                dollars += cost
        return dollars, unknown


# ---------------------------------------------------------------- the client
