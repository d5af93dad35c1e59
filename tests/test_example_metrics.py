"""The README's observability example keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_metrics_example_serves_metrics_and_health_on_the_server_port() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "metrics.py")], capture_output=True, text=True, timeout=60, check=True
    )
    out = done.stdout
    assert "GET /healthz -> 200 RUNNING" in out
    assert "GET /metrics -> 200" in out
    assert 'goomerang_server_message_processing_duration_seconds_count{kind="goomerang.example.MessageV1"} 5.0' in out
    assert 'goomerang_client_message_sent_sync_duration_seconds_count{kind="goomerang.example.MessageV1"} 4.0' in out
    assert "guard caught RuntimeError" in out
    assert "outcome=error" in out
    assert out.strip().endswith("done")
