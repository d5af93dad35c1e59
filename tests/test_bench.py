"""The benchmark harness (bench/): its pieces, and a quick smoke run. No speed is asserted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench._report import build_rows, codegen_ratios, render_cpu, render_table
from bench._scenarios import SCENARIOS, Target, cases, metrics
from bench._side import Meter, Pacer
from bench._stats import percentile, summarize
from bench._workload import BATCH, WINDOW, ping

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
    results = {
        "A/plain/goomerang": [{"rate": 90.0}, {"rate": 70.0}, {"rate": 80.0}],
        "A/plain/raw": [{"rate": 100.0}],
        "E/plain/goomerang": [{"kib_per_conn": 20.0}],
        "E/plain/raw": [{"kib_per_conn": 10.0}],
    }
    rows = build_rows(metrics(("A", "E"), 2000), results)
    assert [(row.ratio, row.verdict) for row in rows] == [(0.8, "meets"), (2.0, "MISSES")]
    table = render_table(rows)
    assert "| A | one-way send, ~100 B | msg/s | 80.0 (70.0\u201390.0) | 100 | 0.80 | ≥ 0.8 | meets | — |" in table
    assert "2000 idle clients" in table


def test_every_metric_has_its_cases() -> None:
    keys = {case.key for case in cases(SCENARIOS)}
    for metric in metrics(SCENARIOS, 2000):
        assert metric.ours in keys
        assert metric.raw in keys
    stub_cases = [case for case in cases(("B", "C")) if case.variant == "stub"]
    assert [case.impl for case in stub_cases] == ["goomerang", "goomerang"]


def test_codegen_ratio_compares_stub_with_plain_api() -> None:
    results = {
        "C/plain/goomerang": [{"rate": 100.0}],
        "C/stub/goomerang": [{"rate": 99.0}],
        "C/plain/raw": [{"rate": 120.0}],
    }
    assert codegen_ratios(build_rows(metrics(("C",), 2000), results)) == {"C req/s": 0.99}


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
    rows = {(row["scenario"], row["title"], row["unit"]): row for row in report["rows"]}
    assert set(rows) == {
        ("A", "one-way send, ~100 B", "msg/s"),
        *(
            ("B", title, unit)
            for title in ("send_sync, 1 in flight", "typed stub, 1 in flight")
            for unit in ("p50 µs", "p99 µs", "req/s")
        ),
    }
    for row in rows.values():
        assert row["ours"]["median"] > 0
        assert row["raw"]["median"] > 0
        assert row["ratio"] == pytest.approx(row["ours"]["median"] / row["raw"]["median"])
        assert row["verdict"] in ("meets", "MISSES", "(info)")
    assert set(report["codegen_stub_over_plain"]) == {"B p50 µs", "B p99 µs", "B req/s"}
    for runs in report["runs"].values():
        assert {"server_cpu_cores", "client_cpu_cores", "other_cpu_cores"} <= set(runs[0])
