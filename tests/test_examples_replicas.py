"""The README's multi-replica example keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .brokers import KINDS, require_binary

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", KINDS)
def test_replicas_example_runs(kind: str) -> None:
    require_binary(kind)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "replicas.py"), kind],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "[ bob on B] got 'hello from A' headers={'lang': 'en'}" in out
    assert "[ ana on A] got 'everyone, from ana'" in out
    assert "[ bob on B] got 'everyone, from ana'" in out
    assert "[ bob on B] got 'server B publishes'" in out
    assert "[ ana on A] got 'server A broadcasts'" in out
    assert out.strip().endswith("done")
    assert "error" not in out
