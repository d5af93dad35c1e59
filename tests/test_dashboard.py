"""The Grafana dashboard: valid JSON, fresh, and querying only metrics the library exports."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from goomerang_runtime.metrics import ClientMetrics, ServerMetrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "grafana" / "goomerang.json"
METRIC = re.compile(r"\bgoomerang_[a-zA-Z0-9_:]+")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Each exported metric family -> the sample names a query may use."""
    registry = CollectorRegistry()
    ServerMetrics().register(registry)
    ClientMetrics().register(registry)
    return {family.name: {family.name + s for s in SUFFIXES[family.type]} for family in registry.collect()}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_dashboard_parses_and_has_what_grafana_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    assert dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    all_panels = list(panels(dashboard["panels"]))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    for p in all_panels:
        assert {"type", "title", "gridPos"} <= p.keys()
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}"
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "servers", "clients"}


def test_every_queried_metric_is_exported_and_every_exported_metric_is_shown() -> None:
    families = exported()
    samples = set().union(*families.values())
    used = {name for expr in queries(json.loads(DASHBOARD.read_text())) for name in METRIC.findall(expr)}
    assert used
    assert used <= samples, f"not exported: {sorted(used - samples)}"
    unshown = sorted(family for family, names in families.items() if not names & used)
    assert not unshown, f"exported but not on the dashboard: {unshown}"


def test_dashboard_is_what_the_script_renders() -> None:
    spec = importlib.util.spec_from_file_location("dashboard_script", ROOT / "scripts" / "dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert DASHBOARD.read_text() == script.render(), "run: .venv/bin/python scripts/dashboard.py"
