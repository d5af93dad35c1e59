"""The NATS broker against a real nats-server, through a recording loopback proxy.

A subscription the broker calls confirmed is in place at the server: the
broker confirms a SUB (and a queue member's SUB or UNSUB) with a
PING/PONG: the server answers PINGs in the order it reads the connection,
so a PONG proves it processed every command sent before its PING. nats-py's
``flush()`` writes its PING straight to the socket, though, ahead of the
commands its flusher task has not written yet (a SUB just made). Its PONG
then proves nothing, and under load the server routed another connection's
publications past the new subscription (1 run in 20 with 4 busy CPUs). A
loopback proxy between the broker and a real nats-server records both
directions, so the order on the wire is checked exactly, not by chance.

A connection reset by the network leaves no task with an exception nobody
retrieved (nats-py's read loop ended raising the reset while it closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import struct
from collections.abc import AsyncIterator, Iterator

import pytest

from goomerang_runtime import BrokerState
from goomerang_runtime.brokers import NatsBroker

from .brokers import BrokerServer, Receiver, broker_alone
from .helpers import WAIT


class Recorder:
    """A TCP proxy on 127.0.0.1 that keeps what each side of each connection sent."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.connections: list[tuple[bytearray, bytearray]] = []  # (client to server, server to client)
        self.clients: list[asyncio.StreamWriter] = []
        self.reading = asyncio.Event()  # cleared: what clients send waits in the kernel's buffers
        self.reading.set()
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, into: bytearray) -> None:
        # uvloop raises RuntimeError for a write into a transport the reset closed (asyncio ignores it).
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (await self.reading.wait()) and (chunk := await reader.read(65536)):
                into += chunk  # recorded before it is passed on: the record is never behind the peer
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        sent, answered = bytearray(), bytearray()
        self.connections.append((sent, answered))
        self.clients.append(writer)
        for pump in (self._pump(reader, up_writer, sent), self._pump(up_reader, writer, answered)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Recorder]:
        server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def reset(self) -> None:
        """Reset every client connection (TCP RST), as a network failure does."""
        for writer in self.clients:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    def confirms(self, command: bytes) -> bool:
        """Whether a PONG came back for a PING sent after the last `command` (e.g. ``b"SUB x"``)."""
        [(sent, answered)] = [(bytes(s), bytes(a)) for s, a in self.connections if command in s]
        at = sent.rfind(command)
        pings_before = sent[:at].count(b"PING\r\n")
        return sent[at:].count(b"PING\r\n") > 0 and answered.count(b"PONG\r\n") > pings_before

    def __str__(self) -> str:
        return "; ".join(f"sent {bytes(s)!r}, answered {bytes(a)!r}" for s, a in self.connections)


@pytest.fixture
def nats_server() -> Iterator[BrokerServer]:
    yield from broker_alone("nats")


async def test_the_catch_all_subscription_is_confirmed_after_it_was_sent(nats_server: BrokerServer) -> None:
    async with asyncio.timeout(WAIT), Recorder(("127.0.0.1", nats_server.port)).running() as wire:
        broker = NatsBroker(f"nats://127.0.0.1:{wire.port}", prefix="confirm")
        await broker.start(Receiver())
        try:
            assert broker.connected
            assert wire.confirms(b"SUB confirm.> "), str(wire)
        finally:
            await broker.close()


async def test_a_queue_members_join_and_leave_are_confirmed_after_they_were_sent(nats_server: BrokerServer) -> None:
    async with asyncio.timeout(WAIT), Recorder(("127.0.0.1", nats_server.port)).running() as wire:
        broker = NatsBroker(f"nats://127.0.0.1:{wire.port}", prefix="confirm")
        await broker.start(Receiver())
        try:
            await broker.join("workers", "jobs.*", "member-1")
            assert wire.confirms(b"SUB confirm.t.jobs.* workers "), str(wire)
            await broker.join("workers", "jobs.*", "member-2")
            broker.leave("workers", "jobs.*", "member-1")
            await broker.join("workers", "other", "member-3")  # applied with the leave before it, in order
            assert wire.confirms(b"UNSUB "), str(wire)
        finally:
            await broker.close()


async def test_a_connection_reset_leaves_no_unretrieved_task_exception(nats_server: BrokerServer) -> None:
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    try:
        async with asyncio.timeout(WAIT), Recorder(("127.0.0.1", nats_server.port)).running() as wire:
            broker = NatsBroker(
                f"nats://127.0.0.1:{wire.port}", prefix="reset", reconnect_delay=5.0, reconnect_max_delay=5.0
            )
            lost = asyncio.Event()

            def changed(state: BrokerState) -> None:
                if state is not BrokerState.CONNECTED:
                    lost.set()

            broker.on_state_change(changed)
            await broker.start(Receiver())
            try:
                wire.reading.clear()  # nats-py's writes back up: publications stay pending in it
                for _ in range(10):  # about 10 MB: more than the sockets take, so some stays pending in nats-py
                    for n in range(1000):
                        broker.publish("t", b"x" * 1000 + str(n).encode())
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)  # the publisher is idle now: nothing more to send would tell the loss
                wire.reset()
                await lost.wait()  # told all the same
            finally:
                await broker.close()
        gc.collect()
        await asyncio.sleep(0)  # what a collected task's __del__ reported runs now
    finally:
        loop.set_exception_handler(previous)
    assert not unretrieved, "\n".join(f"{c.get('message')}: {c.get('task') or c.get('future')}" for c in unretrieved)
