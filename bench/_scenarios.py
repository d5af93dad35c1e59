"""The scenarios of issue 7: which processes each runs, what is reported, the targets."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["IMPLS", "SCENARIOS", "Case", "Metric", "Target", "cases", "metrics"]

IMPLS = ("goomerang", "raw")
SCENARIOS = ("A", "B", "C", "D", "E")
FANOUT_CLIENTS = 50
INFLIGHT = 64


@dataclass(frozen=True, slots=True)
class Case:
    """One measured run: a server and a client process of one implementation."""

    scenario: str
    variant: str
    """For goomerang: ``plain`` (runtime API) or ``stub`` (typed generated code); fan-out mode."""
    impl: str
    workload: str
    server_args: tuple[str, ...]
    client_args: tuple[str, ...]
    meter: str
    """Who measures: ``server`` (counts handled messages), ``client`` or ``memory``."""

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.variant}/{self.impl}"


@dataclass(frozen=True, slots=True)
class Target:
    """The ratio ours/raw a metric must reach: ``>= 0.8`` or ``<= 1.25``."""

    op: str
    value: float

    def met(self, ratio: float) -> bool:
        compare: Callable[[float, float], bool] = operator.ge if self.op == ">=" else operator.le
        return compare(ratio, self.value)

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}"


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the report: a figure of one goomerang case beside the raw one."""

    scenario: str
    title: str
    unit: str
    field: str
    ours: str
    raw: str
    target: Target | None


def cases(scenarios: tuple[str, ...]) -> list[Case]:
    """The runs of one repetition, goomerang and raw interleaved."""
    out: list[Case] = []
    for scenario in scenarios:
        for impl in IMPLS:
            if scenario == "A":
                out.append(Case("A", "plain", impl, "oneway", (), (), "server"))
            elif scenario in ("B", "C"):
                inflight = ("--inflight", "1" if scenario == "B" else str(INFLIGHT))
                apis = ("plain", "stub") if impl == "goomerang" else ("plain",)
                for api in apis:
                    api_args = ("--api", api)
                    out.append(Case(scenario, api, impl, "sync", api_args, (*api_args, *inflight), "client"))
            elif scenario == "D":
                clients = ("--clients", str(FANOUT_CLIENTS))
                for mode in ("broadcast", "publish"):
                    out.append(Case("D", mode, impl, mode, clients, clients, "client"))
            elif scenario == "E":
                out.append(Case("E", "plain", impl, "idle", (), (), "memory"))
    return out


def metrics(scenarios: tuple[str, ...], connections: int) -> list[Metric]:
    """The report's rows for the chosen scenarios."""
    at_least, at_most = Target(">=", 0.8), Target("<=", 1.25)
    rows: list[Metric] = []
    if "A" in scenarios:
        rows.append(Metric("A", "one-way send, ~100 B", "msg/s", "rate", "A/plain/goomerang", "A/plain/raw", at_least))
    if "B" in scenarios:
        for api, name in (("plain", "send_sync, 1 in flight"), ("stub", "typed stub, 1 in flight")):
            ours = f"B/{api}/goomerang"
            rows.append(Metric("B", name, "p50 µs", "p50_us", ours, "B/plain/raw", at_most))
            rows.append(Metric("B", name, "p99 µs", "p99_us", ours, "B/plain/raw", None))
            rows.append(Metric("B", name, "req/s", "rate", ours, "B/plain/raw", None))
    if "C" in scenarios:
        for api, name in (("plain", f"send_sync, {INFLIGHT} in flight"), ("stub", f"typed stub, {INFLIGHT} in flight")):
            rows.append(Metric("C", name, "req/s", "rate", f"C/{api}/goomerang", "C/plain/raw", at_least))
    if "D" in scenarios:
        for mode in ("broadcast", "publish"):
            rows.append(
                Metric(
                    "D",
                    f"server {mode} to {FANOUT_CLIENTS} clients",
                    "deliveries/s",
                    "rate",
                    f"D/{mode}/goomerang",
                    f"D/{mode}/raw",
                    at_least,
                )
            )
    if "E" in scenarios:
        rows.append(
            Metric(
                "E",
                f"{connections} idle clients",
                "server KiB/conn",
                "kib_per_conn",
                "E/plain/goomerang",
                "E/plain/raw",
                Target("<=", 1.5),
            )
        )
    return rows
