"""Client behaviour over real loopback sockets."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection as WsConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import (
    AlreadyRunningError,
    Client,
    ConnectError,
    ConnectionLostError,
    HeartbeatTimeoutError,
    Message,
    NotRunningError,
    PayloadDecodeError,
    RegistrationClosedError,
    Sender,
    Server,
    Status,
    SyncTimeoutError,
    UnexpectedReplyError,
    UnknownReplyError,
)
from goomerang_runtime._codec import decode_frame, encode_frame
from goomerang_runtime._replies import ERROR_REPLY_KIND
from goomerang_runtime.message import kind_of

from .helpers import OUR_PEER, WAIT, Collector, Counter


def replying_server() -> Server:
    server = Server()

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, on_message)
    return server


async def test_client_initiated_close_status_sequence_and_reconnect() -> None:
    server = replying_server()
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        seen: list[Status] = []
        client.on_status_change(seen.append)
        closed = Counter()
        client.on_close(closed.hit)
        assert client.status is Status.NEW
        await client.connect(timeout=WAIT)
        with pytest.raises(AlreadyRunningError):
            await client.connect()
        await client.close()
        assert seen == [Status.RUNNING, Status.CLOSING, Status.CLOSED]
        assert closed.count == 1
        assert server.status is Status.RUNNING  # only that connection went away
        with pytest.raises(NotRunningError):
            await client.send(MessageV1())
        with pytest.raises(NotRunningError):
            await client.close()
        # A client may connect again after CLOSED.
        await client.connect(timeout=WAIT)
        reply = await client.send_sync(MessageV1(message="again"), timeout=WAIT, expect=ReplyV1)
        assert reply.payload.message == "again"
        await client.close()
        assert seen == [Status.RUNNING, Status.CLOSING, Status.CLOSED] * 2


async def test_server_initiated_close_is_answered_and_client_waits_for_handlers() -> None:
    server = Server()
    started = asyncio.Event()
    release = asyncio.Event()

    async def push(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message="push"))

    server.handle(MessageV1, push)
    await server.start()
    client = Client(server=server.addr)
    seen: list[Status] = []
    client.on_status_change(seen.append)
    finished: list[str] = []

    async def on_push(sender: Sender, msg: Message[ReplyV1]) -> None:
        started.set()
        await release.wait()
        finished.append(msg.payload.message)

    client.handle(ReplyV1, on_push)
    await client.connect(timeout=WAIT)
    await client.send(MessageV1())
    await asyncio.wait_for(started.wait(), WAIT)
    await asyncio.wait_for(server.shutdown(), WAIT)  # the client answered the close frame
    assert server.status is Status.CLOSED
    assert client.status is Status.CLOSING  # its handler still runs
    release.set()
    await asyncio.wait_for(client.wait_closed(), WAIT)
    assert finished == ["push"]
    assert seen == [Status.RUNNING, Status.CLOSING, Status.CLOSED]


async def test_registration_is_closed_while_running_and_open_again_after() -> None:
    server = replying_server()
    async with server:
        client = Client(server=server.addr)
        async with client:
            with pytest.raises(RegistrationClosedError):
                client.register_message(ReplyV1)
        client.register_message(ReplyV1)
        async with client:
            reply = await client.send_sync(MessageV1(message="late registration"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "late registration"


async def test_connect_errors_are_typed() -> None:
    server = Server()
    async with server:
        port = server.addr.rsplit(":", 1)[1]
    with pytest.raises(ConnectError, match="cannot connect"):
        await Client(server=f"127.0.0.1:{port}").connect(timeout=WAIT)


async def test_sync_timeout_then_late_reply_is_reported() -> None:
    server = Server()
    reply_now = asyncio.Event()
    replied = asyncio.Event()

    async def late(sender: Sender, msg: Message[MessageV1]) -> None:
        await reply_now.wait()
        await sender.send(ReplyV1(message="late"))
        replied.set()

    server.handle(MessageV1, late)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        errors = Collector()
        client.on_error(errors)
        async with client:
            with pytest.raises(SyncTimeoutError) as info:
                await client.send_sync(MessageV1(), timeout=0.05)
            assert isinstance(info.value, TimeoutError)
            assert client.pending_sync == 0
            reply_now.set()
            late_errors = await errors.wait_for(UnknownReplyError)
            assert late_errors[0].kind == "goomerang.example.ReplyV1"
            assert client.status is Status.RUNNING


async def test_unexpected_reply_kind_is_typed() -> None:
    server = replying_server()
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            with pytest.raises(UnexpectedReplyError, match="ReplyV1"):
                await client.send_sync(MessageV1(), timeout=WAIT, expect=MessageV1)


async def test_pending_sync_fails_at_once_when_the_server_vanishes() -> None:
    received = asyncio.Event()

    async def vanish(ws: WsConnection) -> None:
        await ws.recv()
        received.set()
        ws.transport.abort()  # no close frame: the server is just gone

    async with ws_serve(vanish, "127.0.0.1", 0) as raw:
        port = raw.sockets[0].getsockname()[1]
        client = Client(server=f"127.0.0.1:{port}")
        errors = Collector()
        client.on_error(errors)
        await client.connect(timeout=WAIT)
        call = asyncio.create_task(client.send_sync(MessageV1(), timeout=60))
        await asyncio.wait_for(received.wait(), WAIT)
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(call, WAIT)  # long before its 60 s timeout
        await asyncio.wait_for(client.wait_closed(), WAIT)
        assert client.status is Status.CLOSED
        await errors.wait_for(ConnectionLostError)


async def test_pending_sync_fails_when_the_client_closes() -> None:
    server = Server()
    arrived = asyncio.Event()

    async def never_replies(sender: Sender, msg: Message[MessageV1]) -> None:
        arrived.set()

    server.handle(MessageV1, never_replies)
    async with server:
        client = Client(server=server.addr)
        await client.connect(timeout=WAIT)
        call = asyncio.create_task(client.send_sync(MessageV1(), timeout=60))
        await asyncio.wait_for(arrived.wait(), WAIT)
        assert client.pending_sync == 1
        await client.close(timeout=0.1)
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(call, WAIT)
        await server.shutdown(timeout=0.1)


async def test_heartbeat_detects_a_server_that_stops_answering() -> None:
    pings_stopped = asyncio.Event()

    async def deaf(ws: WsConnection) -> None:
        ws.transport.pause_reading()  # never reads again, so never answers pings
        pings_stopped.set()
        await ws.wait_closed()

    async with ws_serve(deaf, "127.0.0.1", 0, ping_interval=None, close_timeout=0.1) as raw:
        port = raw.sockets[0].getsockname()[1]
        client = Client(server=f"127.0.0.1:{port}", heartbeat_interval=0.05, heartbeat_timeout=0.1)
        errors = Collector()
        client.on_error(errors)
        await client.connect(timeout=WAIT)
        await asyncio.wait_for(pings_stopped.wait(), WAIT)
        await errors.wait_for(HeartbeatTimeoutError)
        await asyncio.wait_for(client.wait_closed(), WAIT)
        assert client.status is Status.CLOSED


async def test_heartbeat_pings_carry_the_go_payload() -> None:
    pings: list[bytes] = []
    got_ping = asyncio.Event()

    async def record(ws: WsConnection) -> None:
        original = ws.protocol.events_received

        def spy() -> list[object]:
            events = original()
            for event in events:
                if getattr(event, "opcode", None) is not None and event.opcode.name == "PING":  # type: ignore[attr-defined]
                    pings.append(event.data)  # type: ignore[attr-defined]
                    got_ping.set()
            return events  # type: ignore[return-value]

        ws.protocol.events_received = spy  # type: ignore[method-assign]
        await ws.wait_closed()

    async with ws_serve(record, "127.0.0.1", 0, ping_interval=None) as raw:
        port = raw.sockets[0].getsockname()[1]
        async with Client(server=f"127.0.0.1:{port}", heartbeat_interval=0.05):
            await asyncio.wait_for(got_ping.wait(), WAIT)
    assert pings[0] == b"ping"


async def test_client_sends_plain_frames_go_can_read() -> None:
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    async def capture(ws: WsConnection) -> None:
        async for data in ws:
            await frames.put(data)  # type: ignore[arg-type]

    async with ws_serve(capture, "127.0.0.1", 0) as raw:
        port = raw.sockets[0].getsockname()[1]
        async with Client(server=f"127.0.0.1:{port}") as client:
            await client.send(Message(MessageV1(message="m")).set_header("h", "v"))
            frame = decode_frame(await asyncio.wait_for(frames.get(), WAIT))
    assert frame.kind == "goomerang.example.MessageV1"
    assert frame.uuid == ""
    assert not frame.is_sync
    assert dict(frame.headers) == {"h": "v"}
    assert frame.payloadSize == len(frame.payload)


@pytest.mark.parametrize(
    "poison",
    [b"\xff\xff\xff", b"\x0a\x20truncated"],
    ids=["garbage", "truncated"],
)
async def test_a_poisoned_error_reply_fails_its_call_and_the_client_goes_on(poison: bytes) -> None:
    """An ErrorReply for a pending call whose payload does not parse: reported, the read loop lives."""

    async def poisoner(ws: WsConnection) -> None:
        async for data in ws:
            frame = decode_frame(data)  # type: ignore[arg-type]
            if frame.payload == MessageV1(message="poison").SerializeToString():
                await ws.send(encode_frame(ERROR_REPLY_KIND, poison, uuid=frame.uuid, is_sync=True))
            else:
                await ws.send(
                    encode_frame(
                        kind_of(ReplyV1), ReplyV1(message="ok").SerializeToString(), uuid=frame.uuid, is_sync=True
                    )
                )

    def as_ours(ws: WsConnection, request: Request, response: Response) -> None:
        response.headers.update(OUR_PEER)  # a Python server: error replies agreed

    async with ws_serve(poisoner, "127.0.0.1", 0, process_response=as_ours) as raw:
        port = raw.sockets[0].getsockname()[1]
        client = Client(server=f"127.0.0.1:{port}", heartbeat_interval=None)
        errors = Collector()
        client.on_error(errors)
        async with client:
            with pytest.raises(PayloadDecodeError):
                await client.send_sync(MessageV1(message="poison"), timeout=WAIT)
            await errors.wait_for(PayloadDecodeError)
            # Still RUNNING and serving.
            reply = await client.send_sync(MessageV1(message="after"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "ok"
            assert client.status is Status.RUNNING
        assert client.status is Status.CLOSED


async def test_a_reply_never_overtakes_what_the_server_sent_before_it() -> None:
    """Replies may complete straight from the transport, but only behind everything received before them."""
    server = Server()
    pushed: list[int] = []

    async def answer(sender: Sender, msg: Message[MessageV1]) -> None:
        n = int(msg.payload.message)
        await server.broadcast(PingPong(sequence=n))  # written before the reply, on the same connection
        await sender.send(ReplyV1(message=str(n)))

    async def on_push(sender: Sender, msg: Message[PingPong]) -> None:
        pushed.append(msg.payload.sequence)

    server.handle(MessageV1, answer)
    async with server:
        client = Client(server=server.addr, heartbeat_interval=None)
        client.handle(PingPong, on_push)
        client.registry.register(ReplyV1)
        async with client:
            for n in range(200):
                reply = await client.send_sync(MessageV1(message=str(n)), timeout=WAIT)
                assert reply.payload == ReplyV1(message=str(n))
                assert pushed == list(range(n + 1)), f"the reply to {n} came before what preceded it"
            calls = [client.send_sync(MessageV1(message=str(n)), timeout=WAIT) for n in range(200, 264)]
            await asyncio.wait_for(asyncio.gather(*calls), WAIT)
            assert pushed == list(range(264))
