"""The scenarios (issues 7 and 17): which processes each runs, what is compared, the targets.

Every scenario runs on each transport (websockets, picows) and event loop
(asyncio, uvloop) asked for, four programs each: raw websockets, goomerang on
websockets, raw picows, goomerang on picows, in that order within a
repetition, so that each goomerang figure is measured just after the raw one
it is divided by (the machine drifts: see ``Row.paired``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from bench._side import LOOPS, TRANSPORTS

__all__ = ["COMPARISONS", "IMPLS", "LOOPS", "SCENARIOS", "TRANSPORTS", "Case", "Comparison", "Metric", "Target"]
__all__ += ["cases", "metrics"]

IMPLS = ("raw", "goomerang")
SCENARIOS = ("A", "B", "C", "D", "E")
FANOUT_CLIENTS = 50
INFLIGHT = 64


@dataclass(frozen=True, slots=True)
class Case:
    """One measured run: a server and a client process of one program."""

    scenario: str
    variant: str
    """For goomerang: ``plain`` (runtime API) or ``stub`` (typed generated code); fan-out mode."""
    impl: str
    transport: str
    loop: str
    workload: str
    server_args: tuple[str, ...]
    client_args: tuple[str, ...]
    meter: str
    """Who measures: ``server`` (counts handled messages), ``client`` or ``memory``."""

    @property
    def key(self) -> str:
        return case_key(self.scenario, self.variant, self.impl, self.transport, self.loop)

    @property
    def side(self) -> str:
        """The program: ``goomerang`` (either transport), ``raw`` (websockets) or ``rawpicows``."""
        if self.impl == "goomerang":
            return "goomerang"
        return "rawpicows" if self.transport == "picows" else "raw"


def case_key(scenario: str, variant: str, impl: str, transport: str, loop: str) -> str:
    return f"{scenario}/{variant}/{impl}/{transport}/{loop}"


@dataclass(frozen=True, slots=True)
class Target:
    """The ratio ours/baseline a metric must reach: ``>= 0.8`` or ``<= 1.25``."""

    op: str
    value: float

    def met(self, ratio: float) -> bool:
        compare: Callable[[float, float], bool] = operator.ge if self.op == ">=" else operator.le
        return compare(ratio, self.value)

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}"


AT_LEAST_08, P50_125, MEMORY_15 = Target(">=", 0.8), Target("<=", 1.25), Target("<=", 1.5)


@dataclass(frozen=True, slots=True)
class Comparison:
    """What is divided by what: goomerang (or raw picows) on a transport, by a raw program."""

    name: str
    ours_impl: str
    ours_transport: str
    base_transport: str
    targets: dict[str, Target]
    """Scenario (``A``, ``B`` for its p50, ``C``, ``D``, ``E``) -> target; others are information."""


COMPARISONS = (
    Comparison(
        "goomerang/websockets vs raw websockets",
        "goomerang",
        "websockets",
        "websockets",
        {"A": AT_LEAST_08, "B": P50_125, "C": AT_LEAST_08, "D": Target(">=", 0.95), "E": MEMORY_15},
    ),
    Comparison(
        "goomerang/picows vs raw picows",
        "goomerang",
        "picows",
        "picows",
        {"A": AT_LEAST_08, "C": AT_LEAST_08, "D": AT_LEAST_08},
    ),
    Comparison(
        "goomerang/picows vs raw websockets",
        "goomerang",
        "picows",
        "websockets",
        {"A": Target(">=", 1.2), "B": Target("<=", 0.75), "C": Target(">=", 1.2), "D": Target(">=", 1.2)},
    ),
    Comparison("raw picows vs raw websockets (the ceilings)", "raw", "picows", "websockets", {}),
)


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the report: a figure of one case beside the baseline's."""

    scenario: str
    title: str
    unit: str
    field: str
    ours: str
    raw: str
    target: Target | None
    comparison: str = ""
    loop: str = "asyncio"


def _case(
    scenario: str,
    variant: str,
    impl: str,
    transport: str,
    loop: str,
    workload: str,
    server: tuple[str, ...],
    client: tuple[str, ...],
    meter: str,
) -> Case:
    on = ("--loop", loop, "--transport", transport)
    return Case(scenario, variant, impl, transport, loop, workload, (*on, *server), (*on, *client), meter)


def cases(
    scenarios: tuple[str, ...], transports: tuple[str, ...] = TRANSPORTS, loops: tuple[str, ...] = ("asyncio",)
) -> list[Case]:
    """The runs of one repetition; each goomerang run just after the raw run on its transport."""
    out: list[Case] = []
    for scenario in scenarios:
        for loop in loops:
            if scenario == "D":  # per mode: raw then goomerang, on each transport
                clients = ("--clients", str(FANOUT_CLIENTS))
                for mode in ("broadcast", "publish"):
                    for transport in transports:
                        for impl in IMPLS:
                            out.append(_case("D", mode, impl, transport, loop, mode, clients, clients, "client"))
                continue
            for transport in transports:
                for impl in IMPLS:
                    if scenario == "A":
                        out.append(_case("A", "plain", impl, transport, loop, "oneway", (), (), "server"))
                    elif scenario in ("B", "C"):
                        inflight = ("--inflight", "1" if scenario == "B" else str(INFLIGHT))
                        for api in ("plain", "stub") if impl == "goomerang" else ("plain",):
                            api_args = ("--api", api)
                            out.append(
                                _case(
                                    scenario,
                                    api,
                                    impl,
                                    transport,
                                    loop,
                                    "sync",
                                    api_args,
                                    (*api_args, *inflight),
                                    "client",
                                )
                            )
                    elif scenario == "E":
                        out.append(_case("E", "plain", impl, transport, loop, "idle", (), (), "memory"))
    return out


def _rows(scenario: str, connections: int) -> list[tuple[str, str, str, str, str | None]]:
    """(variant, title, unit, field, target scenario) of a scenario's figures."""
    if scenario == "A":
        return [("plain", "one-way send, ~100 B", "msg/s", "rate", "A")]
    if scenario == "B":
        out: list[tuple[str, str, str, str, str | None]] = []
        for api, name in (("plain", "send_sync, 1 in flight"), ("stub", "typed stub, 1 in flight")):
            out += [(api, name, "p50 µs", "p50_us", "B"), (api, name, "p99 µs", "p99_us", None)]
            out.append((api, name, "req/s", "rate", None))
        return out
    if scenario == "C":
        return [
            (api, name, "req/s", "rate", "C")
            for api, name in (
                ("plain", f"send_sync, {INFLIGHT} in flight"),
                ("stub", f"typed stub, {INFLIGHT} in flight"),
            )
        ]
    if scenario == "D":
        return [
            (mode, f"server {mode} to {FANOUT_CLIENTS} clients", "deliveries/s", "rate", "D")
            for mode in ("broadcast", "publish")
        ]
    return [("plain", f"{connections} idle clients", "server KiB/conn", "kib_per_conn", "E")]


def metrics(
    scenarios: tuple[str, ...],
    connections: int,
    transports: tuple[str, ...] = TRANSPORTS,
    loops: tuple[str, ...] = ("asyncio",),
) -> list[Metric]:
    """The report's rows: each comparison whose transports ran, on each loop."""
    out: list[Metric] = []
    for loop in loops:
        for comparison in COMPARISONS:
            if comparison.ours_transport not in transports or comparison.base_transport not in transports:
                continue
            for scenario in scenarios:
                for variant, title, unit, field, target_of in _rows(scenario, connections):
                    if comparison.ours_impl == "raw" and variant == "stub":
                        continue  # the raw programs have no typed stub
                    ours = case_key(scenario, variant, comparison.ours_impl, comparison.ours_transport, loop)
                    base_variant = variant if scenario == "D" else "plain"
                    raw = case_key(scenario, base_variant, "raw", comparison.base_transport, loop)
                    target = comparison.targets.get(target_of) if target_of is not None else None
                    if comparison.ours_impl == "raw":
                        title = title.replace("send_sync", "request/reply")
                    out.append(Metric(scenario, title, unit, field, ours, raw, target, comparison.name, loop))
    return out
