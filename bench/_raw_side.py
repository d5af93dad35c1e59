"""The baseline: each scenario written directly on the `websockets` package.

What a competent hand-written app would do, with the same payload bytes and
the same protobuf encode and decode as the goomerang side: the server reads
with ``async for`` and handles each message inline; request/reply
correlates by the PingPong sequence number with a dict of futures and a
deadline per call; fan-out uses ``websockets.broadcast`` (to every
connection, or to a topic's set of connections) under the same credit-based
pacing as goomerang (``Pacer``). Compression and pings are off on both ends.
Same command line and driver protocol as ``_goomerang_side.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._side import Control, Meter, Pacer, SideArgs, obey, parse_args, raise_fd_limit, run
from bench._workload import BODY, CONNECT_CHUNK, HELLO, HOST, SEND_YIELD, SYNC_TIMEOUT, TOPIC, is_batch_end, ping
from generated.goomerang.example.messages_pb2 import PingPong

__all__ = ["main"]

# Server.


class RawServer:
    """The server app: one coroutine per connection, state in plain containers."""

    def __init__(self, args: SideArgs, meter: Meter, pacer: Pacer) -> None:
        self.workload = args.workload
        self.meter = meter
        self.pacer = pacer
        self.connections: set[ServerConnection] = set()
        self.topics: dict[str, set[ServerConnection]] = {TOPIC: set()}

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        try:
            if self.workload == "oneway":
                await self._count(ws)
            elif self.workload == "sync":
                await self._echo(ws)
            elif self.workload in ("broadcast", "publish"):
                await self._acks(ws)
            else:
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(ws)
            for subscribers in self.topics.values():
                subscribers.discard(ws)

    async def _count(self, ws: ServerConnection) -> None:
        meter = self.meter
        async for data in ws:
            if isinstance(data, str):  # text frames are not ours, as in goomerang
                continue
            PingPong.FromString(data)
            meter.tick()

    async def _echo(self, ws: ServerConnection) -> None:
        async for data in ws:
            if isinstance(data, str):  # text frames are not ours, as in goomerang
                continue
            request = PingPong.FromString(data)
            await ws.send(PingPong(sequence=request.sequence, body=request.body).SerializeToString())

    async def _acks(self, ws: ServerConnection) -> None:
        pacer = self.pacer
        async for data in ws:
            if isinstance(data, str):  # text frames are not ours, as in goomerang
                continue
            msg = PingPong.FromString(data)
            if msg.sequence == HELLO:
                if self.workload == "publish":
                    self.topics.setdefault(msg.body.decode(), set()).add(ws)
                pacer.hello()
            else:
                pacer.ack(msg.sequence)

    async def produce(self) -> None:
        msg = ping(0)
        targets: Iterable[ServerConnection] = self.topics[TOPIC] if self.workload == "publish" else self.connections
        while True:
            for sequence in await self.pacer.next_batch():
                msg.sequence = sequence
                broadcast(targets, msg.SerializeToString())
            await asyncio.sleep(0)


async def run_server(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    app = RawServer(args, meter, Pacer(args.clients))
    async with serve(app.handler, HOST, 0, compression=None, ping_interval=None, ping_timeout=None) as server:
        producer = None
        if args.workload in ("broadcast", "publish"):
            producer = asyncio.create_task(app.produce())
        control.emit("ready", port=server.sockets[0].getsockname()[1], pid=os.getpid())
        await obey(control, meter, lambda: len(app.connections))
        if producer is not None:
            producer.cancel()


# Clients.


async def _open(port: int) -> ClientConnection:
    return await connect(f"ws://{HOST}:{port}/", compression=None, ping_interval=None, ping_timeout=None)


async def _send_forever(ws: ClientConnection) -> None:
    msg = ping(0)
    sequence = 0
    while True:
        msg.sequence = sequence
        sequence += 1
        await ws.send(msg.SerializeToString())
        if sequence % SEND_YIELD == 0:
            await asyncio.sleep(0)


class Requester:
    """Request/reply over one connection: sequence numbers and a dict of futures."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: dict[int, asyncio.Future[PingPong]] = {}
        self.sequences = itertools.count()

    async def read(self) -> None:
        pending = self.pending
        async for data in self.ws:
            if isinstance(data, str):  # text frames are not ours, as in goomerang
                continue
            reply = PingPong.FromString(data)
            fut = pending.pop(reply.sequence, None)
            if fut is not None and not fut.done():
                fut.set_result(reply)

    async def request(self, body: bytes) -> PingPong:
        sequence = next(self.sequences)
        fut: asyncio.Future[PingPong] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = fut
        try:
            await self.ws.send(PingPong(sequence=sequence, body=body).SerializeToString())
            async with asyncio.timeout(SYNC_TIMEOUT):
                return await fut
        finally:
            self.pending.pop(sequence, None)


async def _request_forever(requester: Requester, meter: Meter) -> None:
    clock = time.perf_counter_ns
    while True:
        started = clock()
        await requester.request(BODY)
        meter.record(clock() - started)


async def _subscribe(ws: ClientConnection, publish: bool, meter: Meter, fed: asyncio.Future[None]) -> None:
    """One fan-out subscriber: hello, then count deliveries and acknowledge batches."""
    await ws.send(PingPong(sequence=HELLO, body=TOPIC.encode() if publish else b"").SerializeToString())
    async for data in ws:
        if isinstance(data, str):  # text frames are not ours, as in goomerang
            continue
        msg = PingPong.FromString(data)
        meter.tick()
        if not fed.done():
            fed.set_result(None)
        if is_batch_end(msg.sequence):
            await ws.send(PingPong(sequence=msg.sequence).SerializeToString())


async def run_clients(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    conns: list[ClientConnection] = []
    load: list[asyncio.Task[None]] = []

    async def open_more(count: int) -> None:
        for start in range(0, count, CONNECT_CHUNK):
            conns.extend(await asyncio.gather(*(_open(args.port) for _ in range(min(CONNECT_CHUNK, count - start)))))

    if args.workload == "oneway":
        await open_more(1)
        load.append(asyncio.create_task(_send_forever(conns[0])))
    elif args.workload == "sync":
        await open_more(1)
        requester = Requester(conns[0])
        load.append(asyncio.create_task(requester.read()))
        load.extend(asyncio.create_task(_request_forever(requester, meter)) for _ in range(args.inflight))
    elif args.workload in ("broadcast", "publish"):
        await open_more(args.clients)
        loop = asyncio.get_running_loop()
        fed = [loop.create_future() for _ in conns]
        publish = args.workload == "publish"
        load.extend(
            asyncio.create_task(_subscribe(ws, publish, meter, first)) for ws, first in zip(conns, fed, strict=True)
        )
        await asyncio.gather(*fed)
    control.emit("ready", pid=os.getpid())
    await obey(control, meter, lambda: len(conns), open_more)
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in conns))


def main() -> None:
    args = parse_args()
    raise_fd_limit()
    run(run_server(args) if args.role == "server" else run_clients(args), args.loop)


if __name__ == "__main__":
    main()
