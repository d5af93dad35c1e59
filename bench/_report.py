"""The results: a table beside the raw figures with paired ratios and verdicts, and JSON.

The machine's speed drifts (up to 2x within one run), so a ratio of medians
moves with it. Each repetition's figure is divided by the raw figure of the
same repetition, measured just before it, and the verdict is on the median
of those paired ratios; the ratio of medians is printed beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench._scenarios import Metric
from bench._stats import Summary, summarize

__all__ = ["Row", "build_rows", "codegen_ratios", "render_cpu", "render_table", "to_json"]


@dataclass(frozen=True, slots=True)
class Row:
    """One metric's summaries, ratio and verdict."""

    metric: Metric
    ours: Summary
    raw: Summary
    noise: float | None = None
    """The most cores other processes used during one of the row's windows."""

    @property
    def ratio(self) -> float:
        """The ratio of the medians."""
        return self.ours.median / self.raw.median if self.raw.median else float("nan")

    @property
    def paired(self) -> Summary:
        """Each repetition's figure over the raw figure of the same repetition: median and range."""
        pairs = [ours / raw for ours, raw in zip(self.ours.runs, self.raw.runs, strict=False) if raw]
        return summarize(pairs) if pairs else Summary(float("nan"), float("nan"), float("nan"), ())

    @property
    def verdict(self) -> str:
        target = self.metric.target
        if target is None:
            return "(info)"
        return "meets" if target.met(self.paired.median) else "MISSES"

    def as_dict(self) -> dict[str, object]:
        target = self.metric.target
        return {
            "comparison": self.metric.comparison,
            "loop": self.metric.loop,
            "scenario": self.metric.scenario,
            "title": self.metric.title,
            "unit": self.metric.unit,
            "ours": self.ours.as_dict(),
            "raw": self.raw.as_dict(),
            "ratio": self.ratio,
            "paired_ratio": self.paired.as_dict(),
            "target": None if target is None else {"op": target.op, "value": target.value},
            "verdict": self.verdict,
            "noise_cores": self.noise,
        }


DASH = "\u2013"
"""En dash, for ranges."""

_CPU_FIELDS = ("server_cpu_cores", "client_cpu_cores", "other_cpu_cores")

Results = Mapping[str, Sequence[Mapping[str, float]]]
"""Each case's key -> the figures of each repetition."""


def build_rows(metrics: Sequence[Metric], results: Results) -> list[Row]:
    """Summaries of each metric whose cases both ran."""
    rows = []
    for metric in metrics:
        ours, raw = results.get(metric.ours), results.get(metric.raw)
        if ours and raw:
            field = metric.field
            noise = [r["other_cpu_cores"] for r in (*ours, *raw) if "other_cpu_cores" in r]
            rows.append(
                Row(
                    metric,
                    summarize([r[field] for r in ours]),
                    summarize([r[field] for r in raw]),
                    max(noise) if noise else None,
                )
            )
    return rows


def codegen_ratios(rows: Sequence[Row]) -> dict[str, float]:
    """Typed stub / plain runtime API, for each B and C figure measured both ways (per transport and loop)."""
    plain = {(r.metric.ours.replace("/plain/", "/stub/"), r.metric.unit): r for r in rows if "/plain/" in r.metric.ours}
    out = {}
    for row in rows:
        base = plain.get((row.metric.ours, row.metric.unit))
        if "/stub/" in row.metric.ours and base is not None:
            _, _, _, transport, loop = row.metric.ours.split("/")
            out[f"{row.metric.scenario} {row.metric.unit} ({transport}, {loop})"] = row.ours.median / base.ours.median
    return out


def _figure(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def _cell(summary: Summary) -> str:
    if len(summary.runs) == 1:
        return _figure(summary.median)
    return f"{_figure(summary.median)} ({_figure(summary.low)}{DASH}{_figure(summary.high)})"


def _ratio_cell(summary: Summary) -> str:
    if len(summary.runs) <= 1:
        return f"{summary.median:.2f}"
    return f"{summary.median:.2f} ({summary.low:.2f}{DASH}{summary.high:.2f})"


def render_table(rows: Sequence[Row]) -> str:
    """Markdown tables, one per comparison and loop: ours, baseline, paired ratio, ratio of medians, verdict.

    Noise is the most CPU (in cores) other processes took during one of the
    row's windows: on a 2-core machine, anything near 1 makes the row doubtful.
    """
    out: list[str] = []
    group: tuple[str, str] | None = None
    for row in rows:
        if (row.metric.comparison, row.metric.loop) != group:
            group = (row.metric.comparison, row.metric.loop)
            if out:
                out.append("")
            out += [
                f"{row.metric.comparison} ({row.metric.loop})" if row.metric.comparison else row.metric.loop,
                "",
                f"| | scenario | metric | ours, median (min{DASH}max) | baseline | paired ratio, median (min{DASH}max)"
                " | ratio of medians | target | verdict | noise |",
                "|---|---|---|---:|---:|---:|---:|---|---|---:|",
            ]
        target = row.metric.target
        noise = "—" if row.noise is None else f"{row.noise:.1f}"
        out.append(
            f"| {row.metric.scenario} | {row.metric.title} | {row.metric.unit} | {_cell(row.ours)} | {_cell(row.raw)}"
            f" | {_ratio_cell(row.paired)} | {row.ratio:.2f} | {'—' if target is None else target} | {row.verdict}"
            f" | {noise} |"
        )
    return "\n".join(out)


def render_cpu(results: Results) -> str:
    """A Markdown table of the CPU each process used per case (medians over the runs); "" if none was timed.

    Cores near 1.0 mark the bottleneck; µs per event is the CPU time a
    process spent per message (or request, or delivery), the figure least
    sensitive to other processes on the machine.
    """
    lines = [
        "| case | server cores | client cores | other processes | server µs/event | client µs/event |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, runs in results.items():
        if runs and "server_cpu_cores" in runs[0]:
            cells = [f"{statistics.median(r[name] for r in runs):.2f}" for name in _CPU_FIELDS]
            for name in _CPU_FIELDS[:2]:
                cells.append(f"{statistics.median(r[name] / r['rate'] * 1e6 for r in runs if r['rate']):.1f}")
            lines.append(f"| {key} | {' | '.join(cells)} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def to_json(
    rows: Sequence[Row], results: Results, machine: Mapping[str, object], settings: Mapping[str, object]
) -> dict[str, object]:
    """Everything measured, summarized and raw, with where and how."""
    return {
        "machine": dict(machine),
        "settings": dict(settings),
        "rows": [row.as_dict() for row in rows],
        "codegen_stub_over_plain": codegen_ratios(rows),
        "runs": {key: [dict(r) for r in runs] for key, runs in results.items()},
    }
