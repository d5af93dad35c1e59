"""The second baseline: each scenario written directly on `picows`.

What a competent hand-written picows app would do, the same workloads as
``_raw_side.py`` (same bytes, same protobuf encode and decode, same
pacing): a ``WSListener`` per connection handles each frame inline in
``on_ws_frame``; request/reply correlates by the PingPong sequence number
with a dict of futures and a deadline per call; fan-out writes the frame to
each target's transport in a loop (picows' broadcast). Senders respect
``pause_writing`` (a sender whose socket is full waits, as websockets'
``send`` does). picows' defaults otherwise (aiofastnet transports when
installed); pings off. Same command line and driver protocol as the others.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_connect,
    ws_create_server,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._side import Control, Meter, Pacer, SideArgs, obey, parse_args, raise_fd_limit, run
from bench._workload import BODY, CONNECT_CHUNK, HELLO, HOST, SEND_YIELD, SYNC_TIMEOUT, TOPIC, is_batch_end, ping
from generated.goomerang.example.messages_pb2 import PingPong

__all__ = ["main"]

BINARY = WSMsgType.BINARY


class Flow(WSListener):
    """A listener that knows when its socket is full, so that senders can wait."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self._writable: asyncio.Event = asyncio.Event()
        self._writable.set()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def send(self, data: bytes) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
        assert self.transport is not None
        self.transport.send(BINARY, data)


# Server.


class RawServer:
    """The server app: one listener per connection, state in plain containers."""

    def __init__(self, args: SideArgs, meter: Meter, pacer: Pacer) -> None:
        self.workload = args.workload
        self.meter = meter
        self.pacer = pacer
        self.connections: set[WSTransport] = set()
        self.topics: dict[str, set[WSTransport]] = {TOPIC: set()}

    def listener(self, request: WSUpgradeRequest) -> WSListener:
        return ServerConnection(self)

    async def produce(self) -> None:
        msg = ping(0)
        targets: Iterable[WSTransport] = self.topics[TOPIC] if self.workload == "publish" else self.connections
        while True:
            for sequence in await self.pacer.next_batch():
                msg.sequence = sequence
                data = msg.SerializeToString()
                for transport in targets:
                    transport.send(BINARY, data)
            await asyncio.sleep(0)


class ServerConnection(WSListener):
    def __init__(self, app: RawServer) -> None:
        super().__init__()
        self.app = app

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.app.connections.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.app.connections.discard(transport)
        for subscribers in self.app.topics.values():
            subscribers.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not BINARY:  # text frames are not ours; pings are answered by picows
            return
        app = self.app
        msg = PingPong.FromString(frame.get_payload_as_bytes())
        workload = app.workload
        if workload == "oneway":
            app.meter.tick()
        elif workload == "sync":
            transport.send(BINARY, PingPong(sequence=msg.sequence, body=msg.body).SerializeToString())
        elif workload in ("broadcast", "publish"):
            if msg.sequence == HELLO:
                if workload == "publish":
                    app.topics.setdefault(msg.body.decode(), set()).add(transport)
                app.pacer.hello()
            else:
                app.pacer.ack(msg.sequence)

    def pause_writing(self) -> None:  # fan-out is paced: nothing to do
        pass

    def resume_writing(self) -> None:
        pass


async def run_server(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    app = RawServer(args, meter, Pacer(args.clients))
    server = await ws_create_server(app.listener, HOST, 0)
    producer = None
    if args.workload in ("broadcast", "publish"):
        producer = asyncio.create_task(app.produce())
    control.emit("ready", port=server.sockets[0].getsockname()[1], pid=os.getpid())
    await obey(control, meter, lambda: len(app.connections))
    if producer is not None:
        producer.cancel()
    server.close()


# Clients.


class Requester(Flow):
    """Request/reply over one connection: sequence numbers and a dict of futures."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[int, asyncio.Future[PingPong]] = {}
        self.sequences = itertools.count()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not BINARY:
            return
        reply = PingPong.FromString(frame.get_payload_as_bytes())
        fut = self.pending.pop(reply.sequence, None)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    async def request(self, body: bytes) -> PingPong:
        sequence = next(self.sequences)
        fut: asyncio.Future[PingPong] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = fut
        try:
            await self.send(PingPong(sequence=sequence, body=body).SerializeToString())
            async with asyncio.timeout(SYNC_TIMEOUT):
                return await fut
        finally:
            self.pending.pop(sequence, None)


class Subscriber(Flow):
    """One fan-out subscriber: counts deliveries and acknowledges batches."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter
        self.fed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not BINARY:
            return
        msg = PingPong.FromString(frame.get_payload_as_bytes())
        self.meter.tick()
        if not self.fed.done():
            self.fed.set_result(None)
        if is_batch_end(msg.sequence):
            transport.send(BINARY, PingPong(sequence=msg.sequence).SerializeToString())


async def _send_forever(flow: Flow) -> None:
    msg = ping(0)
    sequence = 0
    while True:
        msg.sequence = sequence
        sequence += 1
        await flow.send(msg.SerializeToString())
        if sequence % SEND_YIELD == 0:
            await asyncio.sleep(0)


async def _request_forever(requester: Requester, meter: Meter) -> None:
    clock = time.perf_counter_ns
    while True:
        started = clock()
        await requester.request(BODY)
        meter.record(clock() - started)


async def run_clients(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    url = f"ws://{HOST}:{args.port}/"
    conns: list[Flow] = []
    load: list[asyncio.Task[None]] = []

    async def open_more(count: int, factory: type[Flow] = Flow) -> None:
        for start in range(0, count, CONNECT_CHUNK):
            opened = await asyncio.gather(*(ws_connect(factory, url) for _ in range(min(CONNECT_CHUNK, count - start))))
            for _, listener in opened:
                assert isinstance(listener, Flow)
                conns.append(listener)

    if args.workload == "oneway":
        await open_more(1)
        load.append(asyncio.create_task(_send_forever(conns[0])))
    elif args.workload == "sync":
        await open_more(1, Requester)
        requester = conns[0]
        assert isinstance(requester, Requester)
        load.extend(asyncio.create_task(_request_forever(requester, meter)) for _ in range(args.inflight))
    elif args.workload in ("broadcast", "publish"):
        subscribers: list[Subscriber] = []
        for _ in range(args.clients):
            _, listener = await ws_connect(lambda: Subscriber(meter), url)
            assert isinstance(listener, Subscriber)
            subscribers.append(listener)
            conns.append(listener)
            hello = PingPong(sequence=HELLO, body=TOPIC.encode() if args.workload == "publish" else b"")
            await listener.send(hello.SerializeToString())
        await asyncio.gather(*(subscriber.fed for subscriber in subscribers))
    control.emit("ready", pid=os.getpid())
    await obey(control, meter, lambda: len(conns), open_more)
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    for flow in conns:
        if flow.transport is not None:
            flow.transport.send_close(WSCloseCode.OK)
            flow.transport.disconnect()
    await asyncio.gather(*(flow.transport.wait_disconnected() for flow in conns if flow.transport is not None))


def main() -> None:
    args = parse_args()
    raise_fd_limit()
    run(run_server(args) if args.role == "server" else run_clients(args), args.loop)


if __name__ == "__main__":
    main()
