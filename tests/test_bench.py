"""The benchmark harness (bench/): its pieces, and a quick smoke run. No speed is asserted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench._replica_report import assign, plan, split
from bench._report import build_rows, codegen_ratios, render_cpu, render_table
from bench._scenarios import COMPARISONS, LOOPS, SCENARIOS, TRANSPORTS, Target, case_key, cases, metrics
from bench._side import Meter, Pacer
from bench._stats import merged_percentile, percentile, quantile_points, summarize
from bench._workload import BATCH, WINDOW, ping

from .brokers import require_binary

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_nearest_rank() -> None:
    values = [5, 1, 4, 2, 3]
    assert percentile(values, 50) == 3
    assert percentile(values, 99) == 5
    assert percentile(values, 0) == 1
    assert percentile(list(range(1, 101)), 99) == 99
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summarize_gives_median_and_range() -> None:
    summary = summarize([3.0, 1.0, 2.0])
    assert (summary.median, summary.low, summary.high) == (2.0, 1.0, 3.0)
    assert summary.as_dict()["runs"] == [3.0, 1.0, 2.0]


def test_targets_and_verdicts() -> None:
    assert Target(">=", 0.8).met(0.8)
    assert not Target(">=", 0.8).met(0.79)
    assert Target("<=", 1.25).met(1.2)
    assert str(Target("<=", 1.5)) == "≤ 1.5"
    ws = ("websockets",)
    results = {
        case_key("A", "plain", "goomerang", "websockets", "asyncio"): [{"rate": 90.0}, {"rate": 70.0}, {"rate": 80.0}],
        case_key("A", "plain", "raw", "websockets", "asyncio"): [{"rate": 100.0}, {"rate": 50.0}, {"rate": 100.0}],
        case_key("E", "plain", "goomerang", "websockets", "asyncio"): [{"kib_per_conn": 20.0}],
        case_key("E", "plain", "raw", "websockets", "asyncio"): [{"kib_per_conn": 10.0}],
    }
    rows = build_rows(metrics(("A", "E"), 2000, ws), results)
    # Paired: 90/100, 70/50, 80/100 -> median 0.9 (the ratio of medians is 0.8).
    assert [(row.paired.median, row.ratio, row.verdict) for row in rows] == [
        (pytest.approx(0.9), pytest.approx(0.8), "meets"),
        (2.0, 2.0, "MISSES"),
    ]
    table = render_table(rows)
    assert "goomerang/websockets vs raw websockets (asyncio)" in table
    expected = (
        "| A | one-way send, ~100 B | msg/s | 80.0 (70.0\u201390.0) | 100 (50.0\u2013100) | 0.90 (0.80\u20131.40)"
    )
    assert f"{expected} | 0.80 | ≥ 0.8 | meets | — |" in table
    assert "2000 idle clients" in table


def test_each_goomerang_run_follows_the_raw_run_it_is_paired_with() -> None:
    order = [case.key for case in cases(SCENARIOS, TRANSPORTS, LOOPS)]
    for case in cases(SCENARIOS, TRANSPORTS, LOOPS):
        if case.impl == "goomerang":
            raw = case_key(
                case.scenario, case.variant if case.scenario == "D" else "plain", "raw", case.transport, case.loop
            )
            assert order.index(raw) < order.index(case.key)
    sides = {(case.impl, case.transport): case.side for case in cases(("A",))}
    assert sides == {
        ("raw", "websockets"): "raw",
        ("goomerang", "websockets"): "goomerang",
        ("raw", "picows"): "rawpicows",
        ("goomerang", "picows"): "goomerang",
    }
    assert {case.loop for case in cases(("A",), loops=LOOPS)} == {"asyncio", "uvloop"}


def test_every_comparison_has_its_targets() -> None:
    targets = {(m.comparison, m.scenario, m.unit): m.target for m in metrics(SCENARIOS, 2000) if m.target}
    on_ws, on_picows, picows_over_ws, _ = (c.name for c in COMPARISONS)
    assert str(targets[(on_ws, "D", "deliveries/s")]) == "≥ 0.95"
    assert str(targets[(on_picows, "A", "msg/s")]) == "≥ 0.8"
    assert str(targets[(picows_over_ws, "C", "req/s")]) == "≥ 1.2"
    assert str(targets[(picows_over_ws, "B", "p50 µs")]) == "≤ 0.75"


def test_every_metric_has_its_cases() -> None:
    keys = {case.key for case in cases(SCENARIOS, TRANSPORTS, LOOPS)}
    for metric in metrics(SCENARIOS, 2000, TRANSPORTS, LOOPS):
        assert metric.ours in keys
        assert metric.raw in keys
    stub_cases = [case for case in cases(("B", "C")) if case.variant == "stub"]
    assert [(case.impl, case.transport) for case in stub_cases] == [
        ("goomerang", "websockets"),
        ("goomerang", "picows"),
    ] * 2


def test_codegen_ratio_compares_stub_with_plain_api() -> None:
    results = {
        case_key("C", "plain", "goomerang", "websockets", "asyncio"): [{"rate": 100.0}],
        case_key("C", "stub", "goomerang", "websockets", "asyncio"): [{"rate": 99.0}],
        case_key("C", "plain", "raw", "websockets", "asyncio"): [{"rate": 120.0}],
    }
    ratios = codegen_ratios(build_rows(metrics(("C",), 2000, ("websockets",)), results))
    assert ratios == {"C req/s (websockets, asyncio)": 0.99}


def test_cpu_table_gives_cores_and_cpu_per_event() -> None:
    run = {"rate": 1000.0, "server_cpu_cores": 0.5, "client_cpu_cores": 0.25, "other_cpu_cores": 0.0}
    table = render_cpu({"A/plain/goomerang": [run], "E/plain/raw": [{"kib_per_conn": 10.0}]})
    assert "| A/plain/goomerang | 0.50 | 0.25 | 0.00 | 500.0 | 250.0 |" in table
    assert "E/plain/raw" not in table
    assert render_cpu({"E/plain/raw": [{"kib_per_conn": 10.0}]}) == ""


def test_meter_reports_only_the_window() -> None:
    meter = Meter()
    meter.tick()
    meter.begin()
    for nanoseconds in (1000, 2000, 3000):
        meter.record(nanoseconds)
    result = meter.end()
    assert result["events"] == 3
    assert result["p50_us"] == 2.0
    assert result["p99_us"] == 3.0


def test_payload_is_about_100_bytes() -> None:
    assert 95 <= len(ping(123456).SerializeToString()) <= 105


async def test_pacer_keeps_the_producer_within_the_window() -> None:
    pacer = Pacer(subscribers=2)
    first = asyncio.ensure_future(pacer.next_batch())
    await asyncio.sleep(0)
    assert not first.done()  # nobody said hello yet
    pacer.hello()
    pacer.hello()
    batches = [await first] + [await pacer.next_batch() for _ in range(WINDOW - 1)]
    assert batches[1] == range(BATCH, 2 * BATCH)
    blocked = asyncio.ensure_future(pacer.next_batch())
    await asyncio.sleep(0)
    assert not blocked.done()  # WINDOW batches unacknowledged
    pacer.ack(BATCH - 1)
    await asyncio.sleep(0)
    assert not blocked.done()  # one subscriber acknowledged so far
    pacer.ack(BATCH - 1)
    assert await blocked == range(WINDOW * BATCH, (WINDOW + 1) * BATCH)


def test_quick_run_reports_figures_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "A,B", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| A | one-way send" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    assert report["settings"]["repeat"] == 1
    assert report["settings"]["pinned"] is True  # --pin is the default
    assert report["settings"]["loops"] == ["asyncio"]  # both with a full run
    assert report["settings"]["transports"] == ["websockets", "picows"]
    rows = {(row["comparison"], row["scenario"], row["title"], row["unit"]): row for row in report["rows"]}
    on_ws, on_picows, picows_over_ws, raw_over_raw = (c.name for c in COMPARISONS)
    b_rows = {
        ("B", f"{call}, 1 in flight", unit)
        for call in ("send_sync", "typed stub")
        for unit in ("p50 µs", "p99 µs", "req/s")
    }
    ours = {("A", "one-way send, ~100 B", "msg/s"), *b_rows}
    raws = {
        ("A", "one-way send, ~100 B", "msg/s"),
        *(("B", "request/reply, 1 in flight", u) for u in ("p50 µs", "p99 µs", "req/s")),
    }
    assert set(rows) == {
        *((name, *row) for name in (on_ws, on_picows, picows_over_ws) for row in ours),
        *((raw_over_raw, *row) for row in raws),
    }
    for row in rows.values():
        assert row["ours"]["median"] > 0
        assert row["raw"]["median"] > 0
        assert row["ratio"] == pytest.approx(row["ours"]["median"] / row["raw"]["median"])
        assert row["paired_ratio"]["median"] == pytest.approx(row["ratio"])  # one repetition
        assert row["verdict"] in ("meets", "MISSES", "(info)")
    assert set(report["codegen_stub_over_plain"]) == {
        f"B {unit} ({transport}, asyncio)" for unit in ("p50 µs", "p99 µs", "req/s") for transport in TRANSPORTS
    }
    for runs in report["runs"].values():
        assert {"server_cpu_cores", "client_cpu_cores", "other_cpu_cores"} <= set(runs[0])


def test_merged_percentile_weighs_each_process_by_its_count() -> None:
    assert quantile_points([3.0, 1.0, 2.0]) == [1.0, 2.0, 3.0]
    points = quantile_points([float(v) for v in range(1, 10_001)], points=100)
    assert len(points) == 100
    assert points[49] == pytest.approx(5000, rel=0.01)
    # 3 values of 1.0 seen 300 times, 1 value of 10.0 seen 100 times: the median is 1.0, p99 is 10.0.
    parts = [(300, [1.0, 1.0, 1.0]), (100, [10.0])]
    assert merged_percentile(parts, 50) == 1.0
    assert merged_percentile(parts, 99) == 10.0
    with pytest.raises(ValueError, match="no values"):
        merged_percentile([(0, [])], 50)


def test_replica_runs_pair_each_count_with_a_single_replica_before_it() -> None:
    runs = plan(("nats", "redis"), (2, 3), ("websockets",), ("asyncio",), single=True)
    keys = [run.key for run in runs]
    assert keys[0] == "none/1/websockets/asyncio"
    for broker in ("nats", "redis"):
        for count in (2, 3):
            ours = keys.index(f"{broker}/{count}/websockets/asyncio")
            assert keys[ours - 1] == f"{broker}/1:{count}/websockets/asyncio"
    assert split(50, 3) == [17, 17, 16]
    assert assign(50, 3, 2) == [[9, 9, 8], [8, 8, 8]]
    assert sum(map(sum, assign(50, 2, 2))) == 50


def test_replica_quick_run_reports_every_figure(tmp_path: Path) -> None:
    for kind in ("nats", "redis"):
        require_binary(kind)
    out = tmp_path / "replicas.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replicas.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "paired ratio" in done.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["repeat"] == 1
    assert report["settings"]["replicas"] == [2]
    rows = {(row["broker"], row["replicas"]): row for row in report["rows"]}
    assert set(rows) == {("none", 1), ("nats", 2), ("redis", 2)}
    for (broker, count), row in rows.items():
        assert row["rate"]["median"] > 0
        assert row["us_servers"]["median"] > 0
        assert row["us_clients"]["median"] > 0
        assert row["light_local_p50_us"]["median"] > 0
        assert row["local_p99_us"]["median"] >= row["local_p50_us"]["median"]
        assert "noise_cores" in row
        if count > 1:
            assert row["baseline"] == f"{broker}/1:2/websockets/asyncio"
            for field in ("rate", "us_A", "us_B", "us_broker", "cross_rate", "cross_p50_us", "light_cross_p99_us"):
                assert row[field]["median"] >= 0, field
            assert row["paired_rate"]["median"] == pytest.approx(row["rate"]["median"] / row["single_rate"]["median"])
    for runs in report["runs"].values():
        assert {"other_cpu_cores", "cores_A", "cores_clients0", "cores_clients1"} <= set(runs[0])
