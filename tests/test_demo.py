"""The README's demo command keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_tells_the_story() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True, timeout=60, check=True
    )
    out = done.stdout
    for line in (
        "[   ana] joined 'go', members ['ana']",
        "[   bob] rejected: no room 'rust'",
        "[   ana] sync reply JoinAccepted with headers {'room-size': '2'}",
        "[   ana] heard ana: 'hello!' (broadcast)",
        "[   bob] heard ana: 'hello!' (broadcast)",
        "[   bob] topic rooms.go: ana said 'hello!'",
        "[   ana] status CLOSED",
        "[server] status CLOSED",
    ):
        assert line in out, out
    assert out.strip().endswith("done")
    assert "error" not in out
