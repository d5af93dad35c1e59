"""Summaries of repeated measurements: median with min-max, percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "percentile", "summarize"]


@dataclass(frozen=True, slots=True)
class Summary:
    """The median of some repetitions and their range."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.runs)}


def summarize(values: Sequence[float]) -> Summary:
    """Median, min and max of one or more values."""
    if not values:
        raise ValueError("no values to summarize")
    return Summary(statistics.median(values), min(values), max(values), tuple(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0-100) by the nearest-rank method; `values` need not be sorted."""
    if not values:
        raise ValueError("no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not within 0-100")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
