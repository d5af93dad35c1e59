"""Shutdown loses nothing silently: every frame a client's send() accepted is handled or reported."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import (
    Client,
    ConnectionLostError,
    GoomerangError,
    HandlerError,
    Message,
    Sender,
    Server,
)

from .helpers import WAIT, Collector

CLIENTS = 50


class Tally:
    """What one run of streaming through shutdown did."""

    def __init__(self) -> None:
        self.accepted = 0
        self.handled = 0
        self.started = asyncio.Event()

    async def handle(self, sender: Sender, msg: Message[MessageV1]) -> None:
        self.handled += 1
        if self.handled >= CLIENTS * 20:
            self.started.set()


def lost_frames(errors: Collector) -> int:
    """Frames the error hooks said were accepted and then lost."""
    lost = sum(err.frames for err in errors.of(ConnectionLostError))
    never_handled = [err for err in errors.of(HandlerError) if isinstance(err.__cause__, asyncio.CancelledError)]
    return lost + len(never_handled)


async def stream(client: Client, tally: Tally) -> None:
    with contextlib.suppress(GoomerangError):
        while True:
            await client.send(MessageV1(message="x"))
            tally.accepted += 1
            if tally.accepted % 16 == 0:
                await asyncio.sleep(0)  # send() need not suspend: let the other streams and the server run


@pytest.mark.parametrize("handler_delay", [0.0, 0.005], ids=["fast-handler", "5ms-handler"])
async def test_frames_streamed_through_shutdown_are_handled_or_reported(handler_delay: float) -> None:
    tally = Tally()
    server = Server(close_wait=5.0)
    server_errors = Collector()
    server.on_error(server_errors)

    async def handler(sender: Sender, msg: Message[MessageV1]) -> None:
        if handler_delay:
            await asyncio.sleep(handler_delay)  # the work a handler does, not a synchronisation
        await tally.handle(sender, msg)

    server.handle(MessageV1, handler)
    client_errors = Collector()
    await server.start()
    clients = [Client(server=server.addr, heartbeat_interval=None) for _ in range(CLIENTS)]
    for client in clients:
        client.on_error(client_errors)
        await client.connect(timeout=WAIT)
    streams = [asyncio.create_task(stream(client, tally)) for client in clients]
    try:
        await asyncio.wait_for(tally.started.wait(), WAIT)
        await asyncio.wait_for(server.shutdown(timeout=3.0), WAIT * 2)
        for client in clients:
            await asyncio.wait_for(client.wait_closed(), WAIT)
        await asyncio.wait_for(asyncio.gather(*streams), WAIT)
    finally:
        for task in streams:
            task.cancel()
    reported = lost_frames(server_errors) + lost_frames(client_errors)
    print(f"accepted {tally.accepted} handled {tally.handled} reported {reported}")
    assert tally.accepted > 0
    # Every accepted frame is accounted for: handled, or counted in a report.
    assert tally.handled + reported == tally.accepted, (tally.accepted, tally.handled, reported)


@pytest.mark.parametrize("cancel_at", [1, 2, 31, 32, 33, 34, 59])
async def test_a_reader_cancelled_anywhere_reports_every_frame_it_took(cancel_at: int) -> None:
    """A read loop cancelled (a shutdown's last resort) between any two frames: each is handled or reported."""
    server = Server(max_concurrency=1)  # handlers run in the read loop: the handler can cancel it
    errors = Collector()
    server.on_error(errors)
    handled: list[int] = []
    gone = asyncio.Event()
    server.on_disconnect(lambda peer: gone.set())
    all_read = asyncio.Event()  # what the client sent is read: what is in flight is no server's to count

    async def count(sender: Sender, msg: Message[MessageV1]) -> None:
        if not handled:
            await all_read.wait()
        handled.append(int(msg.payload.message))
        if len(handled) == cancel_at:
            reader = asyncio.current_task()
            assert reader is not None
            asyncio.get_running_loop().call_soon(reader.cancel)  # lands at the reader's next wait

    server.handle(MessageV1, count)
    async with server:
        client = Client(server=server.addr, reconnect=None)
        client.on_error(Collector())
        async with client:
            for n in range(60):  # fewer than make a server stop reading (64): the ping below gets through
                await client.send(MessageV1(message=str(n)))
            link = client._link  # pyright: ignore[reportPrivateUsage]
            assert link is not None
            await asyncio.wait_for(await link.ping(), WAIT)  # its pong comes once the server read all 60
            all_read.set()
            await asyncio.wait_for(gone.wait(), WAIT)
            link.abort()  # a reader's cancellation leaves closing to the shutdown that cancelled it
    assert handled == list(range(len(handled)))
    assert len(handled) + lost_frames(errors) == 60, (len(handled), [repr(e) for e in errors.items])


async def test_a_handling_begun_in_a_callback_is_reported_when_its_reader_is_cancelled() -> None:
    """A handler that waits, begun from the transport's callback, whose reader is cancelled before it takes over."""
    server = Server(max_concurrency=1)
    errors = Collector()
    server.on_error(errors)
    started = asyncio.Event()
    cleaned = asyncio.Event()
    gone = asyncio.Event()
    server.on_disconnect(lambda peer: gone.set())

    async def waits(sender: Sender, msg: Message[MessageV1]) -> None:
        reader = asyncio.current_task()
        assert reader is not None
        asyncio.get_running_loop().call_soon(reader.cancel)  # before the reader takes this handling over
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    server.handle(MessageV1, waits)
    async with server:
        client = Client(server=server.addr, reconnect=None)
        client.on_error(Collector())
        async with client:
            await client.send(MessageV1(message="wait"))
            await asyncio.wait_for(gone.wait(), WAIT)
            link = client._link  # pyright: ignore[reportPrivateUsage]
            assert link is not None
            link.abort()  # a reader's cancellation leaves closing to the shutdown that cancelled it
        await asyncio.wait_for(cleaned.wait(), WAIT)  # its finally ran, at once
    assert started.is_set()
    assert lost_frames(errors) == 1, [repr(e) for e in errors.items]
