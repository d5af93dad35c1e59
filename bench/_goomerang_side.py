"""The goomerang side of every scenario: a server or a client process.

``python bench/_goomerang_side.py server WORKLOAD`` prints ``ready`` with its
port; ``python bench/_goomerang_side.py client WORKLOAD --port P`` connects
and runs the workload until ``stop``. ``bench/_side.py`` describes the
protocol with the driver. Benchmark clients run with heartbeat off (like
the raw side, which has pings off); everything else is the default
configuration, on the transport given (``--transport``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._side import Control, Meter, Pacer, SideArgs, obey, parse_args, raise_fd_limit, run
from bench._workload import CONNECT_CHUNK, HELLO, HOST, SEND_YIELD, SYNC_TIMEOUT, TEXT, TOPIC, is_batch_end, ping
from generated.goomerang.example.messages_goomerang import Context, ExampleBase, ExampleStub, add_example
from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1, SuccessReplyV1
from goomerang_runtime import Client, Handler, Message, Sender, Server
from goomerang_runtime.config import Transport

__all__ = ["main"]


class Echo(ExampleBase):
    """The typed service of the request/reply scenarios."""

    async def process(self, request: MessageV1, ctx: Context) -> SuccessReplyV1:
        return SuccessReplyV1(message=request.message)

    async def notify(self, request: ReplyV1, ctx: Context) -> None:
        pass


# Server.


def _register(server: Server, args: SideArgs, meter: Meter, pacer: Pacer) -> None:
    if args.workload == "oneway":

        async def count(sender: Sender, msg: Message[PingPong]) -> None:
            meter.tick()

        server.handle(PingPong, count)
    elif args.workload == "sync" and args.api == "stub":
        add_example(server, Echo())
    elif args.workload == "sync":

        async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
            await sender.send(SuccessReplyV1(message=msg.payload.message))

        server.handle(MessageV1, echo)
    elif args.workload in ("broadcast", "publish"):

        async def on_ping(sender: Sender, msg: Message[PingPong]) -> None:
            sequence = msg.payload.sequence
            if sequence == HELLO:
                pacer.hello()
            else:
                pacer.ack(sequence)

        server.handle(PingPong, on_ping)


async def _produce(server: Server, pacer: Pacer, publish: bool) -> None:
    msg = ping(0)
    while True:
        for sequence in await pacer.next_batch():
            msg.sequence = sequence
            if publish:
                await server.publish(TOPIC, msg)
            else:
                await server.broadcast(msg)
        await asyncio.sleep(0)


async def serve(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    pacer = Pacer(args.clients)
    server = Server(listen=f"{HOST}:0", transport=_transport(args))
    _register(server, args, meter, pacer)
    async with server:
        producer = None
        if args.workload in ("broadcast", "publish"):
            producer = asyncio.create_task(_produce(server, pacer, args.workload == "publish"))
        control.emit("ready", port=int(server.addr.rpartition(":")[2]), pid=os.getpid())
        await obey(control, meter, lambda: len(server.peers))
        if producer is not None:
            producer.cancel()


# Clients.


def _transport(args: SideArgs) -> Transport:
    return "picows" if args.transport == "picows" else "websockets"


def _client(args: SideArgs) -> Client:
    return Client(server=f"{HOST}:{args.port}", heartbeat_interval=None, transport=_transport(args))


async def _send_forever(client: Client) -> None:
    msg = ping(0)
    sequence = 0
    while True:
        msg.sequence = sequence
        sequence += 1
        await client.send(msg)
        if sequence % SEND_YIELD == 0:
            await asyncio.sleep(0)


async def _request_forever(client: Client, api: str, meter: Meter) -> None:
    clock = time.perf_counter_ns
    if api == "stub":
        stub = ExampleStub(client)
        while True:
            started = clock()
            await stub.process(MessageV1(message=TEXT), timeout=SYNC_TIMEOUT)
            meter.record(clock() - started)
    else:
        while True:
            started = clock()
            await client.send_sync(MessageV1(message=TEXT), timeout=SYNC_TIMEOUT, expect=SuccessReplyV1)
            meter.record(clock() - started)


async def _subscribers(args: SideArgs, meter: Meter) -> list[Client]:
    """Connect the fan-out subscribers; returns once each got a delivery."""
    clients = [_client(args) for _ in range(args.clients)]
    waiting: set[int] = set(range(len(clients)))
    all_fed = asyncio.Event()

    def subscriber(index: int) -> Handler[PingPong]:
        async def on_delivery(sender: Sender, msg: Message[PingPong]) -> None:
            meter.tick()
            sequence = msg.payload.sequence
            if index in waiting:
                waiting.discard(index)
                if not waiting:
                    all_fed.set()
            if is_batch_end(sequence):
                await sender.send(PingPong(sequence=sequence))

        return on_delivery

    for index, client in enumerate(clients):
        client.handle(PingPong, subscriber(index))
    for client in clients:
        await client.connect()
        if args.workload == "publish":
            await client.subscribe(TOPIC)
        await client.send(PingPong(sequence=HELLO))
    await all_fed.wait()
    return clients


async def run_clients(args: SideArgs) -> None:
    control = await Control.open()
    meter = Meter()
    clients: list[Client] = []
    load: list[asyncio.Task[None]] = []

    async def connect(count: int) -> None:
        for start in range(0, count, CONNECT_CHUNK):
            batch = [_client(args) for _ in range(min(CONNECT_CHUNK, count - start))]
            await asyncio.gather(*(client.connect() for client in batch))
            clients.extend(batch)

    if args.workload == "oneway":
        await connect(1)
        load.append(asyncio.create_task(_send_forever(clients[0])))
    elif args.workload == "sync":
        await connect(1)
        load.extend(asyncio.create_task(_request_forever(clients[0], args.api, meter)) for _ in range(args.inflight))
    elif args.workload in ("broadcast", "publish"):
        clients.extend(await _subscribers(args, meter))
    control.emit("ready", pid=os.getpid())
    await obey(control, meter, lambda: len(clients), connect)
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    await asyncio.gather(*(client.close() for client in clients))


def main() -> None:
    args = parse_args()
    raise_fd_limit()
    run(serve(args) if args.role == "server" else run_clients(args), args.loop)


if __name__ == "__main__":
    main()
