"""What machine and software a result came from."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib.metadata import PackageNotFoundError, version
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


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, object]:
    """CPU, cores, OS, Python and library versions (None: not installed), and the date."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "websockets": version("websockets"),
        "picows": _version("picows"),
        "aiofastnet": _version("aiofastnet"),
        "uvloop": _version("uvloop"),
        "protobuf": version("protobuf"),
        "goomerang": version("goomerang"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
