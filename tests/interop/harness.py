"""One interop test's world: a server, clients, and a relay between them.

Every client connects through a :class:`~.relay.Relay`, so each test can
check the bytes that crossed. Which end is Python depends on the
:class:`Direction`; scenarios use the same code for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ..helpers import Certs
from .gopeers import GoClient, GoServer
from .goproc import GoProcess
from .peers import ClientSide, ServerSide
from .pypeers import PythonClient, PythonServer
from .relay import Relay, RelayedConnection, Stream

__all__ = ["DEFAULT_CLOSE_WAIT", "Direction", "Interop"]

T = TypeVar("T")

DEFAULT_CLOSE_WAIT = 30.0
"""The Python peers' close_wait: long, so that waiting for a close that never comes shows up."""


class Direction(enum.Enum):
    """Which end is Python."""

    PY_CLIENT = "pyclient-goserver"
    GO_CLIENT = "goclient-pyserver"

    @property
    def title(self) -> str:
        """A column title for the results table."""
        return "Python client → Go server" if self is Direction.PY_CLIENT else "Go client → Python server"

    @property
    def python_side(self) -> str:
        """``client`` or ``server``: the side of a relayed connection that Python writes."""
        return "client" if self is Direction.PY_CLIENT else "server"

    @property
    def go_side(self) -> str:
        """The side of a relayed connection that Go writes."""
        return "server" if self is Direction.PY_CLIENT else "client"


class Interop:
    """Starts peers for one test and stops all of them at teardown."""

    def __init__(self, direction: Direction, binary: Path, certs: Certs, tmp: Path) -> None:
        self.direction = direction
        self.binary = binary
        self.certs = certs
        self.tmp = tmp
        self.tls = False
        self.server: ServerSide | None = None
        self.relay: Relay | None = None
        self.clients: list[ClientSide] = []
        self.conns: dict[int, list[RelayedConnection]] = {}
        """Relayed connections of each client (by id()), in connection order."""
        self._procs = 0
        self._background: list[asyncio.Task[Any]] = []

    # Peers.

    def _process(self, args: list[str]) -> GoProcess:
        self._procs += 1
        return GoProcess(self.binary, args, self.tmp / f"gopeer-{self._procs}.stderr")

    async def start_server(self, *, tls: bool = False, **python_options: object) -> ServerSide:
        """Start the server (Go or Python by direction) and the relay in front of it.

        `python_options` go to the Python Server only (close_wait defaults to 30 s).
        """
        assert self.server is None, "one server per test"
        self.tls = tls
        server: ServerSide
        if self.direction is Direction.PY_CLIENT:
            args = ["-mode", "server", "-listen", "127.0.0.1:0"]
            if tls:
                args += ["-tls-cert", str(self.certs.server_cert), "-tls-key", str(self.certs.server_key)]
            self.server = server = GoServer(self._process(args))
            await server.start()
        else:
            options: dict[str, object] = {"listen": "127.0.0.1:0", "close_wait": DEFAULT_CLOSE_WAIT}
            if tls:
                options["tls"] = self.certs.server_context()
            options.update(python_options)
            self.server = server = PythonServer(**options)
            await server.start()
        self.relay = await Relay(server.addr, parse=not tls).start()
        return server

    async def new_client(
        self,
        *,
        connect: bool = True,
        barrier: bool = True,
        heartbeat: float | None = None,
        **python_options: object,
    ) -> ClientSide:
        """A client of the other language, through the relay; connected (and past a sync barrier) by default.

        `heartbeat` sets the ping interval (both languages; default: theirs,
        5 s); `python_options` go to the Python Client only.
        """
        assert self.relay is not None, "start the server first"
        client: ClientSide
        if self.direction is Direction.PY_CLIENT:
            options: dict[str, object] = {"server": self.relay.addr}
            if self.tls:
                options["tls"] = self.certs.client_context()
            if heartbeat is not None:
                options["heartbeat_interval"] = heartbeat
            options.update(python_options)
            client = PythonClient(**options)
        else:
            args = ["-mode", "client", "-addr", self.relay.addr, "-concurrency", "1"]
            if self.tls:
                args += ["-tls-ca", str(self.certs.ca_cert)]
            if heartbeat is not None:
                args += ["-heartbeat", f"{heartbeat}s"]
            client = GoClient(self._process(args))
            self.clients.append(client)  # before starting: stopped at teardown whatever happens
            await client.start()
        if client not in self.clients:
            self.clients.append(client)
        self.conns[id(client)] = []
        if connect:
            await self.connect(client)
            if barrier:
                await client.barrier()
        return client

    async def connect(self, client: ClientSide) -> RelayedConnection:
        """Connect `client` (again) and return its new relayed connection."""
        assert self.relay is not None
        count = len(self.relay.connections)
        await client.connect()
        await self.relay.wait_connections(count + 1)
        conn = self.relay.connections[count]
        self.conns[id(client)].append(conn)
        return conn

    def conn(self, client: ClientSide, index: int = -1) -> RelayedConnection:
        """A relayed connection of `client` (its latest by default)."""
        return self.conns[id(client)][index]

    def background(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` as a task, cancelled at teardown if still running."""
        task = asyncio.ensure_future(coro)
        self._background.append(task)
        return task

    # What crossed the relay.

    def python_wrote(self, conn: RelayedConnection) -> Stream:
        """What the Python end of `conn` wrote."""
        return conn.from_client if self.direction is Direction.PY_CLIENT else conn.from_server

    def go_wrote(self, conn: RelayedConnection) -> Stream:
        """What the Go end of `conn` wrote."""
        return conn.from_server if self.direction is Direction.PY_CLIENT else conn.from_client

    # Teardown.

    async def aclose(self) -> None:
        """Stop every peer: clients, Go processes, the relay, then a Python server (all bounded)."""
        for task in self._background:
            task.cancel()
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.stop()
        if self.relay is not None:
            await self.relay.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
