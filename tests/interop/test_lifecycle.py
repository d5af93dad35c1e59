"""Closing, reconnecting, shutting down and TLS, in both directions.

The Python peers run with close_wait=30 s: a close handshake that waits
for something the Go peer never does shows up as a bounded wait (10 s)
failing, not as a slow pass.
"""

from __future__ import annotations

import asyncio

import pytest

from goomerang_runtime import Status

from ..helpers import WAIT
from .harness import DEFAULT_CLOSE_WAIT, Interop
from .model import Msg
from .pypeers import PythonClient, PythonServer
from .relay import RelayedConnection, Stream

NORMAL = (1000, b"")


def closes(stream: Stream) -> list[tuple[int | None, bytes]]:
    """(code, reason) of each close frame `stream` carried."""
    return [(f.close_code, f.close_reason) for f in stream.closes]


async def both_closed(conn: RelayedConnection) -> None:
    """Wait until each side of `conn` wrote a close frame."""
    await conn.wait(lambda: bool(conn.from_client.closes and conn.from_server.closes), what="both close frames")


@pytest.mark.scenario("client-initiated close (1000; server keeps serving)")
async def test_client_close(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    conn = interop.conn(client)
    await client.close()
    await client.wait_status(Status.CLOSED)
    assert client.statuses.items[-3:] == [Status.RUNNING, Status.CLOSING, Status.CLOSED]
    await both_closed(conn)
    assert closes(interop.python_wrote(conn)) == [NORMAL]
    assert closes(interop.go_wrote(conn)) == [NORMAL]
    other = await interop.new_client()
    reply = await other.send_sync(Msg("MessageV1", "still there?"))
    assert reply.text == "re:still there?"
    assert Status.CLOSING not in server.statuses.items


@pytest.mark.scenario("clean close ends TCP at once (server on_disconnect prompt)")
async def test_clean_close_ends_the_connection_promptly(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client(close_wait=DEFAULT_CLOSE_WAIT)
    conn = interop.conn(client)
    # Bounded well below close_wait: nobody may wait for a TCP close that does not come.
    await asyncio.wait_for(client.close(), WAIT)
    await conn.wait(lambda: conn.from_server.eof, what="the server closing TCP after the close handshake")
    if isinstance(server, PythonServer):
        try:
            await server.disconnects.wait_for(1)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc} (the server sent its FIN: {conn.from_server.eof}; the client sent none: {conn.from_client.eof})"
            ) from None


@pytest.mark.scenario("reconnect after close (same client object)")
async def test_reconnect_after_close(interop: Interop) -> None:
    await interop.start_server()
    client = await interop.new_client()
    first = interop.conn(client)
    await client.close()
    await client.wait_status(Status.CLOSED)
    second = await interop.connect(client)
    assert second is not first
    await client.barrier()
    reply = await client.send_sync(Msg("MessageV1", "again", {"n": "2"}))
    assert (reply.text, reply.headers) == ("re:again", {"reply": "yes"})
    await client.send(Msg("MessageV1", "echo:pushed again"))
    [pushed] = await client.received.wait_for(1)
    assert pushed.text == "re:echo:pushed again"
    assert client.statuses.items[-4:] == [Status.RUNNING, Status.CLOSING, Status.CLOSED, Status.RUNNING]


@pytest.mark.scenario("server-initiated shutdown (client reaches CLOSED)")
async def test_server_shutdown(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    conn = interop.conn(client)
    shutdown = interop.background(server.shutdown())
    await client.wait_status(Status.CLOSED)
    await both_closed(conn)
    assert closes(interop.python_wrote(conn)) == [NORMAL]
    assert closes(interop.go_wrote(conn)) == [NORMAL]
    # Bounded well below a Python server's close_wait (30 s).
    done, _ = await asyncio.wait([shutdown], timeout=WAIT)
    assert done, (
        f"shutdown still running {WAIT}s after the close handshake; "
        f"server half-closed TCP: {conn.from_server.eof}, client half-closed TCP: {conn.from_client.eof}"
    )
    shutdown.result()
    await server.wait_status(Status.CLOSED)


@pytest.mark.scenario("TLS on /wss")
async def test_tls(interop: Interop) -> None:
    await interop.start_server(tls=True)
    client = await interop.new_client()
    reply = await client.send_sync(Msg("MessageV1", "secret", {"h": "1"}))
    assert (reply.text, reply.headers) == ("re:secret", {"reply": "yes"})
    await client.send(Msg("MessageV1", "echo:over tls", {"h": "2"}))
    [pushed] = await client.received.wait_for(1)
    assert (pushed.text, pushed.headers) == ("re:echo:over tls", {"h": "2"})
    conn = interop.conn(client)
    assert conn.from_client.bytes_seen
    assert conn.request is None
    if isinstance(client, PythonClient):
        assert client.client.url.endswith("/wss")
    await client.close()
    await client.wait_status(Status.CLOSED)
