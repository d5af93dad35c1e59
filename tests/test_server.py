"""Server behaviour over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    AlreadyRunningError,
    Client,
    ConnectError,
    FrameDecodeError,
    Handler,
    HandlerError,
    Message,
    MessageTooBigError,
    NoHandlerError,
    NotRunningError,
    PayloadDecodeError,
    ProtoMessage,
    RegistrationClosedError,
    RemoteHandlerError,
    Sender,
    Server,
    Status,
    TextFrameError,
    UnknownKindError,
)
from goomerang_runtime._codec import decode_frame, encode_frame, encode_message

from .helpers import OUR_PEER, WAIT, Certs, Collector, Counter


async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
    await sender.send(Message(ReplyV1(message=msg.payload.message), msg.headers))


def echo_server(**options: object) -> tuple[Server, Collector]:
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    server.handle(MessageV1, echo)
    return server, errors


def raw_sync_request(text: str, uuid: str = "11111111-2222-3333-4444-555555555555") -> bytes:
    data, _, _ = encode_message(Message(MessageV1(message=text)), uuid=uuid, is_sync=True)
    return data


async def test_status_runs_once_and_addr_is_real() -> None:
    server, _ = echo_server()
    seen: list[Status] = []
    server.on_status_change(seen.append)
    closed = Counter()
    server.on_close(closed.hit)
    assert server.status is Status.NEW
    with pytest.raises(NotRunningError):
        _ = server.addr
    async with server:
        host, port = server.addr.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert int(port) > 0
        assert server.url == f"ws://{server.addr}/ws"
        with pytest.raises(AlreadyRunningError):
            await server.start()
    assert seen == [Status.RUNNING, Status.CLOSING, Status.CLOSED]
    assert closed.count == 1
    with pytest.raises(AlreadyRunningError):
        await server.start()
    with pytest.raises(NotRunningError):
        await server.shutdown()


async def test_run_blocks_until_shutdown() -> None:
    server, _ = echo_server()
    running = asyncio.Event()
    server.on_status_change(lambda s: running.set() if s is Status.RUNNING else None)
    task = asyncio.create_task(server.run())
    await asyncio.wait_for(running.wait(), WAIT)
    assert not task.done()
    await server.shutdown()
    await asyncio.wait_for(task, WAIT)


async def test_registration_after_start_raises() -> None:
    server, _ = echo_server()
    async with server:
        with pytest.raises(RegistrationClosedError):
            server.handle(ReplyV1, echo)  # type: ignore[arg-type]
        with pytest.raises(RegistrationClosedError):
            server.middleware(lambda h: h)
        with pytest.raises(RegistrationClosedError):
            server.register_message(ReplyV1)


async def test_on_configuration_gets_the_validated_config() -> None:
    server, _ = echo_server(max_concurrency=3)
    seen: list[object] = []
    server.on_configuration(seen.append)
    async with server:
        assert seen == [server.config]


async def test_wrong_path_is_404_and_cross_origin_is_403() -> None:
    server, _ = echo_server()
    async with server:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with ws_connect(f"ws://{server.addr}/other"):
                pass
        assert info.value.response.status_code == 404
        with pytest.raises(websockets.InvalidStatus) as info:
            async with ws_connect(server.url, origin=websockets.Origin("http://evil.example")):
                pass
        assert info.value.response.status_code == 403
        # Same-origin browsers are let in.
        async with ws_connect(server.url, origin=websockets.Origin(f"http://{server.addr}")) as ws:
            await ws.send(raw_sync_request("same origin"))
            reply = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
            assert reply.kind == "goomerang.example.ReplyV1"


async def test_upgrade_while_closing_gets_503() -> None:
    server, _ = echo_server(close_wait=1.0)
    await server.start()
    closing = asyncio.Event()
    server.on_status_change(lambda s: closing.set() if s is Status.CLOSING else None)
    # A client that never reads keeps the server in CLOSING for close_wait.
    silent = await ws_connect(server.url)
    silent.transport.pause_reading()
    shutdown = asyncio.create_task(server.shutdown())
    await asyncio.wait_for(closing.wait(), WAIT)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with ws_connect(server.url, open_timeout=WAIT):
            pass
    assert info.value.response.status_code == 503
    await asyncio.wait_for(shutdown, WAIT)
    assert server.status is Status.CLOSED
    silent.transport.abort()


async def test_plain_send_both_directions_with_headers() -> None:
    server = Server()
    got_on_server: asyncio.Queue[Message[MessageV1]] = asyncio.Queue()

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        await got_on_server.put(msg)
        await sender.send(Message(ReplyV1(message="pushed")).set_header("from", "server"))

    server.handle(MessageV1, on_message)
    async with server:
        client = Client(server=server.addr)
        got_on_client: asyncio.Queue[Message[ReplyV1]] = asyncio.Queue()

        async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
            await got_on_client.put(msg)

        client.handle(ReplyV1, on_reply)
        async with client:
            size = await client.send(Message(MessageV1(message="hello")).set_header("Key", "Value"))
            assert size == len(MessageV1(message="hello").SerializeToString())
            msg = await asyncio.wait_for(got_on_server.get(), WAIT)
            assert msg.payload.message == "hello"
            assert msg.headers == {"Key": "Value"}
            assert not msg.metadata.is_sync
            assert msg.metadata.uuid == ""
            push = await asyncio.wait_for(got_on_client.get(), WAIT)
            assert push.payload.message == "pushed"
            assert push.headers == {"from": "server"}


async def test_send_sync_with_reply_headers() -> None:
    server = Server()

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        assert msg.metadata.is_sync
        await sender.send(Message(ReplyV1(message=msg.payload.message.upper())).set_header("status", "200"))

    server.handle(MessageV1, on_message)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            reply = await client.send_sync(Message(MessageV1(message="abc")).set_header("q", "1"), timeout=WAIT)
            assert reply.payload == ReplyV1(message="ABC")
            assert reply.headers == {"status": "200"}
            assert reply.metadata.is_sync
            typed = await client.send_sync(MessageV1(message="x"), timeout=WAIT, expect=ReplyV1)
            assert typed.payload.message == "X"


async def test_200_concurrent_sync_calls_are_correlated_with_replies_out_of_order() -> None:
    server = Server(max_concurrency=250)
    arrived = Counter()
    release = asyncio.Event()
    order = list(range(200))
    import random

    random.Random(7).shuffle(order)
    gates = {n: asyncio.Event() for n in range(200)}

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        n = int(msg.payload.message)
        arrived.hit()
        await gates[n].wait()
        await sender.send(ReplyV1(message=f"reply-{n}"))

    server.handle(MessageV1, on_message)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            calls = [
                asyncio.create_task(client.send_sync(MessageV1(message=str(n)), timeout=WAIT, expect=ReplyV1))
                for n in range(200)
            ]
            await arrived.wait_for(200)
            assert client.pending_sync == 200
            for n in order:  # replies leave in a shuffled order
                gates[n].set()
            replies = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
            assert [r.payload.message for r in replies] == [f"reply-{n}" for n in range(200)]
            assert client.pending_sync == 0
            release.set()


async def test_middlewares_run_in_registration_order_around_the_handler() -> None:
    server = Server()
    trace: list[str] = []

    def mark(name: str):  # type: ignore[no-untyped-def]
        def middleware(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
            async def wrapped(sender: Sender, msg: Message[ProtoMessage]) -> None:
                trace.append(f"{name} before")
                await next_handler(sender, msg)
                trace.append(f"{name} after")

            return wrapped

        return middleware

    done = asyncio.Event()

    async def handler(sender: Sender, msg: Message[MessageV1]) -> None:
        trace.append("handler")
        done.set()

    server.handle(MessageV1, handler)
    server.middleware(mark("m1"))
    server.middleware(mark("m2"))
    async with server, Client(server=server.addr) as client:
        await client.send(MessageV1())
        await asyncio.wait_for(done.wait(), WAIT)
    assert trace == ["m1 before", "m2 before", "handler", "m2 after", "m1 after"]


async def test_max_concurrency_is_reached_and_never_exceeded() -> None:
    limit = 5
    server = Server(max_concurrency=limit)
    running = 0
    peak = 0
    full = asyncio.Event()
    done = Counter()
    workers = Counter()
    server.on_worker_start(workers.hit)

    async def handler(sender: Sender, msg: Message[MessageV1]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == limit:
            full.set()
        await full.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1
        done.hit()

    server.handle(MessageV1, handler)
    async with server, Client(server=server.addr) as client:
        for n in range(200):
            await client.send(MessageV1(message=str(n)))
        await done.wait_for(200)
    assert peak == limit
    assert workers.count == 200


async def test_inline_mode_keeps_order() -> None:
    server = Server(max_concurrency=1)
    seen: list[int] = []
    done = Counter()

    async def handler(sender: Sender, msg: Message[MessageV1]) -> None:
        await asyncio.sleep(0)
        seen.append(int(msg.payload.message))
        done.hit()

    server.handle(MessageV1, handler)
    async with server, Client(server=server.addr) as client:
        for n in range(300):
            await client.send(MessageV1(message=str(n)))
        await done.wait_for(300)
    assert seen == list(range(300))


async def test_handler_object_with_handle_method() -> None:
    class Echo:
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def handle(self, sender: Sender, msg: Message[MessageV1]) -> None:
            self.seen.append(msg.payload.message)
            await sender.send(ReplyV1(message="obj"))

    obj = Echo()
    server = Server()
    server.handle(MessageV1, obj)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            reply = await client.send_sync(MessageV1(message="hi"), timeout=WAIT)
    assert obj.seen == ["hi"]
    assert reply.payload == ReplyV1(message="obj")


async def test_shutdown_waits_for_in_flight_handlers() -> None:
    server = Server()
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.set()
        await release.wait()
        finished.append(msg.payload.message)

    server.handle(MessageV1, slow)
    await server.start()
    client = Client(server=server.addr)
    await client.connect()
    await client.send(MessageV1(message="in flight"))
    await asyncio.wait_for(started.wait(), WAIT)
    shutdown = asyncio.create_task(server.shutdown())
    await asyncio.wait_for(client.wait_closed(), WAIT)
    assert server.status is Status.CLOSING
    assert not shutdown.done()
    release.set()
    await asyncio.wait_for(shutdown, WAIT)
    assert finished == ["in flight"]
    assert server.status is Status.CLOSED


async def test_shutdown_timeout_cancels_and_reports_unfinished_handlers() -> None:
    server = Server()
    errors = Collector()
    server.on_error(errors)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(sender: Sender, msg: Message[MessageV1]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    server.handle(MessageV1, stuck)
    await server.start()
    async with Client(server=server.addr) as client:
        await client.send(MessageV1())
        await asyncio.wait_for(started.wait(), WAIT)
        await asyncio.wait_for(server.shutdown(timeout=0.2), WAIT)
    await asyncio.wait_for(cancelled.wait(), WAIT)
    assert server.status is Status.CLOSED
    unfinished = errors.of(HandlerError)
    assert [e.kind for e in unfinished] == ["goomerang.example.MessageV1"]
    assert "at shutdown" in str(unfinished[0])


async def test_tls_round_trip_on_wss(certs: Certs) -> None:
    server, _ = echo_server(tls=certs.server_context())
    async with server:
        assert server.url.startswith("wss://")
        assert server.url.endswith("/wss")
        client = Client(server=server.addr, tls=certs.client_context())
        client.register_message(ReplyV1)
        async with client:
            reply = await client.send_sync(MessageV1(message="secret"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "secret"
        # Plain ws on a TLS server fails to connect.
        with pytest.raises(ConnectError):
            await Client(server=server.addr).connect(timeout=WAIT)
        # A client that does not trust the CA is refused.
        import ssl

        with pytest.raises(ConnectError):
            await Client(server=server.addr, tls=ssl.create_default_context()).connect(timeout=WAIT)


# Bad input: each case is reported, never stops the server, and loses nothing else.


async def assert_still_serves(server: Server, expected: str = "still here") -> None:
    """A new client still gets its sync reply (the handler echoes unless told otherwise)."""
    client = Client(server=server.addr)
    client.register_message(ReplyV1)
    async with client:
        reply = await client.send_sync(MessageV1(message="still here"), timeout=WAIT, expect=ReplyV1)
        assert reply.payload.message == expected


async def test_random_bytes_text_unknown_kind_bad_payload_keep_the_connection() -> None:
    server, errors = echo_server()
    async with server, ws_connect(server.url) as ws:
        await ws.send(b"\xff\xfe\xfd")
        await ws.send("a text frame")
        await ws.send(encode_frame("nope.Unknown", b"\x01"))
        await ws.send(encode_frame("goomerang.example.MessageV1", b"\x0a\x20truncated"))
        # The same connection still works afterwards, in order.
        await ws.send(raw_sync_request("after the garbage"))
        reply = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
        assert ReplyV1.FromString(reply.payload).message == "after the garbage"
        assert len(errors.of(FrameDecodeError)) == 1
        assert len(errors.of(TextFrameError)) == 1
        assert len(errors.of(UnknownKindError)) == 1
        assert len(errors.of(PayloadDecodeError)) == 1
        await assert_still_serves(server)


async def test_unknown_kind_sync_request_gets_an_error_reply() -> None:
    server, errors = echo_server()
    async with server, ws_connect(server.url, additional_headers=OUR_PEER) as ws:
        await ws.send(encode_frame("nope.Unknown", b"", uuid="u-1", is_sync=True))
        reply = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
        assert reply.uuid == "u-1"
        assert reply.is_sync
        assert reply.kind == "goomerang.protocol.ErrorReply"
        await errors.wait_for(UnknownKindError)


async def test_registered_kind_without_handler_is_reported() -> None:
    server, errors = echo_server()
    server.register_message(ReplyV1)
    async with server, Client(server=server.addr) as client:
        await client.send(ReplyV1(message="nobody handles me"))
        await errors.wait_for(NoHandlerError)
        await assert_still_serves(server)


async def test_oversized_message_closes_with_1009_and_others_are_unaffected() -> None:
    server, errors = echo_server(max_message_size=1024)
    async with server:
        other = Client(server=server.addr)
        other.register_message(ReplyV1)
        async with other:
            big = Client(server=server.addr)
            big_errors = Collector()
            big.on_error(big_errors)
            await big.connect()
            await big.send(MessageV1(message="x" * 4096))
            await asyncio.wait_for(big.wait_closed(), WAIT)
            assert big.status is Status.CLOSED
            await big_errors.wait_for(MessageTooBigError)
            await errors.wait_for(MessageTooBigError)
            reply = await other.send_sync(MessageV1(message="fine"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "fine"


async def test_raising_handler_is_reported_and_sync_caller_fails_fast() -> None:
    server = Server()
    errors = Collector()
    server.on_error(errors)

    async def broken(sender: Sender, msg: Message[MessageV1]) -> None:
        if msg.payload.message == "boom":
            raise ValueError("handler exploded")
        await sender.send(ReplyV1(message="ok"))

    server.handle(MessageV1, broken)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            with pytest.raises(RemoteHandlerError) as info:
                await client.send_sync(MessageV1(message="boom"), timeout=WAIT)
            assert info.value.error_type == "ValueError"
            assert "handler exploded" in str(info.value)
            await client.send(MessageV1(message="boom"))  # async: reported only
            await errors.wait_for(HandlerError, 2)
            reply = await client.send_sync(MessageV1(message="fine"), timeout=WAIT, expect=ReplyV1)
            assert reply.payload.message == "ok"
    assert all(isinstance(e.__cause__, ValueError) for e in errors.of(HandlerError))


async def test_error_details_can_be_hidden() -> None:
    server = Server(error_details=False)

    async def broken(sender: Sender, msg: Message[MessageV1]) -> None:
        raise ValueError("secret internals")

    server.handle(MessageV1, broken)
    server.on_error(lambda e: None)
    async with server, Client(server=server.addr) as client:
        with pytest.raises(RemoteHandlerError) as info:
            await client.send_sync(MessageV1(), timeout=WAIT)
        assert "secret" not in str(info.value)
        assert info.value.error_type == "ValueError"


def reset_on_abort(sock: socket.socket) -> None:
    """Make the next abort() send a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_client_vanishing_mid_request_is_survived() -> None:
    server = Server()
    errors = Collector()
    server.on_error(errors)
    started = asyncio.Event()
    release = asyncio.Event()
    replied = asyncio.Event()

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.set()
        await release.wait()
        try:
            await sender.send(ReplyV1(message="too late"))
        finally:
            replied.set()

    server.handle(MessageV1, slow)
    async with server:
        ws = await ws_connect(server.url)
        await ws.send(raw_sync_request("then I vanish"))
        await asyncio.wait_for(started.wait(), WAIT)
        reset_on_abort(ws.transport.get_extra_info("socket"))
        ws.transport.abort()  # TCP reset, no close frame
        await errors.wait_for(Exception)  # the lost connection is reported
        release.set()
        await asyncio.wait_for(replied.wait(), WAIT)
        assert server.status is Status.RUNNING
        assert server.peers == []
        await assert_still_serves(server, expected="too late")


async def test_raising_hooks_are_reported_and_messages_still_flow() -> None:
    server, errors = echo_server()

    def bad_hook() -> None:
        raise RuntimeError("hook bug")

    server.on_worker_start(bad_hook)
    server.on_worker_end(bad_hook)
    async with server:
        await assert_still_serves(server)
        from goomerang_runtime import HookError

        hook_errors = await errors.wait_for(HookError, 2)
        assert {e.hook for e in hook_errors} == {"on_worker_start", "on_worker_end"}


async def test_every_message_accepted_before_shutdown_is_handled_before_it_returns() -> None:
    server = Server(max_concurrency=2)
    release = asyncio.Event()
    started = Counter()
    handled: list[int] = []

    async def slow(sender: Sender, msg: Message[MessageV1]) -> None:
        started.hit()
        await release.wait()
        handled.append(int(msg.payload.message))

    server.handle(MessageV1, slow)
    closing = asyncio.Event()
    server.on_status_change(lambda s: closing.set() if s is Status.CLOSING else None)
    await server.start()
    client = Client(server=server.addr)
    await client.connect(timeout=WAIT)
    for n in range(50):
        await client.send(MessageV1(message=str(n)))
    assert await client.flush(timeout=WAIT)  # all 50 are on the wire before shutdown starts
    await started.wait_for(2)  # both slots busy: 48 still wait in the server's read buffer
    shutdown = asyncio.create_task(server.shutdown())
    await asyncio.wait_for(closing.wait(), WAIT)
    release.set()
    await asyncio.wait_for(shutdown, WAIT)
    assert sorted(handled) == list(range(50))
    await asyncio.wait_for(client.wait_closed(), WAIT)


async def test_fragmented_and_text_messages_keep_their_place_in_the_order() -> None:
    server = Server(max_concurrency=1)
    seen: list[str] = []
    done = Counter()
    errors = Collector()
    server.on_error(errors)

    async def record(sender: Sender, msg: Message[MessageV1]) -> None:
        seen.append(msg.payload.message)
        done.hit()

    server.handle(MessageV1, record)

    def frame(text: str) -> bytes:
        return encode_message(Message(MessageV1(message=text)))[0]

    async with server, ws_connect(server.url) as ws:
        await ws.send(frame("1"))
        big = frame("2" * 50_000)
        await ws.send([big[:1000], big[1000:30_000], big[30_000:]])  # one message in three fragments
        await ws.send(frame("3"))
        await ws.send("text in the middle")
        await ws.send(frame("4"))
        await done.wait_for(4)
        assert seen == ["1", "2" * 50_000, "3", "4"]
        await errors.wait_for(TextFrameError)


async def test_a_burst_behind_a_blocked_handler_is_read_in_order_once_it_frees() -> None:
    server = Server(max_concurrency=1)
    gate = asyncio.Event()
    seen: list[int] = []
    done = Counter()

    async def gated(sender: Sender, msg: Message[MessageV1]) -> None:
        await gate.wait()
        seen.append(int(msg.payload.message))
        done.hit()

    server.handle(MessageV1, gated)
    async with server, Client(server=server.addr) as client:
        for n in range(2000):  # far more than the server buffers before it stops reading
            await client.send(MessageV1(message=str(n)))
        gate.set()
        await done.wait_for(2000)
    assert seen == list(range(2000))
