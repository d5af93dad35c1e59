"""Fan-out beyond one box: one publisher, subscribers on 1, 2 and 3 replicas sharing a real broker.

::

    python bench/replicas.py [--quick] [--brokers nats,redis] [--replicas 2,3] [--repeat 5]
                             [--transports websockets,picows] [--loops asyncio] [--clients 50]
                             [--rate 200] [--duration SECONDS] [--json bench/results/replicas.json]
                             [--profile DIR]

The bench starts a nats-server and a redis-server itself, then for each
run its replica processes (goomerang servers sharing the broker,
``bench/_replica_side.py``) and one process holding the clients, split over
the replicas (50 by default: 25 + 25, or 17 + 17 + 16). Replica A publishes
on a topic every client subscribed to; its clients are local, the others'
are reached through the broker. Each run measures two windows:

- light load: A publishes ``--rate`` times a second; latency from publish
  to each client's handler, local and cross-replica, p50/p99;
- under a window: A publishes as fast as the slowest subscriber drains,
  credit-paced as scenario D of ``bench/run.py``: deliveries/s summed over
  all clients, local and cross-replica latency, and the CPU each process
  used (replicas, broker, clients; from /proc) per delivery.

Within a repetition every multi-replica run follows a single-replica run on
the same broker, and is divided by it (paired ratios); ``none`` is the
single box without a broker. The machine is shared: each window also
records the cores other processes used (the noise column).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._brokers import BROKERS, BrokerProcess
from bench._cpu import CpuSample, other_cores, process_cores, sample, wait_until_quiet
from bench._machine import machine_info
from bench._replica_report import REPLICA_NAMES, Run, assign, cpu_medians, plan, render, to_rows
from bench._runner import START_TIMEOUT, SideProcess, _profile
from bench._side import LOOPS, TRANSPORTS
from bench._stats import merged_percentile

HERE = Path(__file__).resolve().parent
SIDE = HERE / "_replica_side.py"
DEFAULT_JSON = HERE / "results" / "replicas.json"
NOISY = 0.25


def _choices(parser: argparse.ArgumentParser, option: str, value: str, known: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not chosen or any(part not in known for part in chosen):
        parser.error(f"{option} takes some of {','.join(known)}, got {value!r}")
    return tuple(part for part in known if part in chosen)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 2 replicas, 0.5 s windows")
    parser.add_argument("--brokers", default=",".join(BROKERS), help="brokers (default: %(default)s)")
    parser.add_argument("--replicas", help="replica counts compared with one (default 2,3; 2 with --quick)")
    parser.add_argument("--no-single", dest="single", action="store_false", help="skip the run without a broker")
    parser.add_argument("--transports", default="websockets", help=f"of {','.join(TRANSPORTS)} (default: websockets)")
    parser.add_argument("--loops", default="asyncio", help=f"among {','.join(LOOPS)} (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=50, help="subscribers over all replicas (default 50)")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes holding the clients, on every replica (default 2)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="publications/s of the light load (default 200)")
    parser.add_argument("--repeat", type=int, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--duration", type=float, help="each measured window, seconds (default 2; 0.5 with --quick)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (default 1; 0.3 with --quick)")
    parser.add_argument(
        "--quiet-wait", type=float, help="wait up to this long for a quiet machine before a run (default 10; 0 quick)"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results (default %(default)s)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy each process of each window into DIR")
    args = parser.parse_args(argv)
    quick = args.quick
    args.brokers = _choices(parser, "--brokers", args.brokers, BROKERS)
    args.transports = _choices(parser, "--transports", args.transports, TRANSPORTS)
    args.loops = _choices(parser, "--loops", args.loops, LOOPS)
    counts = args.replicas or ("2" if quick else "2,3")
    try:
        args.replicas = tuple(sorted({int(part) for part in counts.split(",") if part.strip()}))
    except ValueError:
        parser.error(f"--replicas takes counts among 2,3, got {counts!r}")
    if not args.replicas or any(count not in (2, 3) for count in args.replicas):
        parser.error(f"--replicas takes counts among 2,3, got {counts!r}")
    args.repeat = args.repeat or (1 if quick else 5)
    args.duration = args.duration or (0.5 if quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if quick else 1.0)
    args.quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0.0 if quick else 10.0)
    if args.client_processes < 1 or args.clients < max(args.replicas) * args.client_processes:
        parser.error("--clients must give each clients process a subscriber on each replica")
    if args.repeat < 1 or args.duration <= 0 or args.rate <= 0:
        parser.error("--repeat >= 1, --duration > 0, --rate > 0 and a client per replica at least, please")
    return args


async def _replica(run: Run, index: int, broker: BrokerProcess | None) -> tuple[SideProcess, int, int]:
    command = [sys.executable, str(SIDE), "replica", "--transport", run.transport, "--loop", run.loop]
    if broker is not None:
        command += ["--broker", broker.kind, "--url", broker.url]
    if index == 0:
        command.append("--producer")
    side = await SideProcess.spawn(f"{run.key} replica {REPLICA_NAMES[index]}", command)
    try:
        ready = await side.expect("ready")
    except BaseException:
        await side.finish()
        raise
    return side, int(ready["port"]), int(ready["pid"])


async def _window(clients: list[SideProcess], duration: float) -> dict[str, float]:
    for side in clients:
        side.send("begin")
    await asyncio.sleep(duration)
    for side in clients:
        side.send("end")
    return merge([await side.expect("result") for side in clients])


def merge(parts: list[Mapping[str, Any]]) -> dict[str, float]:
    """One window's figures over the clients processes: summed counts, merged latency quantiles."""
    seconds = statistics.mean(float(part["seconds"]) for part in parts)
    out: dict[str, float] = {"seconds": seconds}
    events = 0
    for name in ("local", "cross"):
        count = sum(int(part[f"{name}_events"]) for part in parts)
        events += count
        out[f"{name}_rate"] = count / seconds
        samples = [(int(part[f"{name}_events"]), part[f"{name}_points"]) for part in parts]
        if count:
            out[f"{name}_p50_us"] = merged_percentile(samples, 50)
            out[f"{name}_p99_us"] = merged_percentile(samples, 99)
    out["events"] = events
    out["rate"] = events / seconds
    return out


async def _clients(run: Run, ports: list[int], counts: list[int]) -> SideProcess:
    command = [sys.executable, str(SIDE), "clients", "--transport", run.transport, "--loop", run.loop]
    command += ["--ports", ",".join(map(str, ports)), "--counts", ",".join(map(str, counts))]
    return await SideProcess.spawn(f"{run.key} clients", command)


async def measure(run: Run, broker: BrokerProcess | None, args: argparse.Namespace) -> dict[str, float]:
    """Start the run's replicas and clients, measure the light-load and the windowed phase, stop them."""
    if args.quiet_wait > 0:
        await wait_until_quiet(args.quiet_wait)
    started = await asyncio.gather(
        *(_replica(run, index, broker) for index in range(run.replicas)), return_exceptions=True
    )
    replicas = [item for item in started if not isinstance(item, BaseException)]
    sides = [side for side, _, _ in replicas]
    clients: list[SideProcess] = []
    try:
        for item in started:
            if isinstance(item, BaseException):
                raise item
        producer = sides[0]
        ports = [port for _, port, _ in replicas]
        for counts in assign(args.clients, run.replicas, args.client_processes):
            clients.append(await _clients(run, ports, counts))
        client_pids = [int((await side.expect("ready", timeout=START_TIMEOUT))["pid"]) for side in clients]
        producer.send(f"rate {args.rate:g}")
        await producer.expect("ok")
        await asyncio.sleep(args.warmup / 2)
        light = await _window(clients, args.duration)
        producer.send(f"window {len(clients)}")
        await producer.expect("ok")
        await asyncio.sleep(args.warmup)
        names = [*REPLICA_NAMES[: run.replicas], *(["broker"] if broker is not None else [])]
        pids = [pid for _, _, pid in replicas] + ([broker.pid] if broker is not None else [])
        names += [f"clients{index}" for index in range(len(clients))]
        pids += client_pids
        profilers = []
        if args.profile is not None:
            for name, pid in zip(names, pids, strict=True):
                if name != "broker":  # not a Python process
                    out = args.profile / f"{run.key.replace('/', '-')}-{name}.txt"
                    profilers.append(await _profile(pid, args.duration, out))
        before = sample(pids)
        result = await _window(clients, args.duration)
        after = sample(pids)
        for profiler in profilers:
            await profiler.wait()
        producer.send("idle")
        await producer.expect("ok")
    finally:
        for side in [*clients, *reversed(sides)]:
            await side.finish()
    return _figures(names, light, result, before, after)


def _figures(
    names: list[str], light: dict[str, float], result: dict[str, float], before: CpuSample, after: CpuSample
) -> dict[str, float]:
    figures = dict(result)
    for field, value in light.items():
        if field == "rate" or field.endswith("_us"):
            figures[f"light_{field}"] = value
    seconds = after.at - before.at
    events = result["events"]
    servers = clients = 0.0
    for name, used in zip(names, process_cores(before, after), strict=True):
        per_delivery = used * seconds / events * 1e6 if events else 0.0
        figures[f"cores_{name}"] = used
        figures[f"us_{name}"] = per_delivery
        if name.startswith("clients"):
            clients += per_delivery
        else:
            servers += per_delivery
    figures["us_servers"] = servers
    figures["us_clients"] = clients
    figures["other_cpu_cores"] = other_cores(before, after)
    return figures


def _brief(figures: dict[str, float]) -> str:
    keys = ["rate", "us_servers", "us_clients", "local_p50_us", "cross_p50_us", "light_local_p50_us"]
    keys += ["light_cross_p50_us", "other_cpu_cores"]
    return ", ".join(f"{key}={figures[key]:,.1f}" for key in keys if key in figures)


async def _run(args: argparse.Namespace, runs: list[Run]) -> dict[str, list[dict[str, float]]]:
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {}
    brokers: dict[str, BrokerProcess] = {}
    try:
        for kind in args.brokers:
            brokers[kind] = await BrokerProcess.start(kind)
        for repetition in range(1, args.repeat + 1):
            for run in runs:
                figures = await measure(run, brokers.get(run.broker), args)
                results.setdefault(run.key, []).append(figures)
                print(f"[{repetition}/{args.repeat}] {run.key}: {_brief(figures)}", file=sys.stderr, flush=True)
    finally:
        for broker in brokers.values():
            with contextlib.suppress(Exception):
                await broker.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    load_before = os.getloadavg()
    runs = plan(args.brokers, args.replicas, args.transports, args.loops, args.single)
    results = asyncio.run(_run(args, runs))
    rows = to_rows(runs, results)
    print(render(rows))
    noisy = [other for figures in results.values() for run in figures if (other := run["other_cpu_cores"]) > NOISY]
    if noisy:
        print(
            f"\nwarning: in {len(noisy)} windows other processes used {min(noisy):.2f}-{max(noisy):.2f} cores;"
            " those figures are noisy"
        )
    settings = {
        "brokers": list(args.brokers),
        "replicas": list(args.replicas),
        "single_box": args.single,
        "transports": list(args.transports),
        "loops": list(args.loops),
        "clients": args.clients,
        "client_processes": args.client_processes,
        "light_rate": args.rate,
        "repeat": args.repeat,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "quiet_wait_s": args.quiet_wait,
        "profiled": args.profile is not None,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    report = {
        "machine": machine_info(),
        "settings": settings,
        "rows": rows,
        "cores": cpu_medians(results),
        "runs": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
