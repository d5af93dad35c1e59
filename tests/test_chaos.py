"""Chaos: servers killed and restarted, clients that vanish or never read, connection churn.

Afterwards nothing leaks (tasks, connections, subscriptions) and nothing a
caller was told was sent is lost without the caller being told.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

import goomerang_runtime
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    ConnectionLostError,
    GoomerangError,
    Message,
    NotRunningError,
    ReconnectPolicy,
    Sender,
    Server,
    SlowConsumerError,
    Status,
)

from .helpers import WAIT, Collector, Counter

ROOT = Path(__file__).resolve().parent.parent
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.5)


@asynccontextmanager
async def server_process(port: int = 0) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.serve_subprocess",
        str(port),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert line.startswith(b"READY "), line
        yield proc, line.split()[1].decode()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_server_killed_and_restarted_while_clients_reconnect() -> None:
    clients = 10
    calls = 20
    async with server_process() as (proc, addr):
        port = int(addr.rsplit(":", 1)[1])
        peers = [Client(server=addr, reconnect=FAST) for _ in range(clients)]
        running = [asyncio.Event() for _ in peers]
        closed = [asyncio.Event() for _ in peers]
        delivered = Counter()

        async def on_news(sender: Sender, msg: Message[MessageV1]) -> None:
            delivered.hit()

        for client, up, down in zip(peers, running, closed, strict=True):
            client.on_status_change(lambda s, up=up, down=down: (up if s is Status.RUNNING else down).set())
            await client.connect(timeout=WAIT)
            await client.subscribe("news", MessageV1, on_news)

        async def round_trips(client: Client) -> int:
            replies = [
                await client.send_sync(MessageV1(message=str(n)), timeout=WAIT, expect=ReplyV1) for n in range(calls)
            ]
            return sum(r.payload.message == str(n) for n, r in enumerate(replies))

        assert sum(await asyncio.gather(*map(round_trips, peers))) == clients * calls

        # In flight when the server dies: each call fails at once, and says so.
        in_flight = [asyncio.create_task(c.send_sync(MessageV1(message="x"), timeout=60)) for c in peers]
        for event in running:
            event.clear()
        proc.send_signal(signal.SIGKILL)
        outcomes = await asyncio.wait_for(asyncio.gather(*in_flight, return_exceptions=True), WAIT)
        # Each call got its reply before the kill or failed at once: none hangs, none vanishes.
        assert all(isinstance(o, (ConnectionLostError, Message)) for o in outcomes)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in closed)), WAIT)
        with pytest.raises(NotRunningError):  # while reconnecting, the caller is told
            await peers[0].send(MessageV1())

    async with server_process(port):
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in running)), WAIT)
        assert sum(await asyncio.gather(*map(round_trips, peers))) == clients * calls
        # Each client re-subscribed on its own: one publication reaches all of them.
        await peers[0].publish("news", MessageV1(message="after the crash"))
        await delivered.wait_for(clients)
        for client in peers:
            await client.close()


async def test_client_that_never_reads_is_dropped_and_others_get_everything() -> None:
    server = Server(send_queue_size=8, slow_consumer_timeout=0.2, close_wait=0.5)
    errors = Collector()
    server.on_error(errors)
    server.register_message(MessageV1)
    gone = asyncio.Event()
    server.on_disconnect(lambda peer: gone.set())
    async with server:
        sleeper = await ws_connect(server.url)
        sleeper.transport.pause_reading()
        got = Counter()
        reader = Client(server=server.addr)

        async def count(sender: Sender, msg: Message[MessageV1]) -> None:
            got.hit()

        reader.handle(MessageV1, count)
        async with reader:
            payload = MessageV1(message="x" * 64_000)  # 400 x 64 kB: more than socket buffers hold
            for _ in range(400):
                await server.broadcast(payload, timeout=WAIT)
            await got.wait_for(400)
            await errors.wait_for(SlowConsumerError)
            await asyncio.wait_for(gone.wait(), WAIT)  # the kicked client's connection has ended
            assert len(server.peers) == 1  # only the reader is left
        sleeper.transport.abort()


async def test_thousand_clients_come_and_go_and_nothing_leaks() -> None:
    server = Server()
    served = Counter()

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        served.hit()
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, echo)
    connected, disconnected = Counter(), Counter()
    server.on_connect(lambda peer: connected.hit())
    server.on_disconnect(lambda peer: disconnected.hit())
    async with server:

        async def visit(n: int) -> None:
            async with Client(server=server.addr, heartbeat_interval=None) as client:
                await client.subscribe(f"visitors.{n % 7}")
                reply = await client.send_sync(MessageV1(message=str(n)), timeout=WAIT, expect=ReplyV1)
                assert reply.payload.message == str(n)

        for batch in range(10):
            await asyncio.wait_for(asyncio.gather(*(visit(batch * 100 + i) for i in range(100))), WAIT * 3)
        assert served.count == 1000
        # Each server-side connection ends a moment after its client's close returns.
        await disconnected.wait_for(1000)
        assert connected.count == 1000
        assert server.peers == []
        # No task left running the runtime's code, except the bounded handler pool's idle workers.
        runtime = str(Path(goomerang_runtime.__file__).parent)
        leftover = [
            task.get_coro()
            for task in asyncio.all_tasks()
            if task is not asyncio.current_task()
            and getattr(task.get_coro(), "cr_code", None) is not None
            and task.get_coro().cr_code.co_filename.startswith(runtime)  # type: ignore[union-attr]
            and task.get_coro().cr_code.co_name != "_work"  # type: ignore[union-attr]
        ]
        assert leftover == []
        workers = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "Dispatcher._work"]
        assert len(workers) <= server.config.max_concurrency
        assert server._dispatcher is not None
        assert server._dispatcher.in_flight == 0


async def test_vanishing_clients_mid_request_leave_no_state() -> None:
    server = Server(max_concurrency=50)
    errors = Collector()
    server.on_error(errors)
    started = Counter()
    release = asyncio.Event()

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.hit()
        await release.wait()
        with contextlib.suppress(GoomerangError):  # the client is gone: its sender says so
            await sender.send(ReplyV1())

    server.handle(MessageV1, slow)
    async with server:
        raws = [await ws_connect(server.url) for _ in range(20)]
        from goomerang_runtime._codec import encode_message

        for n, raw in enumerate(raws):
            data, _, _ = encode_message(Message(MessageV1(message=str(n))), uuid=f"u{n}", is_sync=True)
            await raw.send(data)
        await started.wait_for(20)
        for raw in raws:
            raw.transport.abort()
        await errors.wait_for(ConnectionLostError, 20)
        assert server.peers == []
        release.set()  # the handlers finish; their replies have nowhere to go
        async with Client(server=server.addr) as client:
            assert (await client.send_sync(MessageV1(), timeout=WAIT, expect=ReplyV1)).payload == ReplyV1()
