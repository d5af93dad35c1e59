"""Benchmark goomerang on each transport against the same workloads written on raw `websockets` and raw `picows`.

::

    python bench/run.py [--quick] [--only A,B] [--repeat 5] [--duration SECONDS]
                        [--transports websockets,picows] [--loops asyncio,uvloop]
                        [--json bench/results/latest.json] [--profile DIR]

Each run starts a server process and a client process over loopback,
warms up, then measures a fixed wall-clock window. Within a repetition each
goomerang run follows the raw run on its transport (raw websockets,
goomerang/websockets, raw picows, goomerang/picows), on each loop. Prints a
table per comparison (medians, min-max, the paired ratio: the median of each
repetition's ours/raw, the ratio of medians, target, verdict) and writes
everything as JSON. The scenarios are those of issues 7 and 17:

- A: one-way ``send`` of a ~100-byte message as fast as possible (server counts);
- B: ``send_sync`` with one request in flight: p50/p99 round trip, req/s;
- C: ``send_sync`` with 64 in flight: req/s;
- D: server broadcast and topic publish to 50 clients: deliveries/s (client side);
- E: server memory per idle connection with 2,000 clients connected.

B and C run both with the runtime API and the typed generated stub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import machine_info
from bench._report import build_rows, codegen_ratios, render_cpu, render_table, to_json
from bench._runner import Settings, run_case
from bench._scenarios import LOOPS, SCENARIOS, TRANSPORTS, cases, metrics

NOISY = 0.25
"""Cores used by other processes during a window above which the run is called noisy."""
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 0.5 s windows, 200 idle clients")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="scenarios to run, e.g. A,B (default: all)")
    parser.add_argument(
        "--transports", default=",".join(TRANSPORTS), help="raw and goomerang on each (default: %(default)s)"
    )
    parser.add_argument("--loops", help=f"event loops among {','.join(LOOPS)} (default: both; asyncio with --quick)")
    parser.add_argument("--repeat", type=int, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--duration", type=float, help="measured window in seconds (default 2; 0.5 with --quick)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (default 1; 0.2 with --quick)")
    parser.add_argument("--connections", type=int, help="idle clients of E (default 2000; 200 with --quick)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="before each run, wait up to this long for a quiet machine (default 20 s; 0 with --quick)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the server on the first CPU and the client on the second, the same for both sides (default: on)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results (default %(default)s)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample each window with py-spy: stacks per case and process in DIR (last repetition)",
    )
    args = parser.parse_args(argv)
    only = tuple(s.strip().upper() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown or not only:
        parser.error(f"--only takes scenarios among {','.join(SCENARIOS)}, got {args.only!r}")
    args.only = only
    quick = args.quick
    args.transports = _choices(parser, "--transports", args.transports, TRANSPORTS)
    args.loops = _choices(parser, "--loops", args.loops or ("asyncio" if quick else ",".join(LOOPS)), LOOPS)
    args.repeat = args.repeat or (1 if quick else 5)
    args.duration = args.duration or (0.5 if quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if quick else 1.0)
    args.connections = args.connections or (200 if quick else 2000)
    args.quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0.0 if quick else 20.0)
    if args.repeat < 1 or args.duration <= 0 or args.connections < 20:
        parser.error("--repeat >= 1, --duration > 0 and --connections >= 20, please")
    return args


def _choices(parser: argparse.ArgumentParser, option: str, value: str, known: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not chosen or any(part not in known for part in chosen):
        parser.error(f"{option} takes some of {','.join(known)}, got {value!r}")
    return tuple(part for part in known if part in chosen)


def _brief(figures: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:,.1f}" for key, value in figures.items() if key != "seconds")


async def _run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    settings = Settings(args.warmup, args.duration, args.connections, args.quiet_wait, args.profile, args.pin)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {}
    for repetition in range(1, args.repeat + 1):
        for case in cases(args.only, args.transports, args.loops):
            figures = await run_case(case, settings)
            results.setdefault(case.key, []).append(figures)
            print(f"[{repetition}/{args.repeat}] {case.key}: {_brief(figures)}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    load_before = os.getloadavg()
    results = asyncio.run(_run(args))
    rows = build_rows(metrics(args.only, args.connections, args.transports, args.loops), results)
    print(render_table(rows))
    for name, ratio in codegen_ratios(rows).items():
        print(f"typed stub / runtime API, {name}: {ratio:.3f}")
    cpu = render_cpu(results)
    if cpu:
        print(f"\nCPU used during the windows (medians):\n\n{cpu}")
    noisy = [other for runs in results.values() for run in runs if (other := run.get("other_cpu_cores", 0)) > NOISY]
    if noisy:
        print(
            f"warning: in {len(noisy)} runs other processes used {min(noisy):.2f}-{max(noisy):.2f} cores"
            " during the window; those figures are noisy"
        )
    settings = {
        "scenarios": list(args.only),
        "transports": list(args.transports),
        "loops": list(args.loops),
        "repeat": args.repeat,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "idle_connections": args.connections,
        "quiet_wait_s": args.quiet_wait,
        "profiled": args.profile is not None,
        "pinned": args.pin,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(to_json(rows, results, machine_info(), settings), indent=2) + "\n")
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
