"""A server connection's outbox and backlog: order under pressure, slow-consumer kicks.

These drive `ServerConnection` over a link whose writes the test releases
one by one, which a socket cannot do deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from goomerang_runtime import ConnectionLostError, PeerInfo, SlowConsumerError
from goomerang_runtime._connection import ServerConnection
from goomerang_runtime._link import CLOSE_TRY_AGAIN_LATER, LinkClosed

from .helpers import WAIT, Collector


class GatedLink:
    """A link whose sends wait for the test to release them."""

    remote_address = "gated:0"

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed_with: int | None = None
        self.aborted = False
        self._gate = asyncio.Semaphore(0)
        self._progress = asyncio.Event()

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._gate.release()

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.sent) < count:
                self._progress.clear()
                await self._progress.wait()

    async def recv(self) -> bytes | str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def recv_nowait(self) -> bytes | None:
        return None

    async def send(self, data: bytes) -> None:
        await self._gate.acquire()
        if self.closed_with is not None or self.aborted:
            raise LinkClosed(self.closed_with, False, "closed")
        self.sent.append(data)
        self._progress.set()

    def send_now(self, data: bytes) -> bool:
        return False  # every frame waits for the gate

    def send_soon(self, data: bytes) -> bool:
        return False

    async def ping(self) -> Awaitable[float]:
        raise NotImplementedError

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code

    def abort(self) -> None:
        self.aborted = True


def connection(link: GatedLink, queue_size: int, timeout: float = WAIT) -> tuple[ServerConnection, Collector]:
    reported = Collector()
    conn = ServerConnection(
        link,
        PeerInfo("conn-1", link.remote_address),
        queue_size=queue_size,
        queue_timeout=timeout,
        close_wait=1.0,
        error_details=True,
        report=reported,
    )
    return conn, reported


def frames(*numbers: int) -> list[bytes]:
    return [str(n).encode() for n in numbers]


async def test_frames_behind_a_full_outbox_keep_their_order() -> None:
    link = GatedLink()
    conn, reported = connection(link, queue_size=5)
    for data in frames(1, 2, 3, 4, 5, 6, 7):  # 1-5 in the outbox, 6-7 in the backlog
        conn.deliver(data)
    waiter = asyncio.create_task(conn.send_frame(b"8"))
    link.release(1)
    await link.wait_sent(1)
    # Room appeared in the outbox, but the backlog goes first.
    conn.deliver(b"9")
    assert not conn.offer(b"never")
    link.release(8)
    await link.wait_sent(9)
    assert link.sent == frames(1, 2, 3, 4, 5, 6, 7, 8, 9)
    await asyncio.wait_for(waiter, WAIT)
    assert reported.items == []
    conn.discard(ConnectionLostError("test over"))


async def test_an_outbox_full_for_the_timeout_kicks_the_client() -> None:
    link = GatedLink()
    conn, reported = connection(link, queue_size=2, timeout=0.05)
    for data in frames(1, 2, 3):
        conn.deliver(data)
    waiter = asyncio.create_task(conn.send_frame(b"4"))
    [err] = await reported.wait_for(SlowConsumerError)
    assert "conn-1" in str(err)
    assert err.waited == 0.05
    with pytest.raises(SlowConsumerError):
        await asyncio.wait_for(waiter, WAIT)
    assert link.closed_with == CLOSE_TRY_AGAIN_LATER
    assert conn.outbox.closed
    conn.deliver(b"dropped")  # a kicked connection drops further frames quietly
    assert len(reported.items) == 1


async def test_an_overflowing_backlog_kicks_at_once() -> None:
    link = GatedLink()
    conn, reported = connection(link, queue_size=2)
    for data in frames(1, 2, 3, 4):  # 1-2 in the outbox, 3-4 in the backlog: full
        conn.deliver(data)
    assert reported.items == []
    conn.deliver(b"5")
    [err] = reported.of(SlowConsumerError)
    assert err.queued == 4
    assert link.closed_with is None  # the close frame goes out from a task
    await asyncio.sleep(0)
    assert link.closed_with == CLOSE_TRY_AGAIN_LATER


async def test_a_cancelled_send_is_not_sent() -> None:
    link = GatedLink()
    # "1" held at the gate, "2" and "3" filling the queue: the send below waits whatever the loop ran
    # before it. (With queue_size=1 and two frames, it found "2" still in the backlog, a kick, unless
    # asyncio.wait_for ran it in a task of its own, as Python 3.11's does and 3.12's does not.)
    conn, _ = connection(link, queue_size=2)
    for frame in (b"1", b"2", b"3"):
        conn.deliver(frame)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(conn.send_frame(b"cancelled"), 0.01)
    conn.deliver(b"4")
    link.release(4)
    await link.wait_sent(4)
    assert link.sent == frames(1, 2, 3, 4)
    conn.discard(ConnectionLostError("test over"))


async def test_a_closed_connection_fails_waiting_senders() -> None:
    link = GatedLink()
    conn, reported = connection(link, queue_size=1)
    conn.deliver(b"1")
    conn.deliver(b"2")
    waiter = asyncio.create_task(conn.send_frame(b"3"))
    await asyncio.sleep(0)
    conn.discard(ConnectionLostError("client went away"))
    with pytest.raises(ConnectionLostError, match="went away"):
        await asyncio.wait_for(waiter, WAIT)
    with pytest.raises(ConnectionLostError):
        await conn.send_frame(b"4")
    # "1" was being written (not known to have left); "2" (delivered by a fan-out) never left:
    # both reported, not silent.
    (lost,) = reported.items
    assert isinstance(lost, ConnectionLostError)
    assert lost.frames == 2
    assert "2 frames queued and never sent" in str(lost)
