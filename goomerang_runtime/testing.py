"""Run a server and its clients in memory, without sockets, for your own tests.

::

    from goomerang_runtime.testing import InMemory

    async def test_join() -> None:
        server = Server()
        chat.add_chat(server, ChatService())
        async with InMemory(server) as net, net.client() as client:
            reply = await chat.ChatStub(client).join(JoinRequest(room="go", user="ana"))
            assert isinstance(reply, JoinAccepted)

The server and clients run their real code paths (codec, dispatch, hooks,
middlewares, close handshake); only the WebSocket is replaced by a pair of
in-memory queues.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from types import TracebackType
from typing import Self, Unpack

from ._link import CLOSE_NORMAL, Direct, LinkClosed
from .client import Client
from .config import ClientOptions
from .server import Server
from .status import Status

__all__ = ["InMemory", "MemoryLink", "memory_pipe"]

_ids = itertools.count(1)


class _Closed:
    """Queue marker: the other side closed (or the link was aborted)."""

    __slots__ = ("clean", "code")

    def __init__(self, code: int | None, clean: bool) -> None:
        self.code = code
        self.clean = clean


class MemoryLink:
    """One end of an in-memory message pipe: the link (the transport seam) a peer runs over, without a socket."""

    __slots__ = ("_closed", "_inbox", "_peer", "remote_address")

    def __init__(self, remote_address: str) -> None:
        self.remote_address = remote_address
        self._inbox: asyncio.Queue[bytes | str | _Closed] = asyncio.Queue()
        self._peer: MemoryLink | None = None
        self._closed: _Closed | None = None

    async def recv(self) -> bytes | str:
        """The next message from the other end; raises the runtime's link-closed error once closed."""
        if self._closed is not None and self._inbox.empty():
            raise LinkClosed(self._closed.code, self._closed.clean, "in-memory link closed")
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._closed = self._closed or item
            raise LinkClosed(item.code, item.clean, "in-memory link closed")
        return item

    async def send(self, data: bytes | str) -> None:
        """Hand `data` to the other end."""
        if self._closed is not None or self._peer is None or self._peer._closed is not None:
            raise LinkClosed(self._closed.code if self._closed else None, False, "in-memory link closed")
        self._peer._inbox.put_nowait(data)

    def recv_nowait(self) -> bytes | None:
        """None: in memory, every message is taken by :meth:`recv`."""
        return None  # recv() takes from the queue

    @property
    def unread(self) -> int:
        """Messages received and not read yet."""
        items: list[bytes | str | _Closed] = list(self._inbox._queue)  # type: ignore[attr-defined, unused-ignore]
        return sum(1 for item in items if not isinstance(item, _Closed))

    def send_now(self, data: bytes) -> bool:
        """Hand `data` to the other end at once; False once the link is closed."""
        if self._closed is not None or self._peer is None or self._peer._closed is not None:
            return False
        self._peer._inbox.put_nowait(data)
        return True

    def send_soon(self, data: bytes) -> bool:
        """As :meth:`send_now`: in memory there is no system call to save."""
        return self.send_now(data)

    def set_direct(self, direct: Direct | None) -> None:
        """Ignored: in memory every message goes through :meth:`recv`."""

    def take_resume(self) -> None:
        """None: in memory nothing is handled from a callback."""
        return None

    async def ping(self) -> Awaitable[float]:
        """A ping answered at once (there is no network to measure)."""
        if self._closed is not None:
            raise LinkClosed(self._closed.code, self._closed.clean, "in-memory link closed")
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        pong.set_result(0.0)
        return pong

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        """Close both ends with `code` (1000: a clean close)."""
        self._end(_Closed(code, clean=code == CLOSE_NORMAL))

    def abort(self) -> None:
        """Drop both ends at once, as a lost connection."""
        self._end(_Closed(None, clean=False))

    def _end(self, marker: _Closed) -> None:
        if self._closed is not None:
            return
        self._closed = marker
        self._inbox.put_nowait(marker)
        peer = self._peer
        if peer is not None and peer._closed is None:
            peer._closed = marker
            peer._inbox.put_nowait(marker)


def memory_pipe(name: str = "memory") -> tuple[MemoryLink, MemoryLink]:
    """Two connected links: (client end, server end)."""
    n = next(_ids)
    client_end = MemoryLink(f"{name}-server:{n}")
    server_end = MemoryLink(f"{name}-client:{n}")
    client_end._peer = server_end
    server_end._peer = client_end
    return client_end, server_end


class InMemory:
    """Runs `server` without a socket and connects clients to it through memory.

    ``async with InMemory(server) as net`` starts the server (it must be
    NEW) and shuts it down on exit; ``net.client(**options)`` is an async
    context manager giving a connected client; ``await net.connect(client)``
    attaches a client you configured yourself.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        await self.server.start(listen=False)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.server.status is Status.RUNNING:
            await self.server.shutdown()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def connect(self, client: Client) -> Client:
        """Attach `client` (NEW or CLOSED) to the server; returns it RUNNING."""
        client_end, server_end = memory_pipe()
        task = asyncio.get_running_loop().create_task(self.server.serve_link(server_end))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await client.attach(client_end)
        return client

    def client(self, **options: Unpack[ClientOptions]) -> _ConnectedClient:
        """``async with net.client() as client``: a new client, connected, closed on exit."""
        options.setdefault("server", "in-memory:1")
        options.setdefault("heartbeat_interval", None)
        return _ConnectedClient(self, Client(**options))


class _ConnectedClient:
    def __init__(self, net: InMemory, client: Client) -> None:
        self._net = net
        self._client = client

    async def __aenter__(self) -> Client:
        return await self._net.connect(self._client)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client.status is Status.RUNNING:
            await self._client.close()
        elif self._client.status is Status.CLOSING:
            await self._client.wait_closed()
