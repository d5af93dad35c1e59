"""Limits the Python side enforces, and how it closes a Go peer when one is hit.

A Go peer handles only close code 1000 (any other is a read error to it:
a Go client stays RUNNING, a Go server keeps failing on the connection), so
on a Go link every close frame we send says 1000 with an empty reason.
"""

from __future__ import annotations

import asyncio

import pytest

from goomerang_runtime import SlowConsumerError, Status

from ..helpers import WAIT
from .gopeers import GoClient
from .harness import Direction, Interop
from .model import CommandFailed, Msg
from .pypeers import PythonServer
from .test_lifecycle import NORMAL, closes

LIMIT = 64 * 1024


@pytest.mark.scenario("message over our max_message_size: close 1000, not 1009")
async def test_oversized_message_closes_with_1000(interop: Interop) -> None:
    server = await interop.start_server(max_message_size=LIMIT)
    client = await interop.new_client(max_message_size=LIMIT)
    conn = interop.conn(client)
    big = Msg("ReplyV1" if interop.direction is Direction.PY_CLIENT else "MessageV1", "x" * (LIMIT + 40_000))
    if interop.direction is Direction.PY_CLIENT:
        await server.broadcast(big)  # the Go server pushes it to our client
    else:
        try:
            await client.send(big)  # the Go client sends it to our server
        except CommandFailed as exc:
            # Our close can reach the Go client while it still writes the message's last fragments:
            # then its own send reports the close. What matters is what we sent.
            if "close" not in str(exc):
                raise
    ours = interop.python_wrote(conn)
    await conn.wait(lambda: bool(ours.closes), what="the Python side's close frame")
    assert closes(ours) == [NORMAL]
    await client.wait_status(Status.CLOSED)


@pytest.mark.scenario("slow consumer kicked: close 1000, not 1013")
@pytest.mark.parametrize("direction", [Direction.GO_CLIENT], ids=[Direction.GO_CLIENT.value])
async def test_slow_go_consumer_is_closed_with_1000(interop: Interop) -> None:
    server = await interop.start_server(send_queue_size=2, slow_consumer_timeout=0.3)
    assert isinstance(server, PythonServer)
    client = await interop.new_client()
    assert isinstance(client, GoClient)
    conn = interop.conn(client)
    await client.block()  # its next handler blocks, and with it the Go client's reading
    await server.broadcast(Msg("ReplyV1", "first"))
    await client.proc.wait_event(lambda e: e["event"] == "blocked", "a blocked handler")
    chunk = Msg("ReplyV1", "x" * 256 * 1024)
    async with asyncio.timeout(WAIT):
        while not any(isinstance(e, SlowConsumerError) for e in server.exceptions):
            await server.server.broadcast(chunk.message(), timeout=1.0)
    await client.release()  # reading resumes: what was queued, then the close frame, reach the client
    ours = interop.python_wrote(conn)
    await conn.wait(lambda: bool(ours.closes), what="the server's close frame")
    assert closes(ours) == [NORMAL]
    await client.wait_status(Status.CLOSED)
