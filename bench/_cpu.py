"""How much CPU other processes took: benchmarks on a shared machine are noisy.

Reads /proc/stat (all CPUs) and /proc/<pid>/stat (the benchmark's own
processes) so each run can report the cores other processes used during
its window, and the driver can wait for a quiet machine before a run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSample", "other_cores", "process_cores", "sample", "wait_until_quiet"]

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Busy CPU time of the machine and of some processes, in clock ticks."""

    at: float
    machine: int
    processes: tuple[int, ...]
    """Busy ticks of each sampled process, in the order given."""


def _machine_busy() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user and nice
    return sum(fields) - idle - guest


def _process_busy(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def sample(pids: Sequence[int] = ()) -> CpuSample:
    """Busy ticks now, of the machine and of `pids`."""
    return CpuSample(time.monotonic(), _machine_busy(), tuple(_process_busy(pid) for pid in pids))


def other_cores(before: CpuSample, after: CpuSample) -> float:
    """Cores used between the samples by processes other than the sampled ones."""
    seconds = after.at - before.at
    if seconds <= 0:
        return 0.0
    ticks = (after.machine - before.machine) - (sum(after.processes) - sum(before.processes))
    return max(0.0, ticks / _TICK / seconds)


def process_cores(before: CpuSample, after: CpuSample) -> list[float]:
    """Cores each sampled process used between the samples."""
    seconds = after.at - before.at
    if seconds <= 0:
        return [0.0 for _ in before.processes]
    return [(a - b) / _TICK / seconds for b, a in zip(before.processes, after.processes, strict=True)]


async def wait_until_quiet(max_wait: float, threshold: float = 0.3, interval: float = 0.5) -> float:
    """Wait (up to `max_wait` s) until the machine uses under `threshold` cores; returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        before = sample()
        await asyncio.sleep(interval)
        busy = other_cores(before, sample())
        if busy < threshold or time.monotonic() >= deadline:
            return busy
