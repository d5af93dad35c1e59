"""A TCP load balancer on loopback for the tests: each new connection goes to the current target replica.

A client of the tests connects to :attr:`Balancer.addr`; :meth:`Balancer.point`
sends new connections to another replica, and :meth:`Balancer.hold` keeps new
connections waiting (the client is away) until :meth:`Balancer.release`;
:meth:`Balancer.stall` stops passing what servers send to their clients (a
client that reads nothing) until :meth:`Balancer.flow`.
"""

from __future__ import annotations

import asyncio
import contextlib


class Balancer:
    """Forwards each accepted connection to the replica it points at when the connection is let through."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.accepted = 0
        self.arrived = asyncio.Event()
        """Set at each accepted connection."""
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.addr = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.addr = f"127.0.0.1:{port}"

    def point(self, target: str) -> None:
        """New connections go to `target` (host:port) from now on."""
        self.target = target

    def hold(self) -> None:
        """New connections wait (their client is away) until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def stall(self) -> None:
        """What servers send waits in the kernel's buffers (their clients read nothing) until :meth:`flow`."""
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.arrived.set()
        await self._open.wait()
        host, port = self.target.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        for source, sink, gate in ((reader, up_writer, None), (up_reader, writer, self._flowing)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink, gate))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, gate: asyncio.Event | None) -> None:
        try:
            while (gate is None or await gate.wait()) and (data := await source.read(65536)):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        if self._pipes:
            await asyncio.wait(self._pipes)
        self._open.set()
        self._flowing.set()
