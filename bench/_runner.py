"""Runs one case: starts its server and client processes and measures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench._cpu import other_cores, process_cores, sample, wait_until_quiet
from bench._scenarios import Case

__all__ = ["BenchError", "Settings", "SideProcess", "run_case", "vm_rss_kib"]

HERE = Path(__file__).resolve().parent
SIDES = {
    "goomerang": HERE / "_goomerang_side.py",
    "raw": HERE / "_raw_side.py",
    "rawpicows": HERE / "_rawpicows_side.py",
}
START_TIMEOUT = 60.0
"""Seconds for a side process to report ready (imports, 2,000 connections...)."""


class BenchError(Exception):
    """A side process failed or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How long and how big each run is."""

    warmup: float
    duration: float
    connections: int
    quiet_wait: float = 0.0
    """Before each run, wait up to this many seconds for other processes to leave the CPUs idle."""
    profile_dir: Path | None = None
    """When set, py-spy samples both processes during each window, writing collapsed stacks here."""
    pin: bool = False
    """Pin the server to the first CPU and the client to the second (with at least two)."""


def vm_rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


class SideProcess:
    """A server or client process speaking the JSON-line protocol of ``_side.py``."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.name = name
        self._proc = proc
        self._stderr = stderr

    @classmethod
    async def start(cls, case: Case, role: str, args: list[str], settings: Settings) -> SideProcess:
        command = [sys.executable, str(SIDES[case.side]), role, case.workload, *args]
        side = await cls.spawn(f"{case.key} {role}", command)
        cpus = sorted(os.sched_getaffinity(0))
        if settings.pin and len(cpus) >= 2:
            with contextlib.suppress(OSError):  # a sandbox may forbid it: then unpinned
                os.sched_setaffinity(side.pid, {cpus[0] if role == "server" else cpus[1]})
        return side

    @classmethod
    async def spawn(cls, name: str, command: list[str]) -> SideProcess:
        """Start `command`, a program speaking the protocol of ``_side.py``."""
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish())
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
        return cls(name, proc, stderr)

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    def send(self, command: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command.encode() + b"\n")

    async def expect(self, event: str, timeout: float = START_TIMEOUT) -> dict[str, float]:
        """Wait for the next line reporting `event` (other output is skipped)."""
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self._proc.stdout.readline()
                    if not line:
                        raise BenchError(f"{self.name} exited before {event!r}:\n{self.errors()}")
                    if not line.startswith(b"{"):
                        continue
                    message = json.loads(line)
                    if message.get("event") == "error":
                        raise BenchError(f"{self.name}: {message.get('detail')}")
                    if message.get("event") == event:
                        return {key: value for key, value in message.items() if key != "event"}
        except TimeoutError:
            raise BenchError(f"{self.name}: no {event!r} within {timeout}s:\n{self.errors()}") from None

    def errors(self) -> str:
        """The last lines the process wrote to stderr."""
        self._stderr.seek(0)
        return "\n".join(self._stderr.read().decode(errors="replace").splitlines()[-20:])

    async def finish(self, timeout: float = 30.0) -> None:
        """Ask the process to stop; kill it if it does not in time."""
        if self._proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.send("stop")
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                async with asyncio.timeout(timeout):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._stderr.close()


async def _settled_rss(server: SideProcess, pid: int, connections: int) -> int:
    """The server's RSS once it holds `connections` connections, after a collection."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            server.send("settle")
            settled = await server.expect("settled")
            if settled["connections"] >= connections:
                return vm_rss_kib(pid)
            await asyncio.sleep(0.05)  # the server is still accepting the last connections


async def _measure_memory(server: SideProcess, client: SideProcess, pid: int, connections: int) -> dict[str, float]:
    """Per-connection server memory: RSS growth from a few idle connections to all of them."""
    warm = max(1, connections // 20)
    await client.expect("ready")
    empty = await _settled_rss(server, pid, 0)
    client.send(f"connect {warm}")
    await client.expect("connected")
    warmed = await _settled_rss(server, pid, warm)
    client.send(f"connect {connections - warm}")
    await client.expect("connected", timeout=START_TIMEOUT * 2)
    full = await _settled_rss(server, pid, connections)
    return {
        "kib_per_conn": (full - warmed) / (connections - warm),
        "rss_empty_kib": empty,
        "rss_warm_kib": warmed,
        "rss_full_kib": full,
        "connections": connections,
        "warm_connections": warm,
    }


async def _profile(pid: int, duration: float, out: Path) -> asyncio.subprocess.Process:
    """Sample `pid` with py-spy for the measured window, writing collapsed stacks to `out`."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    seconds = str(max(1, round(duration)))
    return await asyncio.create_subprocess_exec(
        *(py_spy, "record", "--pid", str(pid), "--duration", seconds, "--rate", "250"),
        *("--format", "raw", "--output", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def run_case(case: Case, settings: Settings) -> dict[str, float]:
    """Run `case` once and return its figures.

    Timed runs also report the cores the server and the client used during
    the window (``server_cpu_cores``, ``client_cpu_cores``: near 1.0 is the
    bottleneck), ``events_per_cpu_s`` (events per CPU-second of both: the
    work per event, much less sensitive to noise) and ``other_cpu_cores``,
    what other processes used (noise).
    """
    if settings.quiet_wait > 0:
        await wait_until_quiet(settings.quiet_wait)
    server = await SideProcess.start(case, "server", list(case.server_args), settings)
    try:
        ready = await server.expect("ready")
        port, pid = int(ready["port"]), int(ready["pid"])
        client = await SideProcess.start(case, "client", ["--port", str(port), *case.client_args], settings)
        try:
            if case.meter == "memory":
                return await _measure_memory(server, client, pid, settings.connections)
            client_pid = int((await client.expect("ready"))["pid"])
            await asyncio.sleep(settings.warmup)
            profilers = []
            if settings.profile_dir is not None:
                for role, role_pid in (("server", pid), ("client", client_pid)):
                    name = f"{case.scenario}-{case.variant}-{case.impl}-{case.transport}-{case.loop}-{role}.txt"
                    out = settings.profile_dir / name
                    profilers.append(await _profile(role_pid, settings.duration, out))
            meter = server if case.meter == "server" else client
            cpu = sample((pid, client_pid))
            meter.send("begin")
            await asyncio.sleep(settings.duration)
            meter.send("end")
            result = await meter.expect("result")
            cpu_after = sample((pid, client_pid))
            result["other_cpu_cores"] = other_cores(cpu, cpu_after)
            server_cores, client_cores = process_cores(cpu, cpu_after)
            result["server_cpu_cores"], result["client_cpu_cores"] = server_cores, client_cores
            cpu_seconds = (server_cores + client_cores) * (cpu_after.at - cpu.at)
            result["events_per_cpu_s"] = result["events"] / cpu_seconds if cpu_seconds else 0.0
            for profiler in profilers:
                await profiler.wait()
            return result
        finally:
            await client.finish()
    finally:
        await server.finish()
