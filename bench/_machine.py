"""What machine and software a result came from."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib.metadata import version
from pathlib import Path

__all__ = ["machine_info"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    """CPU, cores, OS, Python and library versions, and the date."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "websockets": version("websockets"),
        "protobuf": version("protobuf"),
        "goomerang": version("goomerang"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
