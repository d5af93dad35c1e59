"""The replica benchmark's results: the runs of one repetition, and tables and JSON of what they measured.

Each multi-replica run is measured just after a single-replica run on the
same broker (the machine drifts), and its figures are divided by that run's:
the paired ratio is the median of those per-repetition ratios, printed
beside the medians and their range.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench._report import DASH, _cell, _ratio_cell
from bench._stats import Summary, summarize

__all__ = ["REPLICA_NAMES", "Results", "Run", "assign", "cpu_medians", "plan", "render", "split", "to_rows"]

REPLICA_NAMES = "ABC"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured configuration: a broker, replica processes, and the clients."""

    broker: str
    """``nats``, ``redis``, or ``none`` (one server, no broker)."""
    replicas: int
    transport: str
    loop: str
    paired_with: int = 0
    """For a single-replica run: the replica count of the run it is the baseline of."""

    @property
    def key(self) -> str:
        count = f"1:{self.paired_with}" if self.paired_with else str(self.replicas)
        return f"{self.broker}/{count}/{self.transport}/{self.loop}"


def plan(
    brokers: Sequence[str], counts: Sequence[int], transports: Sequence[str], loops: Sequence[str], single: bool
) -> list[Run]:
    """The runs of one repetition: each multi-replica run just after its single-replica baseline."""
    out: list[Run] = []
    for loop in loops:
        for transport in transports:
            if single:
                out.append(Run("none", 1, transport, loop))
            for broker in brokers:
                for count in counts:
                    out.append(Run(broker, 1, transport, loop, paired_with=count))
                    out.append(Run(broker, count, transport, loop))
    return out


def split(total: int, parts: int) -> list[int]:
    """`total` over `parts` as evenly as possible, the first parts taking the rest."""
    share, rest = divmod(total, parts)
    return [share + (1 if index < rest else 0) for index in range(parts)]


def assign(clients: int, replicas: int, processes: int) -> list[list[int]]:
    """Subscribers of each clients process on each replica: `clients` split over the replicas, each share
    over the processes (so every process holds local and cross-replica clients alike)."""
    out = [[0] * replicas for _ in range(processes)]
    for replica, share in enumerate(split(clients, replicas)):
        for process, count in enumerate(split(share, processes)):
            out[process][replica] = count
    return out


Results = Mapping[str, Sequence[Mapping[str, float]]]
"""Each run's key -> the figures of each repetition."""


def _summary(runs: Sequence[Mapping[str, float]], field: str) -> Summary | None:
    values = [run[field] for run in runs if field in run]
    return summarize(values) if values else None


def _paired(ours: Sequence[Mapping[str, float]], base: Sequence[Mapping[str, float]], field: str) -> Summary | None:
    pairs = [o[field] / b[field] for o, b in zip(ours, base, strict=False) if field in o and b.get(field)]
    return summarize(pairs) if pairs else None


def _json(summary: Summary | None) -> dict[str, object] | None:
    return None if summary is None else summary.as_dict()


def _cpu_fields(replicas: int, broker: str) -> list[str]:
    fields = [f"us_{REPLICA_NAMES[index]}" for index in range(replicas)]
    if broker != "none":
        fields.append("us_broker")
    return [*fields, "us_servers", "us_clients"]


_LATENCY = [
    f"{phase}{where}_{pct}_us" for phase in ("light_", "") for where in ("local", "cross") for pct in ("p50", "p99")
]


def to_rows(runs: Sequence[Run], results: Results) -> list[dict[str, object]]:
    """One row per measured configuration (a run of the plan), summarized over repetitions."""
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for run in runs:
        if run.key in seen or run.paired_with:
            continue
        seen.add(run.key)
        ours = results.get(run.key, [])
        if not ours:
            continue
        base_key = Run(run.broker, 1, run.transport, run.loop, paired_with=run.replicas).key
        base = results.get(base_key, []) if run.replicas > 1 else []
        row: dict[str, object] = {
            "broker": run.broker,
            "replicas": run.replicas,
            "transport": run.transport,
            "loop": run.loop,
            "key": run.key,
            "baseline": base_key if base else None,
            "noise_cores": max((r.get("other_cpu_cores", 0.0) for r in (*ours, *base)), default=0.0),
        }
        for field in ("rate", "local_rate", "cross_rate", *_cpu_fields(run.replicas, run.broker), *_LATENCY):
            summary = _summary(ours, field)
            if summary is None:
                continue
            row[field] = _json(summary)
            if base:
                row[f"single_{field}"] = _json(_summary(base, field))
                row[f"paired_{field}"] = _json(_paired(ours, base, field))
        rows.append(row)
    return rows


def _get(row: Mapping[str, object], field: str) -> Summary | None:
    value = row.get(field)
    if not isinstance(value, dict):
        return None
    runs = value["runs"]
    assert isinstance(runs, list)
    return summarize([float(v) for v in runs])


def _fmt(summary: Summary | None, ratio: bool = False) -> str:
    if summary is None:
        return "—"
    return _ratio_cell(summary) if ratio else _cell(summary)


def _median(summary: Summary | None) -> str:
    return "—" if summary is None else f"{summary.median:.2f}"


def render(rows: Sequence[Mapping[str, object]]) -> str:
    """Three Markdown tables: throughput with paired ratios, CPU per delivery, latencies."""
    out = [
        "Deliveries/s summed over the clients of all replicas (the single-replica baseline measured just before):",
        "",
        f"| broker | transport, loop | replicas | deliveries/s, median (min{DASH}max) | 1 replica, same repetitions"
        f" | paired ratio, median (min{DASH}max) | local / cross deliveries/s | noise |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rate, single = _get(row, "rate"), _get(row, "single_rate")
        local, cross = _get(row, "local_rate"), _get(row, "cross_rate")
        split = f"{_fmt(local)} / {_fmt(cross)}" if row["replicas"] != 1 else "—"
        out.append(
            f"| {row['broker']} | {row['transport']}, {row['loop']} | {row['replicas']} | {_fmt(rate)}"
            f" | {_fmt(single)} | {_fmt(_get(row, 'paired_rate'), ratio=True)} | {split}"
            f" | {float(row['noise_cores']):.2f} |"  # type: ignore[arg-type]
        )
    out += [
        "",
        "CPU per delivery (µs of each process over all deliveries; medians), servers = replicas + broker:",
        "",
        "| broker | transport, loop | replicas | A | B | C | broker | servers | paired ratio of servers | clients |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [_median(_get(row, f"us_{name}")) for name in (*REPLICA_NAMES, "broker", "servers")]
        out.append(
            f"| {row['broker']} | {row['transport']}, {row['loop']} | {row['replicas']} | {' | '.join(cells)}"
            f" | {_fmt(_get(row, 'paired_us_servers'), ratio=True)} | {_median(_get(row, 'us_clients'))} |"
        )
    out += [
        "",
        "Latency from publish on replica A to a client's handler, p50 / p99 µs (medians), local clients"
        " (on A) and cross-replica ones:",
        "",
        "| broker | transport, loop | replicas | light local | light cross | window local | window cross |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = []
        for phase in ("light_", ""):
            for where in ("local", "cross"):
                p50, p99 = _get(row, f"{phase}{where}_p50_us"), _get(row, f"{phase}{where}_p99_us")
                cells.append("—" if p50 is None or p99 is None else f"{p50.median:,.0f} / {p99.median:,.0f}")
        out.append(f"| {row['broker']} | {row['transport']}, {row['loop']} | {row['replicas']} | {' | '.join(cells)} |")
    return "\n".join(out)


def cpu_medians(results: Results) -> dict[str, dict[str, float]]:
    """Median cores of each process per run key (for the JSON)."""
    out: dict[str, dict[str, float]] = {}
    for key, runs in results.items():
        fields = sorted({field for run in runs for field in run if field.startswith("cores_")})
        out[key] = {field: statistics.median(run[field] for run in runs if field in run) for field in fields}
    return out
