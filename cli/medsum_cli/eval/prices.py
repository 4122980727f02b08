"""The price table behind "cost per 1,000 reports": USD per 1,000 tokens, per Bedrock model id.

The default table (``prices.json`` next to this module) holds **example** prices that a user must check
against the current Amazon Bedrock pricing; ``medsum eval --prices FILE`` reads another file of the same
shape::

    {"currency": "USD",
     "models": {"anthropic.claude-haiku-4-5-20251001-v1:0":
                  {"input_per_1k": 0.001, "output_per_1k": 0.005,
                   "cache_read_per_1k": 0.0001, "cache_write_per_1k": 0.00125}}}

A report's cost is ``input_tokens * input + output_tokens * output + cache_read_input_tokens *
cache_read + cache_write_input_tokens * cache_write`` (per 1,000 tokens; the cache prices default to the
input price). A model id is looked up exactly, then without an inference-profile prefix (``us.``,
``eu.``, ``global.`` ...), then, for an ARN, by the id after its last ``/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable", "load_prices"]

#: The packaged example table.
DEFAULT_PRICES = "prices.json"
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


@dataclass(frozen=True)
class Price:
    """USD (or the table's currency) per 1,000 tokens of one model."""

    input_per_1k: float
    output_per_1k: float
    cache_read_per_1k: float
    cache_write_per_1k: float

    def cost(self, usage: Mapping[str, Any]) -> float:
        """The cost of one report's ``usage`` (``input_tokens``, ``output_tokens``, cache tokens)."""

        def tokens(name: str) -> float:
            value = usage.get(name)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

        return (
            tokens("input_tokens") * self.input_per_1k
            + tokens("output_tokens") * self.output_per_1k
            + tokens("cache_read_input_tokens") * self.cache_read_per_1k
            + tokens("cache_write_input_tokens") * self.cache_write_per_1k
        ) / 1000


@dataclass(frozen=True)
class PriceTable:
    """Prices by model id, and where they came from."""

    source: str
    currency: str
    models: Mapping[str, Price]

    def price(self, model_id: str) -> Price | None:
        """The price of ``model_id`` (see the module docstring for the lookup), or None."""
        candidates = [model_id]
        if model_id.startswith("arn:"):
            candidates.append(model_id.rsplit("/", 1)[-1])
        for candidate in list(candidates):
            for prefix in _PROFILE_PREFIXES:
                if candidate.startswith(prefix):
                    candidates.append(candidate[len(prefix) :])
        for candidate in candidates:
            if candidate in self.models:
                return self.models[candidate]
        return None


def _number(entry: Mapping[str, Any], name: str, default: float | None, where: str) -> float:
    value = entry.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{where}: {name} must be a number >= 0")
    return float(value)


def parse_prices(document: Any, source: str) -> PriceTable:
    """Check and read a price table document.

    Raises
    ------
    ValueError
        If it is not ``{"models": {id: {"input_per_1k", "output_per_1k", ...}}}`` with numbers >= 0.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("models"), Mapping):
        raise ValueError(
            f'{source}: expected {{"models": {{MODEL_ID: {{"input_per_1k", "output_per_1k"}}}}}}'
        )
    models: dict[str, Price] = {}
    for model_id, entry in document["models"].items():
        where = f"{source}: {model_id}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected an object of prices")
        input_price = _number(entry, "input_per_1k", None, where)
        models[str(model_id)] = Price(
            input_per_1k=input_price,
            output_per_1k=_number(entry, "output_per_1k", None, where),
            cache_read_per_1k=_number(entry, "cache_read_per_1k", input_price, where),
            cache_write_per_1k=_number(entry, "cache_write_per_1k", input_price, where),
        )
    return PriceTable(source=source, currency=str(document.get("currency", "USD")), models=models)


def load_prices(data: bytes | None = None, source: str | None = None) -> PriceTable:
    """Read a price table file's bytes, or the packaged example table when ``data`` is None.

    Raises
    ------
    ValueError
        If the file is not JSON or not a valid table.
    """
    if data is None:
        data = resources.files("medsum_cli.eval").joinpath(DEFAULT_PRICES).read_bytes()
        source = "the example price table (medsum_cli/eval/prices.json)"
    name = source or "prices"
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from exc
    return parse_prices(document, name)
