"""Hostile and broken peers: each attack costs only the connection that makes it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from asyncio.subprocess import PIPE

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    HeartbeatTimeoutError,
    Message,
    MessageTooBigError,
    Sender,
    Server,
    SlowConsumerError,
    Status,
    SyncTimeoutError,
)
from goomerang_runtime._codec import encode_message, encode_subscribe
from goomerang_runtime.config import ServerConfig

from .helpers import OUR_PEER, WAIT, Collector, Counter, only_on
from .rawws import OP_BINARY, RawClient

REPLY_BODY = "r" * 4096


def echo_server(**options: object) -> tuple[Server, Collector]:
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=REPLY_BODY))

    server.handle(MessageV1, handle)
    return server, errors


async def flood_without_reading(ws: ClientConnection, count: int) -> None:
    """Sync requests as fast as the server takes them, never reading a reply."""
    ws.transport.pause_reading()
    with contextlib.suppress(Exception):
        for n in range(count):
            data, _, _ = encode_message(
                Message(MessageV1(message="flood")), uuid=f"00000000-0000-4000-8000-{n:012x}", is_sync=True
            )
            await ws.send(data)


def busy(seconds: float) -> None:
    """Work on the CPU without yielding to the event loop, as a handler that computes does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("handler", ["computes", "awaits"])
async def test_clients_that_never_read_replies_cost_only_themselves(handler: str) -> None:
    """12 clients in another process flood sync requests and never read a reply; a client connected
    before them keeps getting answers within 1 s the whole time, until all 12 are dropped as slow."""
    server = Server()
    errors = Collector()
    server.on_error(errors)
    handled = 0
    underway = asyncio.Event()

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        nonlocal handled
        handled += 1
        if handled == 2000:
            underway.set()
        if handler == "computes":
            busy(0.0001)  # a flooder's turn would be every frame one read brought (thousands) x this
        else:
            await asyncio.sleep(0.0001)
        await sender.send(ReplyV1(message=REPLY_BODY))

    server.handle(MessageV1, handle)
    async with server, Client(server=server.addr, heartbeat_interval=None, handshake_timeout=WAIT) as good:
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.flood", server.url, "12", "20000", stdin=PIPE, stdout=PIPE
        )
        assert flood.stdin is not None
        assert flood.stdout is not None
        try:
            assert await asyncio.wait_for(flood.stdout.readline(), WAIT) == b"ready\n"
            flood.stdin.write(b"go\n")
            await asyncio.wait_for(underway.wait(), WAIT)
            calls = failed = 0
            while len(errors.of(SlowConsumerError)) < 12 or calls < 20:
                calls += 1
                try:
                    await good.send_sync(MessageV1(message=f"{calls}"), timeout=1.0, expect=ReplyV1)
                except SyncTimeoutError:
                    failed += 1
                if calls > 100_000:
                    raise AssertionError(f"the flooders were not dropped: {errors.of(SlowConsumerError)}")
            assert failed == 0, f"{failed} of {calls} calls timed out during the flood"
            assert good.status is Status.RUNNING
        finally:
            flood.stdin.close()
            await asyncio.wait_for(flood.wait(), WAIT)


async def test_duplicate_origin_or_host_headers_get_400_and_nothing_breaks() -> None:
    server, errors = echo_server()
    async with server:
        for extra in ({"Origin": ["http://a", "http://b"]}, {"Host": ["x", "y"]}):
            raw = await RawClient.connect_raw(server.addr, extra)
            status = await raw.status_line()
            assert status.startswith("HTTP/1.1 400"), status
            raw.abort()
        async with Client(server=server.addr, heartbeat_interval=None) as client:
            await client.send_sync(MessageV1(message="still"), timeout=WAIT, expect=ReplyV1)
    assert errors.items == []


async def test_a_flood_of_empty_fragments_is_cut_off() -> None:
    """3 M empty continuation frames in one message: websockets >= 17.4 drops the connection early."""
    server, _ = echo_server()
    async with server:
        raw = await RawClient.connect(server.addr)
        raw.send(OP_BINARY, b"", fin=False)
        empty_continuation = bytes([0x00, 0x80]) + b"\0\0\0\0"
        sent = 0
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(WAIT * 3):
                while sent < 3_000_000:
                    raw.writer.write(empty_continuation * 100_000)
                    await raw.writer.drain()
                    sent += 100_000
        assert sent < 3_000_000  # cut off before the end
        raw.abort()
        async with Client(server=server.addr, heartbeat_interval=None) as client:
            await client.send_sync(MessageV1(message="still"), timeout=WAIT, expect=ReplyV1)


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc (Linux), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def rss_mib() -> float:
    """This process's resident memory now."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """This process's peak resident memory since `reset_peak_rss`."""
    return _status_mib("VmHWM")


async def test_a_client_not_reading_big_replies_is_bounded_in_bytes() -> None:
    """512 KiB replies to a client that reads none: it is kicked once its queues hold send_queue_bytes."""
    server = Server(send_queue_bytes=4 * 1024 * 1024)
    errors = Collector()
    server.on_error(errors)
    big = "b" * (512 * 1024)

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=big))

    server.handle(MessageV1, handle)
    async with server:
        ws = await ws_connect(server.url, max_size=None, additional_headers=OUR_PEER)
        before = rss_mib()
        flood = asyncio.create_task(flood_without_reading(ws, 400))  # 200 MiB of replies if all were kept
        try:
            (kicked,) = await errors.wait_for(SlowConsumerError)
            grown = rss_mib() - before
        finally:
            flood.cancel()
            ws.transport.abort()
        # Both queues (outbox and backlog) at most 4 MiB each, plus the frame that did not fit.
        assert kicked.queued_bytes <= 2 * 4 * 1024 * 1024 + 600 * 1024
        assert grown < 64, grown


async def test_pings_whose_pongs_are_never_read_are_bounded() -> None:
    """A client pinging without reading: once its pongs pile up, the server stops reading it."""
    server, _ = echo_server(heartbeat_interval=None)  # no heartbeat: the write bound alone holds
    async with server:
        raw = await RawClient.connect(server.addr)
        raw.writer.transport.pause_reading()  # type: ignore[attr-defined]
        before = rss_mib()
        ping = bytes([0x89, 0x80 | 100]) + b"\0\0\0\0" + b"p" * 100
        sent = 0
        # 500,000 pings: 53 MB of pongs if all were answered. The server stops reading this
        # client instead, so our writes stall: that stall is the end of the flood.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                while sent < 500_000:
                    raw.writer.write(ping * 10_000)
                    await raw.writer.drain()
                    sent += 10_000
        grown = rss_mib() - before
        raw.abort()
        print(f"pongs: {sent} pings written, grown {grown:.1f} MiB")
        assert sent < 500_000  # the server stopped taking them
        assert grown < 32, grown


async def test_stalled_partial_frames_are_dropped_by_the_default_heartbeat() -> None:
    """All but 100 bytes of a 4 MiB frame, then silence: the server's own pings find the peer dead."""
    assert ServerConfig().heartbeat_interval == 20.0  # on by default, as websockets' own
    server, errors = echo_server(heartbeat_interval=0.5)
    gone = Counter()
    server.on_disconnect(lambda peer: gone.hit())
    async with server:
        stalled = [await RawClient.connect(server.addr) for _ in range(5)]
        size = 4 * 1024 * 1024 - 1024
        head = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, "big") + b"\0\0\0\0"
        for raw in stalled:
            raw.writer.write(head + b"x" * (size - 100))
        await gone.wait_for(5)
        assert len(errors.of(HeartbeatTimeoutError)) == 5
        for raw in stalled:
            raw.abort()


def reset_peak_rss() -> None:
    """Start VmHWM (the peak RSS) again from now (Linux)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


@only_on("websockets", "permessage-deflate (picows has none: compression=True is refused there, test_transports.py)")
async def test_a_compression_bomb_is_bounded_per_connection() -> None:
    """Messages of 4 MiB of zeros, a few KiB each on the wire: inflated bytes are bounded per connection."""
    server = Server(compression=True)
    errors = Collector()
    server.on_error(errors)
    handled = Counter()

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        handled.hit()

    server.handle(MessageV1, handle)
    bomb, _, _ = encode_message(Message(MessageV1(message="\0" * (4 * 1024 * 1024 - 200))))
    async with server:
        bombers = [await ws_connect(server.url, compression="deflate", max_size=None) for _ in range(4)]
        before = rss_mib()
        reset_peak_rss()
        # 400 messages, 1.6 GB inflated, written at once: many land in one read of the server's.
        for ws in bombers:
            for _ in range(100):
                ws.protocol.send_binary(bomb)
            ws.send_data()
        await errors.wait_for(MessageTooBigError)  # 619 MiB of peak growth before this bound, 99 after
        peak = peak_rss_mib() - before
        for ws in bombers:
            ws.transport.abort()
        print(f"peak MiB {peak:.0f}, handled {handled.count}")
        assert peak < 160, peak


class _Records(logging.Handler):
    """Every record logged outside goomerang's own logger (asyncio's, the transports')."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("goomerang"):
            self.messages.append(f"{record.name}: {record.getMessage()}")


async def _read_until_gone(raw: RawClient, first: asyncio.Event) -> None:
    with contextlib.suppress(OSError):
        while await raw.reader.read(1 << 20):
            first.set()


@pytest.mark.parametrize("path", ["broadcast", "publish", "replies"])
async def test_writing_stops_when_a_connection_is_reset(path: str) -> None:
    """20 reading clients reset their sockets (as a killed process's kernel does) while the server
    writes 50 frames to each per turn of the loop, on each path a frame takes: the server stops
    writing to a connection as soon as its transport is gone, so asyncio logs nothing (it logs
    "socket.send() raised exception." for each write past the 5th into a dead transport)."""
    records = _Records()
    logging.getLogger().addHandler(records)
    server = Server(heartbeat_interval=None)
    errors = Collector()
    server.on_error(errors)
    subscribed, gone = Counter(), Counter()
    server.on_subscribe(lambda topic: subscribed.hit())
    server.on_disconnect(lambda peer: gone.hit())
    burst = 50

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        for _ in range(burst):
            await sender.send(ReplyV1(message="r"))

    server.handle(MessageV1, handle)
    request, _, _ = encode_message(MessageV1(message="go"))
    clients = 20
    try:
        async with server:
            raws = [await RawClient.connect(server.addr, headers=OUR_PEER) for _ in range(clients)]
            firsts = [asyncio.Event() for _ in raws]
            readers = [asyncio.create_task(_read_until_gone(r, first)) for r, first in zip(raws, firsts, strict=True)]
            for raw in raws:
                for _ in range(1 if path == "publish" else 200):
                    raw.send(OP_BINARY, encode_subscribe("news") if path == "publish" else request)
            await subscribed.wait_for(clients if path == "publish" else 0)
            stop = asyncio.Event()

            async def pump() -> None:
                while not stop.is_set():
                    for _ in range(burst):
                        if path == "broadcast":
                            await server.broadcast(ReplyV1(message="b"), timeout=WAIT)
                        elif path == "publish":
                            await server.publish("news", ReplyV1(message="p"))
                    await asyncio.sleep(0)

            pumping = asyncio.create_task(pump())
            async with asyncio.timeout(WAIT):  # every connection is being written to
                for first in firsts:
                    await first.wait()
            for raw in raws:
                raw.reset()
            await gone.wait_for(clients)
            stop.set()
            await asyncio.wait_for(pumping, WAIT)
            await asyncio.wait_for(asyncio.gather(*readers), WAIT)
    finally:
        logging.getLogger().removeHandler(records)
    assert records.messages == []
    assert len(errors.items) >= clients, "each lost connection is reported"
