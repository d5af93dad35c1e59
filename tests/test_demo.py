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
    assert "sync reply 'hello bob'" in out
    assert "'status': '200'" in out
    assert "push: 'a push from the server'" in out
    assert out.strip().endswith("done")
    assert "error" not in out
