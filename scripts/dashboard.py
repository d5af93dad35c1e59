"""Write grafana/goomerang.json, the Grafana dashboard of goomerang's Prometheus metrics.

Run ``.venv/bin/python scripts/dashboard.py`` after changing a panel here;
``tests/test_dashboard.py`` checks the committed JSON is what this renders and
that every metric it queries is one the library exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "grafana" / "goomerang.json"

Json = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
WIDTH = 24


class Layout:
    """Places panels left to right in rows of the dashboard's 24 columns."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def add(self, panel: Json, w: int, h: int) -> None:
        if self._x + w > WIDTH:
            self._newline()
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_height = max(self._row_height, h)


def target(expr: str, legend: str, ref: str) -> Json:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def panel(kind: str, title: str, description: str, unit: str, targets: list[Json], **extra: Any) -> Json:
    result: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": targets,
    }
    result.update(extra)
    return result


def timeseries(title: str, description: str, unit: str, *exprs: tuple[str, str]) -> Json:
    refs = "ABCDEFGH"
    return panel(
        "timeseries", title, description, unit, [target(e, legend, refs[i]) for i, (e, legend) in enumerate(exprs)]
    )


def quantiles(side: str, metric: str, title: str, description: str, unit: str, selector: str) -> Json:
    """p50, p95 and p99 of a histogram, over every kind."""
    bucket = f"goomerang_{side}_{metric}_bucket{{{selector}}}"
    return timeseries(
        title,
        description,
        unit,
        *(
            (f"histogram_quantile({q}, sum by (le) (rate({bucket}{RATE})))", f"p{round(q * 100)}")
            for q in (0.5, 0.95, 0.99)
        ),
    )


def by_kind_quantile(side: str, metric: str, title: str, description: str, unit: str, selector: str) -> Json:
    """p95 of a histogram for each kind."""
    bucket = f"goomerang_{side}_{metric}_bucket{{{selector}}}"
    return timeseries(
        title, description, unit, (f"histogram_quantile(0.95, sum by (le, kind) (rate({bucket}{RATE})))", "{{kind}}")
    )


def rate_by(side: str, metric: str, labels: str, legend: str, selector: str) -> tuple[str, str]:
    return f"sum by ({labels}) (rate(goomerang_{side}_{metric}{{{selector}}}{RATE}))", legend


STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "NEW", "color": "blue", "index": 0},
            "1": {"text": "RUNNING", "color": "green", "index": 1},
            "2": {"text": "CLOSING", "color": "orange", "index": 2},
            "3": {"text": "CLOSED", "color": "red", "index": 3},
        },
    }
]


def status_panel(side: str, selector: str) -> Json:
    result = panel(
        "state-timeline",
        f"{side.capitalize()} status",
        f"The {side}s' lifecycle status. A gauge: changes faster than the scrape interval do not show.",
        "short",
        [target(f"goomerang_{side}_status{{{selector}}}", "{{instance}}", "A")],
    )
    result["fieldConfig"]["defaults"].update({"mappings": STATUS_MAPPINGS, "color": {"mode": "thresholds"}})
    result["options"].update({"mergeValues": True, "showValue": "auto", "rowHeight": 0.9})
    return result


def peer_section(layout: Layout, side: str, selector: str) -> None:
    """The panels servers and clients share."""
    other = "client" if side == "server" else "server"
    name = side.capitalize()
    layout.row(f"{side.capitalize()}: messages")
    layout.add(
        timeseries(
            f"{name} received messages by kind",
            f"Messages per second the {side}s' handlers received.",
            "reqps",
            rate_by(side, "message_received_size_bytes_count", "kind", "{{kind}}", selector),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            f"{name} sent messages by kind",
            f"Messages per second the {side}s sent themselves (handler sends and replies"
            + (", broadcasts)." if side == "server" else ", send and send_sync)."),
            "reqps",
            rate_by(side, "message_sent_size_bytes_count", "kind", "{{kind}}", selector),
        ),
        12,
        8,
    )
    layout.add(
        by_kind_quantile(
            side,
            "message_received_size_bytes",
            f"{name} received size p95 by kind",
            "Payload bytes.",
            "bytes",
            selector,
        ),
        12,
        8,
    )
    layout.add(
        by_kind_quantile(
            side, "message_sent_size_bytes", f"{name} sent size p95 by kind", "Payload bytes.", "bytes", selector
        ),
        12,
        8,
    )
    layout.row(f"{side.capitalize()}: timing and workers")
    layout.add(
        quantiles(
            side,
            "message_processing_duration_seconds",
            f"{name} processing time",
            "Seconds messages spent in the handler chain (middlewares included).",
            "s",
            selector,
        ),
        8,
        8,
    )
    layout.add(
        by_kind_quantile(
            side,
            "message_processing_duration_seconds",
            f"{name} processing time p95 by kind",
            "Seconds in the handler chain, per kind.",
            "s",
            selector,
        ),
        8,
        8,
    )
    layout.add(
        quantiles(
            side,
            "message_received_inflight_duration_seconds",
            f"{name} in-flight time",
            f"Seconds from the {other} building a message to the {side} handling it: "
            "network and queues, as good as the two clocks agree.",
            "s",
            selector,
        ),
        8,
        8,
    )
    layout.add(
        quantiles(
            side,
            "message_sent_duration_seconds",
            f"{name} send (queue) time",
            "Seconds to encode a message and queue it on its connection; "
            "high values mean a full outgoing queue (a slow peer).",
            "s",
            selector,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            f"{name} workers vs configured concurrency",
            "Handlers running now against the max_concurrency option, per instance.",
            "short",
            (f"sum by (instance) (goomerang_{side}_concurrent_workers{{{selector}}})", "running {{instance}}"),
            (f"max by (instance) (goomerang_{side}_config_max_concurrency{{{selector}}})", "max {{instance}}"),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            f"{name} errors by instance",
            f"Errors per second reported to the {side}s' error hooks"
            + (", and failed send_sync calls." if side == "client" else "."),
            "short",
            (f"sum by (instance) (rate(goomerang_{side}_errors_total{{{selector}}}{RATE}))", "{{instance}}"),
        ),
        8,
        8,
    )


def build() -> Json:
    """The whole dashboard as JSON-ready data."""
    servers = 'instance=~"$servers"'
    clients = 'instance=~"$clients"'
    layout = Layout()

    layout.row("Overview")
    layout.add(status_panel("server", servers), 8, 5)
    layout.add(status_panel("client", clients), 8, 5)
    layout.add(
        timeseries(
            "Connected clients",
            "Clients connected to the servers now, in all and per server.",
            "short",
            (f"sum(goomerang_server_connected_clients{{{servers}}})", "all servers"),
            (f"sum by (instance) (goomerang_server_connected_clients{{{servers}}})", "{{instance}}"),
        ),
        8,
        5,
    )
    layout.add(
        timeseries(
            "Server errors by type",
            "Errors per second reported by servers, by error class (SlowConsumerError, HandlerError...).",
            "short",
            (f"sum by (error_type) (rate(goomerang_server_errors_total{{{servers}}}{RATE}))", "{{error_type}}"),
        ),
        6,
        6,
    )
    layout.add(
        timeseries(
            "Client errors by type",
            "Errors per second reported by clients, and failed send_sync calls, by error class.",
            "short",
            (f"sum by (error_type) (rate(goomerang_client_errors_total{{{clients}}}{RATE}))", "{{error_type}}"),
        ),
        6,
        6,
    )
    layout.add(
        timeseries(
            "Server message rates",
            "Messages per second handled and sent by all servers.",
            "reqps",
            (f"sum(rate(goomerang_server_message_received_size_bytes_count{{{servers}}}{RATE}))", "received"),
            (f"sum(rate(goomerang_server_message_sent_size_bytes_count{{{servers}}}{RATE}))", "sent"),
        ),
        6,
        6,
    )
    layout.add(
        timeseries(
            "Client message rates",
            "Messages per second handled and sent by all clients.",
            "reqps",
            (f"sum(rate(goomerang_client_message_received_size_bytes_count{{{clients}}}{RATE}))", "received"),
            (f"sum(rate(goomerang_client_message_sent_size_bytes_count{{{clients}}}{RATE}))", "sent"),
        ),
        6,
        6,
    )

    peer_section(layout, "server", servers)
    layout.row("Server: broadcast and pub/sub")
    layout.add(
        timeseries(
            "Broadcasts",
            "Server broadcasts and broadcast commands from clients, per second and kind.",
            "ops",
            rate_by("server", "message_broadcast_sent_duration_seconds_count", "kind", "server {{kind}}", servers),
            rate_by("server", "broadcast_client_total", "kind", "from clients {{kind}}", servers),
        ),
        8,
        8,
    )
    layout.add(
        quantiles(
            "server",
            "message_broadcast_sent_duration_seconds",
            "Broadcast time",
            "Seconds a whole server broadcast took to queue the message for every client.",
            "s",
            servers,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Publications",
            "Publications per second, by topic and message kind (from clients and the server).",
            "ops",
            rate_by("server", "pubsub_publish_total", "topic, message", "{{topic}} {{message}}", servers),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Subscriptions",
            "Subscribe and unsubscribe commands per second, by topic.",
            "ops",
            rate_by("server", "pubsub_subscribe_total", "topic", "subscribe {{topic}}", servers),
            rate_by("server", "pubsub_unsubscribe_total", "topic", "unsubscribe {{topic}}", servers),
        ),
        24,
        7,
    )

    peer_section(layout, "client", clients)
    layout.row("Client: sync requests and commands")
    layout.add(
        quantiles(
            "client",
            "message_sent_sync_duration_seconds",
            "Sync round trip",
            "Seconds from send_sync to its reply (successful calls).",
            "s",
            clients,
        ),
        8,
        8,
    )
    layout.add(
        by_kind_quantile(
            "client",
            "message_sent_sync_duration_seconds",
            "Sync round trip p95 by kind",
            "Seconds from send_sync to its reply, per request kind.",
            "s",
            clients,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Commands sent",
            "Broadcast, publish, subscribe and unsubscribe commands clients sent, per second.",
            "ops",
            rate_by("client", "broadcast_cmd_sent_total", "kind", "broadcast {{kind}}", clients),
            rate_by(
                "client", "pubsub_publish_cmd_sent_total", "topic, message", "publish {{topic}} {{message}}", clients
            ),
            rate_by("client", "pubsub_subscribe_cmd_sent_total", "topic", "subscribe {{topic}}", clients),
            rate_by("client", "pubsub_unsubscribe_cmd_sent_total", "topic", "unsubscribe {{topic}}", clients),
        ),
        8,
        8,
    )

    return {
        "title": "goomerang",
        "uid": "goomerang-python",
        "description": "Servers and clients of goomerang (Python or Go): messages, timing, workers, pub/sub.",
        "tags": ["goomerang", "websocket", "protobuf"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                },
                instance_variable("servers", "Servers", "goomerang_server_status"),
                instance_variable("clients", "Clients", "goomerang_client_status"),
            ]
        },
        "panels": layout.panels,
    }


def instance_variable(name: str, label: str, metric: str) -> Json:
    query = f"label_values({metric}, instance)"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-instances"},
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
    }


def render() -> str:
    """The dashboard file's exact text."""
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
