"""Server limits: exceeding one gets a clear error or refusal and leaves every other connection alone."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    ConnectError,
    ConnectionLostError,
    HeartbeatTimeoutError,
    LimitError,
    Message,
    RemoteHandlerError,
    Sender,
    Server,
)
from goomerang_runtime._empty import EMPTY

from .helpers import WAIT, Collector, Counter


def echo(server: Server) -> None:
    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, handle)


async def still_served(server: Server) -> None:
    async with Client(server=server.addr) as client:
        reply = await client.send_sync(MessageV1(message="fine"), timeout=WAIT, expect=ReplyV1)
        assert reply.payload.message == "fine"


async def test_max_connections_refuses_with_503() -> None:
    server = Server(max_connections=2)
    echo(server)
    async with server:
        first, second = Client(server=server.addr), Client(server=server.addr)
        async with first, second:
            with pytest.raises(ConnectError) as info:
                await Client(server=server.addr).connect(timeout=WAIT)
            assert info.value.status == 503
            reply = await first.send_sync(MessageV1(message="still"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "still"
        await still_served(server)  # room again once they left


async def test_max_pending_sync_refuses_extra_requests_at_once() -> None:
    server = Server(max_pending_sync=3, max_concurrency=10)
    errors = Collector()
    server.on_error(errors)
    release = asyncio.Event()
    started = Counter()

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.hit()
        await release.wait()
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, slow)
    async with server, Client(server=server.addr) as client:
        held = [
            asyncio.create_task(client.send_sync(MessageV1(message=str(n)), timeout=WAIT, expect=ReplyV1))
            for n in range(3)
        ]
        await started.wait_for(3)
        with pytest.raises(RemoteHandlerError) as info:
            await client.send_sync(MessageV1(message="one too many"), timeout=WAIT)
        assert info.value.error_type == "LimitError"
        assert "max_pending_sync" in str(info.value)
        await errors.wait_for(LimitError)
        release.set()
        assert [r.payload.message for r in await asyncio.gather(*held)] == ["0", "1", "2"]
        # Finished requests free their slots.
        reply = await client.send_sync(MessageV1(message="again"), timeout=WAIT, expect=ReplyV1)
        assert reply.payload == ReplyV1(message="again")


async def test_client_side_max_pending_sync() -> None:
    server = Server()
    release = asyncio.Event()
    started = Counter()

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.hit()
        await release.wait()
        await sender.send(ReplyV1())

    server.handle(MessageV1, slow)
    async with server, Client(server=server.addr, max_pending_sync=2) as client:
        held = [asyncio.create_task(client.send_sync(MessageV1(), timeout=WAIT, expect=ReplyV1)) for _ in range(2)]
        await started.wait_for(2)
        with pytest.raises(LimitError, match="max_pending_sync"):
            await client.send_sync(MessageV1(), timeout=WAIT)
        release.set()
        await asyncio.gather(*held)


async def test_rate_limit_slows_one_client_down_and_others_go_on() -> None:
    server = Server(rate_limit=20, rate_burst=5, max_concurrency=1)
    errors = Collector()
    server.on_error(errors)
    flooded = Counter()

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        if msg.payload.message == "flood":
            flooded.hit()
        else:
            await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, handle)
    async with server:
        flooder = Client(server=server.addr)
        async with flooder:
            for _ in range(60):  # 60 frames at 20/s after a burst of 5: about 3 s to get through
                await flooder.send(MessageV1(message="flood"))
            (err,) = await errors.wait_for(LimitError)
            assert err.limit == "rate_limit"
            await still_served(server)
            # The other client was served while the flood was still being read: nothing dropped.
            assert flooded.count < 60
            await flooded.wait_for(60)


async def test_server_heartbeat_drops_a_client_that_never_answers_pings() -> None:
    server = Server(heartbeat_interval=0.05, heartbeat_timeout=0.1)
    echo(server)
    errors = Collector()
    server.on_error(errors)
    async with server:
        deaf = await ws_connect(server.url)
        deaf.transport.pause_reading()  # never reads, so never answers a ping
        (err,) = await errors.wait_for(HeartbeatTimeoutError)
        assert "127.0.0.1" in str(err)
        await errors.wait_for(ConnectionLostError)  # the server dropped it
        assert server.peers == []
        await still_served(server)  # a client that answers pings stays
        deaf.transport.abort()


def _tasks_running(name: str) -> int:
    return sum(1 for task in asyncio.all_tasks() if name in task.get_coro().__qualname__)  # type: ignore[union-attr]


async def test_idle_connections_cost_no_task_of_their_own() -> None:
    """One heartbeat task pings all of a server's connections; idle queues share one empty deque."""
    server = Server(heartbeat_interval=0.05, heartbeat_timeout=1.0)
    echo(server)
    async with server:
        assert _tasks_running("Heartbeats._run") == 0  # no connection: nothing to ping
        clients = [Client(server=server.addr, heartbeat_interval=None) for _ in range(20)]
        for client in clients:
            await client.connect()
        await still_served(server)
        assert _tasks_running("Heartbeats._run") == 1
        for client in clients:  # a few heartbeat rounds: every client answers and stays
            await client.send_sync(MessageV1(message="ping"), timeout=WAIT, expect=ReplyV1)
        left = asyncio.Event()
        server.on_disconnect(lambda peer: left.set() if not server.peers else None)
        for client in clients:
            await client.close()
        await asyncio.wait_for(left.wait(), WAIT)  # the server saw every client leave
        assert _tasks_running("Heartbeats._run") == 0  # it ended with the last connection
    assert len(EMPTY) == 0  # never appended to: every queue that got an item got its own deque


async def test_handshake_timeout_drops_a_client_that_never_finishes_its_handshake() -> None:
    server = Server(handshake_timeout=0.2)
    echo(server)
    async with server:
        host, port = server.addr.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # the server hung up
        writer.close()
        await still_served(server)
