"""The processes of the replica fan-out benchmark (``bench/replicas.py``): a replica, or clients.

::

    python bench/_replica_side.py replica --broker nats --url nats://127.0.0.1:4222 [--producer]
    python bench/_replica_side.py clients --ports 4001,4002 --counts 13,12

Both speak the driver protocol of ``bench/_side.py`` (JSON lines out, one
command per line in). A replica is a goomerang server with a NATS or Redis
broker (``--broker none``: no broker, the single box); it emits ``ready``
with its port once its broker is connected. The producer replica (A)
publishes on one topic as the driver asks:

- ``rate N``: N publications per second (light load);
- ``window P``: as fast as the subscribers drain, credit-paced as scenario
  D of ``bench/run.py`` (at most ``WINDOW`` batches of ``BATCH`` ahead of
  the slowest subscriber, on any replica), with P clients processes
  returning credits;
- ``idle``: no publications.

Each publication carries its send time (``time.perf_counter_ns()``, the
monotonic clock every process on the machine shares) in the first 8 bytes
of its 96-byte body, so a client measures its delivery latency. A clients
process connects ``--counts`` subscribers to each of ``--ports`` (the first
is replica A's: its clients are local, the others cross-replica), and one
more connection to A that returns the credits: once every subscriber of the
process got the last message of a batch, it acknowledges that batch. It
counts deliveries between ``begin`` and ``end`` and reports local and
cross-replica counts, and latencies as quantiles the driver merges.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._side import LOOPS, TRANSPORTS, Control, Pacer, raise_fd_limit, run
from bench._stats import quantile_points
from bench._workload import BODY, HOST, SYNC_TIMEOUT, TOPIC, is_batch_end, ping
from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, SuccessReplyV1
from goomerang_runtime import Broker, BrokerState, Client, Handler, Message, NatsBroker, RedisBroker, Sender, Server
from goomerang_runtime.config import Transport

__all__ = ["main"]

RATED = -2
"""The sequence number of rate-paced publications (never acknowledged)."""
BROKER_WAIT = 20.0


def _stamp(msg: PingPong, sequence: int) -> PingPong:
    msg.sequence = sequence
    msg.body = time.perf_counter_ns().to_bytes(8, "little") + BODY[8:]
    return msg


# Replicas.


def _broker(kind: str, url: str) -> Broker | None:
    if kind == "nats":
        return NatsBroker(url)
    if kind == "redis":
        return RedisBroker(url)
    return None


async def _connected(broker: Broker) -> None:
    changed = asyncio.Event()
    broker.on_state_change(lambda state: changed.set())
    async with asyncio.timeout(BROKER_WAIT):
        while broker.state is not BrokerState.CONNECTED:
            changed.clear()
            await changed.wait()


async def _at_rate(server: Server, rate: float) -> None:
    msg = ping(RATED)
    loop = asyncio.get_running_loop()
    interval = 1 / rate
    next_at = loop.time()
    while True:
        await server.publish(TOPIC, _stamp(msg, RATED))
        next_at += interval
        delay = next_at - loop.time()
        if delay <= 0:
            next_at = loop.time()  # behind: no burst to catch up
        await asyncio.sleep(max(0.0, delay))


async def _windowed(server: Server, pacer: Pacer) -> None:
    msg = ping(0)
    while True:
        for sequence in await pacer.next_batch():
            await server.publish(TOPIC, _stamp(msg, sequence))
        await asyncio.sleep(0)


async def serve(args: argparse.Namespace) -> None:
    control = await Control.open()
    broker = _broker(args.broker, args.url)
    server = Server(listen=f"{HOST}:0", broker=broker, transport=_transport(args.transport))
    pacer = Pacer(1)

    async def on_credit(sender: Sender, msg: Message[PingPong]) -> None:
        pacer.ack(msg.payload.sequence)

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:  # a barrier for the clients
        await sender.send(SuccessReplyV1(message=msg.payload.message))

    server.handle(PingPong, on_credit)
    server.handle(MessageV1, echo)
    async with server:
        if broker is not None:
            await _connected(broker)
        control.emit("ready", port=int(server.addr.rpartition(":")[2]), pid=os.getpid())
        producer: asyncio.Task[None] | None = None
        while True:
            words = await control.command()
            if producer is not None:
                producer.cancel()
                producer = None
            match words:
                case ["rate", rate] if args.producer:
                    producer = asyncio.create_task(_at_rate(server, float(rate)))
                case ["window", processes] if args.producer:
                    pacer = Pacer(int(processes))  # a credit per clients process
                    for _ in range(int(processes)):
                        pacer.hello()  # the driver says "window" once every subscriber is in place
                    producer = asyncio.create_task(_windowed(server, pacer))
                case ["idle"]:
                    pass
                case ["stop"]:
                    return
                case _:
                    control.emit("error", detail=f"unknown command {words!r}")
                    continue
            control.emit("ok")


# Clients.


class _Deliveries:
    """Counts deliveries, local and cross-replica, with their latencies, inside the window."""

    __slots__ = ("_started", "counting", "cross", "local")

    def __init__(self) -> None:
        self.counting = False
        self.local: list[int] = []
        self.cross: list[int] = []
        self._started = 0

    def begin(self) -> None:
        self.local, self.cross = [], []
        self._started = time.perf_counter_ns()
        self.counting = True

    def end(self) -> dict[str, object]:
        """Counts, and each class's latencies (µs) as evenly spaced quantiles, to be merged by the driver."""
        self.counting = False
        seconds = (time.perf_counter_ns() - self._started) / 1e9
        result: dict[str, object] = {"seconds": seconds}
        for name, latencies in (("local", self.local), ("cross", self.cross)):
            result[f"{name}_events"] = len(latencies)
            result[f"{name}_points"] = [value / 1000 for value in quantile_points(latencies)]
        return result


class _Credits:
    """Acknowledges a batch to the producer once every subscriber of this process got its last message."""

    __slots__ = ("_counts", "_credit", "_subscribers")

    def __init__(self, credit: Client, subscribers: int) -> None:
        self._credit = credit
        self._subscribers = subscribers
        self._counts: dict[int, int] = {}

    async def got(self, sequence: int) -> None:
        count = self._counts.get(sequence, 0) + 1
        if count < self._subscribers:
            self._counts[sequence] = count
            return
        self._counts.pop(sequence, None)
        await self._credit.send(PingPong(sequence=sequence))


def _client(port: int, transport: str) -> Client:
    return Client(server=f"{HOST}:{port}", heartbeat_interval=None, transport=_transport(transport))


def _subscriber(deliveries: _Deliveries, credits: _Credits, local: bool) -> Handler[PingPong]:
    clock = time.perf_counter_ns

    async def on_delivery(sender: Sender, msg: Message[PingPong]) -> None:
        now = clock()
        payload = msg.payload
        if deliveries.counting:
            (deliveries.local if local else deliveries.cross).append(now - int.from_bytes(payload.body[:8], "little"))
        sequence = payload.sequence
        if sequence >= 0 and is_batch_end(sequence):
            await credits.got(sequence)

    return on_delivery


async def run_clients(args: argparse.Namespace) -> None:
    control = await Control.open()
    ports = [int(port) for port in args.ports.split(",")]
    counts = [int(count) for count in args.counts.split(",")]
    if len(counts) != len(ports):
        raise SystemExit("--counts needs one count per port")
    deliveries = _Deliveries()
    credit = _client(ports[0], args.transport)
    await credit.connect()
    credits = _Credits(credit, sum(counts))
    clients: list[Client] = []
    for index, count in enumerate(counts):
        for _ in range(count):
            client = _client(ports[index], args.transport)
            client.handle(PingPong, _subscriber(deliveries, credits, local=index == 0))
            clients.append(client)
    await asyncio.gather(*(client.connect() for client in clients))
    for client in clients:
        await client.subscribe(TOPIC)
    # A round trip on each: the server ran its subscription (in effect at the broker) before answering.
    barrier = MessageV1(message="barrier")
    await asyncio.gather(
        *(client.send_sync(barrier, timeout=SYNC_TIMEOUT, expect=SuccessReplyV1) for client in clients)
    )
    control.emit("ready", pid=os.getpid())
    while True:
        match await control.command():
            case ["begin"]:
                deliveries.begin()
            case ["end"]:
                control.emit("result", **deliveries.end())
            case ["stop"]:
                break
            case words:
                control.emit("error", detail=f"unknown command {words!r}")
    await asyncio.gather(*(client.close() for client in [*clients, credit]))


def _transport(name: str) -> Transport:
    return "picows" if name == "picows" else "websockets"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A replica or the clients of bench/replicas.py.")
    parser.add_argument("role", choices=("replica", "clients"))
    parser.add_argument("--broker", choices=("nats", "redis", "none"), default="none", help="replica: its broker")
    parser.add_argument("--url", default="", help="replica: the broker's URL")
    parser.add_argument("--producer", action="store_true", help="replica: this one publishes (replica A)")
    parser.add_argument("--ports", default="", help="clients: the replicas' ports, replica A's first")
    parser.add_argument("--counts", default="", help="clients: how many subscribe on each of --ports")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--transport", choices=TRANSPORTS, default="websockets")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    raise_fd_limit()
    run(serve(args) if args.role == "replica" else run_clients(args), args.loop)


if __name__ == "__main__":
    main()
