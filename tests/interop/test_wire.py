"""The bytes the Python side writes to a Go peer, as seen on the relay between them.

Each test runs the same mixed traffic (plain and sync sends, pushes,
broadcasts, publications, subscriptions, pings, a client close and a server
shutdown) and checks one property of what the Python end wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from goomerang_runtime import Status

from .harness import Direction, Interop
from .model import Msg
from .peers import ClientSide, ServerSide
from .protowire import BROADCAST_KIND, PUBLISH_KIND, UUID_RE, frame_problems
from .relay import OP_BINARY, OP_PONG, RelayedConnection

EXTENSIONS_HEADER = "Goomerang-Extensions"
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token


@dataclass
class Traffic:
    """What ran: the server, client `a` (pings fast, closes first) and client `b`."""

    server: ServerSide
    a: ClientSide
    b: ClientSide
    conn_a: RelayedConnection
    conn_b: RelayedConnection
    go_errors: list[str]
    """What the Go peers' error hooks reported before anything closed."""


async def run_traffic(interop: Interop) -> Traffic:
    server = await interop.start_server()
    a = await interop.new_client(heartbeat=0.2)
    b = await interop.new_client()
    conn_a, conn_b = interop.conn(a), interop.conn(b)
    for client in (a, b):
        await client.subscribe("t")
    await server.wait_hook("subscribed", "t", count=2)
    await a.send(Msg("MessageV1", "plain", {"h": "1"}))
    await a.send(Msg("MessageV1", ""))  # every Frame field but kind and creation is zero
    await a.send(Msg("MessageV1", "echo:e", {"x": "y"}))
    await a.send_sync(Msg("MessageV1", "s", {"k": "v"}))
    await a.send_sync(Msg("MessageV1", "bad:b"))
    await a.broadcast(Msg("ReplyV1", "bc", {"room": "go"}))
    await a.publish("t", Msg("ReplyV1", "pub", {"p": "q"}))
    await server.wait_hook("published", "t")
    await server.publish("t", Msg("ReplyV1", "spub", {"s": "1"}))
    await server.broadcast(Msg("ReplyV1", "sbc"))
    await a.unsubscribe("t")
    await server.wait_hook("unsubscribed", "t")
    await a.received.wait_for(5)
    await b.received.wait_for(4)
    pinger = conn_a.from_client
    await conn_a.wait(lambda: bool(pinger.pings and conn_a.from_server.controls), what="a ping and its pong")
    go_sides = [server] if interop.direction is Direction.PY_CLIENT else [a, b]
    go_errors = [error for side in go_sides for error in side.errors]
    await a.close()
    await a.wait_status(Status.CLOSED)
    interop.background(server.shutdown())  # how long it takes is test_lifecycle's business
    await b.wait_status(Status.CLOSED)
    for conn in (conn_a, conn_b):
        await conn.wait(lambda c=conn: bool(c.from_client.closes and c.from_server.closes), what="close frames")
    return Traffic(server, a, b, conn_a, conn_b, go_errors)


@pytest.mark.scenario("wire: frames are binary, protobuf fields ascending, zero fields omitted")
async def test_frame_layout(interop: Interop) -> None:
    t = await run_traffic(interop)
    checked = 0
    plain = 0
    for conn in (t.conn_a, t.conn_b):
        stream = interop.python_wrote(conn)
        assert stream.errors == []
        for msg in stream.messages:
            assert msg.opcode == OP_BINARY
            assert msg.masked is (interop.direction is Direction.PY_CLIENT), "clients mask, servers do not"
            assert msg.frame is not None, msg.decode_error
            assert frame_problems(msg.data) == [], (msg.frame.kind, msg.data[:80])
            checked += 1
            plain += not msg.frame.uuid
    assert checked >= 8, checked
    assert plain >= 4, plain


@pytest.mark.scenario("wire: the Go peer takes everything we send (no error hook fires)")
async def test_go_peer_reports_no_error(interop: Interop) -> None:
    t = await run_traffic(interop)
    assert t.go_errors == []


@pytest.mark.scenario("wire: sync uuid in canonical text form, reply uuid = request uuid")
async def test_sync_uuids(interop: Interop) -> None:
    t = await run_traffic(interop)
    ours = [f for f in interop.python_wrote(t.conn_a).goomerang_frames if f.is_sync or f.uuid]
    theirs = [f for f in interop.go_wrote(t.conn_a).goomerang_frames if f.is_sync or f.uuid]
    assert len(ours) >= 3
    assert len(theirs) >= 3
    for frame in ours:
        assert frame.is_sync
        assert UUID_RE.match(frame.uuid), frame.uuid
    assert sorted(f.uuid for f in ours) == sorted(f.uuid for f in theirs)


@pytest.mark.scenario("wire: message- prefix on commands, exact user headers on deliveries")
async def test_headers_on_the_wire(interop: Interop) -> None:
    t = await run_traffic(interop)
    frames = interop.python_wrote(t.conn_a).goomerang_frames
    if interop.direction is Direction.PY_CLIENT:
        commands = {f.kind: dict(f.headers) for f in frames if f.kind in (BROADCAST_KIND, PUBLISH_KIND)}
        assert commands == {BROADCAST_KIND: {"message-room": "go"}, PUBLISH_KIND: {"message-p": "q"}}
    else:
        pushed = {f.payload: dict(f.headers) for f in frames if not f.is_sync and f.kind.endswith("ReplyV1")}
        texts = {b"\n" + bytes([len(t)]) + t.encode(): h for t, h in _DELIVERIES.items()}
        assert pushed == texts


_DELIVERIES = {"re:echo:e": {"x": "y"}, "bc": {"room": "go"}, "pub": {"p": "q"}, "spub": {"s": "1"}, "sbc": {}}
"""Payload text -> headers of every plain frame a Python server pushes to client `a` in the traffic."""


@pytest.mark.scenario("wire: close frames carry 1000 and an empty reason")
async def test_close_frames(interop: Interop) -> None:
    t = await run_traffic(interop)
    for conn in (t.conn_a, t.conn_b):  # a: the client closed; b: the server shut down
        ours = interop.python_wrote(conn).closes
        assert [(f.close_code, f.close_reason) for f in ours] == [(1000, b"")]


@pytest.mark.scenario("wire: only clients ping, with payload 'ping'; pongs echo it")
async def test_pings(interop: Interop) -> None:
    t = await run_traffic(interop)
    pings = t.conn_a.from_client.pings
    pongs = [f for f in t.conn_a.from_server.controls if f.opcode == OP_PONG]
    assert pings
    assert pongs
    assert {f.payload for f in pings} == {b"ping"}
    assert all(f.masked for f in pings)
    assert {f.payload for f in pongs} == {b"ping"}
    for conn in (t.conn_a, t.conn_b):
        assert conn.from_server.pings == [], "a server never pings"


@pytest.mark.scenario("extension negotiation: Goomerang-Extensions only between Python peers")
async def test_extension_header(interop: Interop) -> None:
    await interop.start_server()
    client = await interop.new_client()
    conn = interop.conn(client)
    assert conn.request is not None
    assert conn.response is not None
    assert conn.response.status == 101
    if interop.direction is Direction.PY_CLIENT:
        offered = conn.request.get(EXTENSIONS_HEADER)
        assert offered is not None, f"our client's upgrade request has no {EXTENSIONS_HEADER}: {conn.request.headers}"
        tokens = [token.strip() for token in offered.split(",")]
        assert all(TOKEN_RE.match(token) for token in tokens), offered
        assert not conn.response.has(EXTENSIONS_HEADER)  # the Go server ignores it
    else:
        assert not conn.request.has(EXTENSIONS_HEADER)  # a Go client sends none
        assert not conn.response.has(EXTENSIONS_HEADER), f"our server answered a Go client: {conn.response.headers}"
