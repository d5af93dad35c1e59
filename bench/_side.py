"""What both side programs share: the driver protocol, the meter, fan-out pacing.

A side program is a benchmark server or client process. It speaks to the
driver (``run.py``) in JSON lines on stdout (``{"event": "ready", ...}``)
and reads one-word commands on stdin:

- ``begin`` / ``end``: start the measured window / end it and emit ``result``;
- ``settle``: collect garbage and emit ``settled`` with the connection count;
- ``connect N``: (idle clients) open N more connections, emit ``connected``;
- ``stop`` or end of input: finish cleanly and exit.

Every side takes ``--loop asyncio|uvloop`` (the event loop it runs on) and
goomerang's takes ``--transport websockets|picows``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bench._stats import percentile
from bench._workload import BATCH, WINDOW, WORKLOADS

__all__ = [
    "LOOPS",
    "TRANSPORTS",
    "Control",
    "Meter",
    "Pacer",
    "SideArgs",
    "obey",
    "parse_args",
    "raise_fd_limit",
    "run",
]

LOOPS = ("asyncio", "uvloop")
TRANSPORTS = ("websockets", "picows")


@dataclass(frozen=True, slots=True)
class SideArgs:
    """The command line of a side program."""

    role: str
    workload: str
    port: int
    api: str
    inflight: int
    clients: int
    loop: str = "asyncio"
    transport: str = "websockets"


def parse_args(argv: list[str] | None = None) -> SideArgs:
    parser = argparse.ArgumentParser(description="A benchmark server or client process, driven by bench/run.py.")
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--port", type=int, default=0, help="the server's port (clients)")
    parser.add_argument("--api", choices=("plain", "stub"), default="plain", help="sync: runtime API or typed stub")
    parser.add_argument("--inflight", type=int, default=1, help="sync: requests in flight")
    parser.add_argument("--clients", type=int, default=1, help="fan-out: subscriber connections")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the event loop")
    parser.add_argument("--transport", choices=TRANSPORTS, default="websockets", help="goomerang's transport")
    ns = parser.parse_args(argv)
    return SideArgs(ns.role, ns.workload, ns.port, ns.api, ns.inflight, ns.clients, ns.loop, ns.transport)


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run `main` on the default asyncio loop or on uvloop."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)


def raise_fd_limit() -> None:
    """Allow as many open files as the hard limit (thousands of sockets)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Control:
    """The side program's end of the driver protocol."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    @classmethod
    async def open(cls) -> Control:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        return cls(reader)

    def emit(self, event: str, **fields: object) -> None:
        """Tell the driver something, as one JSON line."""
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    async def command(self) -> list[str]:
        """The next command's words; ``["stop"]`` at end of input."""
        line = await self._reader.readline()
        return line.decode().split() or ["stop"]


class Meter:
    """Counts events (and round trips) and reports those inside the window."""

    __slots__ = ("_count0", "_latencies", "_started", "count")

    def __init__(self) -> None:
        self.count = 0
        self._count0 = 0
        self._started = 0
        self._latencies: list[int] | None = None

    def tick(self) -> None:
        """One more event."""
        self.count += 1

    def record(self, nanoseconds: int) -> None:
        """One more round trip, and its duration."""
        self.count += 1
        latencies = self._latencies
        if latencies is not None:
            latencies.append(nanoseconds)

    def begin(self) -> None:
        self._latencies = []
        self._count0 = self.count
        self._started = time.perf_counter_ns()

    def end(self) -> dict[str, float]:
        """Events per second in the window, with p50/p99 (µs) when round trips were recorded."""
        seconds = (time.perf_counter_ns() - self._started) / 1e9
        events = self.count - self._count0
        result: dict[str, float] = {"seconds": seconds, "events": events, "rate": events / seconds}
        latencies, self._latencies = self._latencies, None
        if latencies:
            result["p50_us"] = percentile(latencies, 50) / 1000
            result["p99_us"] = percentile(latencies, 99) / 1000
        return result


class Pacer:
    """Credit-based flow control of a fan-out producer (same for both sides).

    Subscribers say hello once, then acknowledge the last message of every
    batch; the producer starts when all said hello and stays at most
    ``WINDOW`` batches ahead of the slowest subscriber, so it runs as fast
    as the subscribers drain and no queue grows without bound.
    """

    def __init__(self, subscribers: int) -> None:
        self._subscribers = subscribers
        self._hellos = 0
        self._ready = asyncio.Event()
        self._acks: dict[int, int] = {}
        self._done = 0
        self._sent = 0
        self._room = asyncio.Event()

    def hello(self) -> None:
        self._hellos += 1
        if self._hellos == self._subscribers:
            self._ready.set()

    def ack(self, sequence: int) -> None:
        batch = sequence // BATCH
        acks = self._acks.get(batch, 0) + 1
        if acks < self._subscribers:
            self._acks[batch] = acks
            return
        self._acks.pop(batch, None)
        self._done = max(self._done, batch + 1)
        self._room.set()

    async def next_batch(self) -> range:
        """Sequence numbers of the next batch, once there is room for it."""
        await self._ready.wait()
        while self._sent - self._done >= WINDOW:
            self._room.clear()
            await self._room.wait()
        start = self._sent * BATCH
        self._sent += 1
        return range(start, start + BATCH)


async def obey(
    control: Control,
    meter: Meter,
    connections: Callable[[], int],
    connect: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Run the driver's commands until ``stop``."""
    while True:
        words = await control.command()
        match words:
            case ["begin"]:
                meter.begin()
            case ["end"]:
                control.emit("result", **meter.end())
            case ["settle"]:
                gc.collect()
                control.emit("settled", connections=connections())
            case ["connect", count] if connect is not None:
                await connect(int(count))
                control.emit("connected", connections=connections())
            case ["stop"]:
                return
            case _:
                control.emit("error", detail=f"unknown command {words!r}")
