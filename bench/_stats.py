"""Summaries of repeated measurements: median with min-max, percentiles (also merged over processes)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "merged_percentile", "percentile", "quantile_points", "summarize"]


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


POINTS = 1000


def quantile_points(values: Sequence[float], points: int = POINTS) -> list[float]:
    """`points` evenly spaced quantiles of `values` (all of them if fewer): a summary to merge later."""
    ordered = sorted(values)
    if len(ordered) <= points:
        return ordered
    return [ordered[int((index + 0.5) * len(ordered) / points)] for index in range(points)]


def merged_percentile(parts: Sequence[tuple[int, Sequence[float]]], pct: float) -> float:
    """The `pct` percentile of several processes' samples, each ``(count, quantile_points(...))``.

    Each point stands for ``count / len(points)`` values, so a process that
    saw more deliveries weighs more.
    """
    weighted = sorted((value, count / len(points)) for count, points in parts if points for value in points)
    if not weighted:
        raise ValueError("no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not within 0-100")
    target = pct / 100 * sum(weight for _, weight in weighted)
    seen = 0.0
    for value, weight in weighted:
        seen += weight
        if seen >= target - 1e-9:
            return value
    return weighted[-1][0]
