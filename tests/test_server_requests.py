"""Server-to-client requests (the ``server-requests`` extension), end to end on loopback sockets.

``Server.send_sync`` asks one client and waits; the client's handler of the
kind answers with what it returns. Every way a call can end is checked: a
reply (typed, a union, with headers), the client's handler raising or not
answering, the client leaving, the deadline, a Go client (refused before
anything is sent), and many calls at once over several clients.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from websockets.asyncio.server import ServerConnection as WsServerConnection
from websockets.asyncio.server import serve as ws_serve

from generated.fleet.v1 import fleet_goomerang as fleet
from generated.fleet.v1.fleet_pb2 import Echo, Hello, Light, NoSuchSensor, Probe, Reading, ReadSensor
from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, PingPong, ReplyV1, SuccessReplyV1
from goomerang_runtime import (
    Client,
    ConnectionLostError,
    HandlerError,
    Message,
    NoReplyError,
    PeerInfo,
    RemoteHandlerError,
    Sender,
    Server,
    SyncTimeoutError,
    UnexpectedReplyError,
    UnknownReplyError,
    UnsupportedPeerError,
)
from goomerang_runtime._codec import CALL_HEADER, decode_frame, encode_frame
from goomerang_runtime.extensions import SERVER_REQUESTS
from goomerang_runtime.testing import InMemory

from .helpers import OUR_PEER, WAIT, Collector
from .rawws import OP_BINARY, RawClient
from .replica import add_handlers

REPLY = "goomerang.example.ReplyV1"


class Peers:
    """The server's connected clients, awaited by count."""

    def __init__(self, server: Server) -> None:
        self.list: list[PeerInfo] = []
        self._changed = asyncio.Event()
        server.on_connect(self._add)

    def _add(self, peer: PeerInfo) -> None:
        self.list.append(peer)
        self._changed.set()

    async def wait_for(self, count: int) -> list[PeerInfo]:
        async with asyncio.timeout(WAIT):
            while len(self.list) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.list


def watched_server(**options: object) -> tuple[Server, Peers, Collector]:
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    return server, Peers(server), errors


def answering_client(addr: str, name: str = "c", **options: object) -> tuple[Client, Collector]:
    """A client answering MessageV1 requests with ReplyV1 ``<name>: <text>`` (header ``by``)."""
    client = Client(server=addr, heartbeat_interval=None, **options)  # type: ignore[arg-type]
    errors = Collector()
    client.on_error(errors)

    async def answer(sender: Sender, msg: Message[MessageV1]) -> Message[ReplyV1]:
        await asyncio.sleep(0)  # yield: calls interleave
        return Message(ReplyV1(message=f"{name}: {msg.payload.message}"), {"by": name, **msg.headers})

    client.handle(MessageV1, answer)
    return client, errors


async def test_a_typed_reply_with_headers_by_peer_info_id_and_handler_sender() -> None:
    server, peers, server_errors = watched_server()
    asked_from_handler: list[Message[ReplyV1]] = []

    async def on_ping(sender: Sender, msg: Message[PingPong]) -> None:
        # A server handler asks the very client whose message it handles.
        asked_from_handler.append(await server.send_sync(sender, MessageV1(message="from a handler"), expect=ReplyV1))
        await sender.send(PingPong(sequence=msg.payload.sequence))

    server.handle(PingPong, on_ping)
    async with server:
        client, client_errors = answering_client(server.addr, "ana")
        pongs: asyncio.Queue[int] = asyncio.Queue()

        async def on_pong(sender: Sender, msg: Message[PingPong]) -> None:
            await pongs.put(msg.payload.sequence)

        client.handle(PingPong, on_pong)
        async with client:
            [peer] = await peers.wait_for(1)
            assert SERVER_REQUESTS in peer.extensions
            assert SERVER_REQUESTS in client.extensions
            reply = await server.send_sync(peer, Message(MessageV1(message="hi"), {"trace": "t1"}), expect=ReplyV1)
            assert reply.payload == ReplyV1(message="ana: hi")
            assert reply.headers == {"by": "ana", "trace": "t1"}  # the mark is not a user header
            assert reply.metadata.is_sync
            assert len(reply.metadata.uuid) == 36
            by_id = await server.send_sync(peer.id, MessageV1(message="by id"), expect=ReplyV1, timeout=WAIT)
            assert by_id.payload.message == "ana: by id"
            await client.send(PingPong(sequence=7))
            assert await asyncio.wait_for(pongs.get(), WAIT) == 7
            assert [m.payload.message for m in asked_from_handler] == ["ana: from a handler"]
            assert server.pending_sync == 0
    assert server_errors.items == []
    assert client_errors.items == []


async def test_without_expect_the_reply_kind_must_be_registered_on_the_server() -> None:
    server, peers, server_errors = watched_server()
    server.register_message(ReplyV1)
    async with server:
        client, _ = answering_client(server.addr)
        async with client:
            [peer] = await peers.wait_for(1)
            reply = await server.send_sync(peer, MessageV1(message="x"), timeout=WAIT)
            assert reply.payload == ReplyV1(message="c: x")
    assert server_errors.items == []


class Device(fleet.DeviceBase):
    def __init__(self, name: str) -> None:
        self.name = name
        self.blinks: asyncio.Queue[int] = asyncio.Queue()

    async def read(self, request: ReadSensor, ctx: fleet.DeviceReadContext) -> fleet.DeviceReadReply:
        if request.sensor != "temp":
            return NoSuchSensor(sensor=request.sensor)
        ctx.reply_headers["unit"] = "C"
        return Reading(sensor=request.sensor, value=21.5)

    async def ping(self, request: Probe, ctx: fleet.DevicePingContext) -> Echo:
        await ctx.sender.send(Hello(device=f"{self.name} was pinged"))  # a plain message, not the reply
        return Echo(sequence=request.sequence)

    async def blink(self, request: Light, ctx: fleet.DeviceBlinkContext) -> None:
        await self.blinks.put(request.times)


class Fleet(fleet.FleetBase):
    def __init__(self) -> None:
        self.greetings: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        self.heard: asyncio.Queue[str] = asyncio.Queue()

    async def greet(self, request: Hello, ctx: fleet.FleetGreetContext) -> None:
        if request.device.endswith("was pinged"):
            await self.heard.put(request.device)
            return
        # Ask the device that greeted, bound through the method's context.
        reading = await fleet.DeviceStub(ctx).read(ReadSensor(sensor="temp"), timeout=WAIT)
        assert isinstance(reading, Reading)
        await self.greetings.put((request.device, reading.value))


async def test_the_generated_stub_returns_the_declared_reply_or_union() -> None:
    server, peers, server_errors = watched_server()
    service = Fleet()
    fleet.add_fleet(server, service)
    async with server:
        device = Device("d1")
        client = Client(server=server.addr, heartbeat_interval=None)
        client_errors = Collector()
        client.on_error(client_errors)
        fleet.add_device(client, device)
        async with client:
            [peer] = await peers.wait_for(1)
            await fleet.FleetStub(client).greet(Hello(device="d1"))
            assert await asyncio.wait_for(service.greetings.get(), WAIT) == ("d1", 21.5)
            stub = fleet.DeviceStub(server, peer)
            assert stub.peer_id == peer.id
            match await stub.read(ReadSensor(sensor="humidity"), timeout=WAIT):
                case NoSuchSensor(sensor=sensor):
                    assert sensor == "humidity"
                case other:
                    pytest.fail(f"expected NoSuchSensor, got {other!r}")
            whole = await fleet.DeviceStub(server, peer.id).read_with_reply(ReadSensor(sensor="temp"), timeout=WAIT)
            assert whole.payload == Reading(sensor="temp", value=21.5)
            assert whole.headers == {"unit": "C"}
            assert await stub.ping(Probe(sequence=42), timeout=WAIT) == Echo(sequence=42)
            assert await asyncio.wait_for(service.heard.get(), WAIT) == "d1 was pinged"
            await fleet.DeviceSender(server).send(peer, Light(times=3))  # fire and forget still works
            assert await asyncio.wait_for(device.blinks.get(), WAIT) == 3
    assert server_errors.items == []
    assert client_errors.items == []


async def test_a_failing_or_silent_client_handler_is_a_typed_error_at_once() -> None:
    server, peers, server_errors = watched_server()
    server.register_message(ReplyV1)
    async with server:
        client = Client(server=server.addr, heartbeat_interval=None)
        client_errors = Collector()
        client.on_error(client_errors)

        async def raises(sender: Sender, msg: Message[MessageV1]) -> ReplyV1:
            raise ValueError("sensor on fire")

        async def silent(sender: Sender, msg: Message[SuccessReplyV1]) -> None:
            pass

        client.handle(MessageV1, raises)
        client.handle(SuccessReplyV1, silent)
        client.register_message(BadReplyV1)  # known to the client, but no handler
        async with client:
            [peer] = await peers.wait_for(1)
            with pytest.raises(RemoteHandlerError) as raised:
                await server.send_sync(peer, MessageV1(), expect=ReplyV1, timeout=WAIT)
            assert (raised.value.request_kind, raised.value.error_type) == ("goomerang.example.MessageV1", "ValueError")
            assert raised.value.detail == "sensor on fire"
            [handler_error] = await client_errors.wait_for(HandlerError)
            assert isinstance(handler_error.error, ValueError)
            with pytest.raises(RemoteHandlerError) as raised:
                await server.send_sync(peer, SuccessReplyV1(), expect=ReplyV1, timeout=WAIT)
            assert raised.value.error_type == "NoReplyError"
            await client_errors.wait_for(NoReplyError)
            with pytest.raises(RemoteHandlerError) as raised:
                await server.send_sync(peer, BadReplyV1(), expect=ReplyV1, timeout=WAIT)
            assert raised.value.error_type == "NoHandlerError"
            with pytest.raises(RemoteHandlerError) as raised:
                await server.send_sync(peer, PingPong(), expect=ReplyV1, timeout=WAIT)  # a kind the client lacks
            assert raised.value.error_type == "UnknownKindError"
            assert server.pending_sync == 0
    assert server_errors.items == []


async def test_a_reply_outside_expect_is_refused_and_reported() -> None:
    server, peers, server_errors = watched_server()
    async with server:
        client, _ = answering_client(server.addr)
        async with client:
            [peer] = await peers.wait_for(1)
            with pytest.raises(UnexpectedReplyError) as raised:
                await server.send_sync(peer, MessageV1(), expect=(SuccessReplyV1, BadReplyV1), timeout=WAIT)
            assert raised.value.got == REPLY
    assert [type(e) for e in server_errors.items] == [UnexpectedReplyError]


async def test_the_deadline_raises_a_timeout_and_the_late_reply_is_reported() -> None:
    server, peers, server_errors = watched_server()
    release = asyncio.Event()
    async with server:
        client = Client(server=server.addr, heartbeat_interval=None)

        async def slow(sender: Sender, msg: Message[MessageV1]) -> ReplyV1:
            await release.wait()
            return ReplyV1(message="late")

        client.handle(MessageV1, slow)
        async with client:
            [peer] = await peers.wait_for(1)
            started = time.perf_counter()
            with pytest.raises(SyncTimeoutError) as raised:
                await server.send_sync(peer, MessageV1(), expect=ReplyV1, timeout=0.2)
            waited = time.perf_counter() - started
            assert isinstance(raised.value, TimeoutError)
            assert raised.value.timeout == 0.2
            assert server.pending_sync == 0
            release.set()
            [late] = await server_errors.wait_for(UnknownReplyError)
            assert late.kind == REPLY
    print(f"\ntimeout 0.2 s: raised after {waited:.3f} s")


async def test_calls_to_a_client_that_leaves_fail_at_once_none_hang() -> None:
    server, peers, _ = watched_server()
    started = asyncio.Event()
    async with server:
        client = Client(server=server.addr, heartbeat_interval=None, close_wait=0.5)
        client_errors = Collector()
        client.on_error(client_errors)
        running = 0

        async def stuck(sender: Sender, msg: Message[MessageV1]) -> ReplyV1:
            nonlocal running
            running += 1
            if running == 10:
                started.set()
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

        client.handle(MessageV1, stuck)
        await client.connect()
        [peer] = await peers.wait_for(1)
        calls = [asyncio.ensure_future(server.send_sync(peer, MessageV1(), expect=ReplyV1)) for _ in range(50)]
        await asyncio.wait_for(started.wait(), WAIT)  # max_concurrency (10) handlers are stuck, 40 queued
        await client.close(timeout=0.1)  # its handlers are cancelled; the server sees it leave
        # Every request is accounted for on the client: each handler cancelled or never started.
        assert len(client_errors.of(HandlerError)) == 50
        done, pending = await asyncio.wait(calls, timeout=WAIT)
        assert not pending
        errors = [call.exception() for call in done]
        assert all(isinstance(e, ConnectionLostError) for e in errors), errors
        assert "left before replying" in str(errors[0])
        assert server.pending_sync == 0
        with pytest.raises(ConnectionLostError):
            await server.send_sync(peer, MessageV1(), expect=ReplyV1)  # gone: nothing to ask


async def test_the_wire_of_a_server_request_and_a_raw_client_that_answers_then_vanishes() -> None:
    server, peers, server_errors = watched_server()
    async with server:
        raw = await RawClient.connect(server.addr, headers=OUR_PEER)
        try:
            [peer] = await peers.wait_for(1)
            first = asyncio.ensure_future(server.send_sync(peer, MessageV1(message="one"), expect=ReplyV1))
            frame = await raw.recv()
            assert frame.opcode == OP_BINARY
            request = decode_frame(frame.data)
            assert (request.kind, request.is_sync, dict(request.headers)) == (
                "goomerang.example.MessageV1",
                True,
                {CALL_HEADER: "1"},
            )
            assert MessageV1.FromString(request.payload).message == "one"
            reply = ReplyV1(message="raw").SerializeToString()
            raw.send(
                OP_BINARY, encode_frame(REPLY, reply, {CALL_HEADER: "1", "k": "v"}, uuid=request.uuid, is_sync=True)
            )
            answered = await asyncio.wait_for(first, WAIT)
            assert (answered.payload.message, answered.headers) == ("raw", {"k": "v"})
            second = asyncio.ensure_future(server.send_sync(peer, MessageV1(message="two"), expect=ReplyV1))
            await raw.recv()
        finally:
            raw.abort()  # gone without a close handshake
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(second, WAIT)
    assert not server_errors.of(UnknownReplyError)


async def test_a_client_cannot_answer_a_request_made_to_another() -> None:
    server, peers, server_errors = watched_server()
    release = asyncio.Event()
    asked = asyncio.Event()
    async with server:
        honest = Client(server=server.addr, heartbeat_interval=None)

        async def answer(sender: Sender, msg: Message[MessageV1]) -> ReplyV1:
            asked.set()
            await release.wait()
            return ReplyV1(message="honest")

        honest.handle(MessageV1, answer)
        async with honest:
            [peer] = await peers.wait_for(1)
            raw = await RawClient.connect(server.addr, headers=OUR_PEER)
            try:
                await peers.wait_for(2)
                call = asyncio.ensure_future(server.send_sync(peer, MessageV1(), expect=ReplyV1, timeout=WAIT))
                await asyncio.wait_for(asked.wait(), WAIT)
                [uuid] = list(server._calls._calls)  # the id the honest client was asked with
                forged = ReplyV1(message="forged").SerializeToString()
                raw.send(OP_BINARY, encode_frame(REPLY, forged, {CALL_HEADER: "1"}, uuid=uuid, is_sync=True))
                [refused] = await server_errors.wait_for(UnknownReplyError)
                assert refused.uuid == uuid
                release.set()
                assert (await call).payload.message == "honest"
            finally:
                raw.abort()


async def test_a_go_client_is_refused_before_anything_is_sent() -> None:
    server, peers, server_errors = watched_server()
    add_handlers(server, "S")
    async with server:
        go = await RawClient.connect(server.addr)  # no Goomerang-Extensions header: a Go client
        try:
            [peer] = await peers.wait_for(1)
            assert peer.extensions == frozenset()
            with pytest.raises(UnsupportedPeerError) as raised:
                await server.send_sync(peer, MessageV1(message="never sent"), expect=ReplyV1, timeout=WAIT)
            assert "'server-requests' extension" in str(raised.value)
            assert "nothing was sent" in str(raised.value)
            assert server.pending_sync == 0
            # The first frame the Go client gets is this plain one: nothing went out before it.
            await server.send_to(peer.id, ReplyV1(message="plain"))
            first = decode_frame((await go.recv()).data)
            assert (first.kind, first.uuid, first.is_sync) == (REPLY, "", False)
            assert ReplyV1.FromString(first.payload).message == "plain"
            # For a Go client the mark means nothing: a marked sync frame is its own request, served as in Go.
            request = MessageV1(message="q").SerializeToString()
            go.send(
                OP_BINARY,
                encode_frame("goomerang.example.MessageV1", request, {CALL_HEADER: "1"}, uuid="u-1", is_sync=True),
            )
            answer = decode_frame((await go.recv()).data)
            assert (answer.kind, answer.uuid, answer.is_sync) == (REPLY, "u-1", True)
            assert ReplyV1.FromString(answer.payload).message == "S: q"
            await go.close()
        finally:
            go.abort()
    assert server_errors.items == []


@pytest.mark.parametrize("side", ["client", "server"])
async def test_extensions_false_on_either_side_refuses_too(side: str) -> None:
    server, peers, _ = watched_server(extensions=side != "server")
    async with server:
        client, _ = answering_client(server.addr, extensions=side != "client")
        async with client:
            [peer] = await peers.wait_for(1)
            with pytest.raises(UnsupportedPeerError):
                await server.send_sync(peer, MessageV1(), expect=ReplyV1)


async def test_a_client_treats_a_marked_frame_from_a_go_server_as_a_reply_it_does_not_await() -> None:
    """A server that did not agree on the extension gets Go's client: no handler runs, nothing is answered."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def go_server(ws: WsServerConnection) -> None:
        request = MessageV1(message="q").SerializeToString()
        await ws.send(encode_frame("goomerang.example.MessageV1", request, {CALL_HEADER: "1"}, uuid="u", is_sync=True))
        async for data in ws:
            assert isinstance(data, bytes)
            await got.put(data)

    async with ws_serve(go_server, "127.0.0.1", 0) as go:
        port = go.sockets[0].getsockname()[1]
        client, errors = answering_client(f"127.0.0.1:{port}")
        async with client:
            assert client.extensions == frozenset()  # no Goomerang-Extensions answer
            [late] = await errors.wait_for(UnknownReplyError)
            assert late.uuid == "u"
            await client.send(ReplyV1(message="after"))
            assert decode_frame(await asyncio.wait_for(got.get(), WAIT)).kind == REPLY  # nothing came before it


async def test_a_server_shutdown_fails_the_calls_it_still_waits_for() -> None:
    server, peers, _ = watched_server(close_wait=1.0)
    await server.start()
    client = Client(server=server.addr, heartbeat_interval=None)
    asked = asyncio.Event()

    async def stuck(sender: Sender, msg: Message[MessageV1]) -> ReplyV1:
        asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client.handle(MessageV1, stuck)
    await client.connect()
    try:
        [peer] = await peers.wait_for(1)
        call = asyncio.ensure_future(server.send_sync(peer, MessageV1(), expect=ReplyV1))
        await asyncio.wait_for(asked.wait(), WAIT)
        await server.shutdown(timeout=1.0)
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(call, WAIT)
    finally:
        await asyncio.wait_for(client.wait_closed(), WAIT)


CLIENTS = 8
CALLS_PER_CLIENT = 250


async def test_many_concurrent_calls_over_several_clients_each_answered_by_its_own_client() -> None:
    server, peers, server_errors = watched_server()
    async with server:
        clients = [answering_client(server.addr, f"c{i}", max_concurrency=16) for i in range(CLIENTS)]
        for client, _ in clients:
            await client.connect()
        try:
            connected = await peers.wait_for(CLIENTS)
            latencies: list[float] = []

            async def ask(peer: PeerInfo, n: int) -> str:
                started = time.perf_counter()
                reply = await server.send_sync(peer, MessageV1(message=str(n)), expect=ReplyV1, timeout=WAIT * 3)
                latencies.append(time.perf_counter() - started)
                return reply.payload.message

            began = time.perf_counter()
            replies = await asyncio.gather(*(ask(peer, n) for peer in connected for n in range(CALLS_PER_CLIENT)))
            wall = time.perf_counter() - began
            # Each reply names the client that answered: one client per connection, each call its own answer.
            answered: dict[str, set[str]] = {}
            for i, peer in enumerate(connected):
                chunk = replies[i * CALLS_PER_CLIENT : (i + 1) * CALLS_PER_CLIENT]
                names = {reply.split(": ")[0] for reply in chunk}
                assert len(names) == 1, names
                assert [reply.split(": ")[1] for reply in chunk] == [str(n) for n in range(CALLS_PER_CLIENT)]
                answered[peer.id] = names
            assert set().union(*answered.values()) == {f"c{i}" for i in range(CLIENTS)}
            assert server.pending_sync == 0
        finally:
            for client, _ in clients:
                await client.close()
    for _, errors in clients:
        assert errors.items == []
    assert server_errors.items == []
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\n{len(replies)} concurrent calls over {CLIENTS} clients in {wall:.3f} s:"
        f" latency p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


async def test_the_in_memory_transport_carries_server_requests_too() -> None:
    server, peers, server_errors = watched_server()
    async with InMemory(server) as net:
        client, _ = answering_client("in-memory:1", "mem")
        await net.connect(client)
        try:
            [peer] = await peers.wait_for(1)
            reply = await server.send_sync(peer, MessageV1(message="x"), expect=ReplyV1, timeout=WAIT)
            assert reply.payload.message == "mem: x"
        finally:
            await client.close()
    assert server_errors.items == []
