"""Fan-out frames of one loop turn leave a connection with one write, each still its own message, in order."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys

import pytest
from websockets.frames import Frame, Opcode

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Handler, Message, Sender, Server
from goomerang_runtime._coalesce import TurnFlush, server_frame_header, turn_flush

from .helpers import WAIT
from .inbox import barrier, listening_client


class _Kept:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name

    def flush_kept(self) -> None:
        self.log.append(self.name)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_server_frame_is_laid_out_as_websockets_does(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])
    assert server_frame_header(size) + data == frame


async def test_each_link_is_flushed_once_on_the_next_turn() -> None:
    flush = TurnFlush(asyncio.get_running_loop())
    log: list[str] = []
    flush.add(_Kept(log, "a"))
    flush.add(_Kept(log, "b"))
    assert log == []  # not in this turn
    await asyncio.sleep(0)
    assert log == ["a", "b"]
    flush.add(_Kept(log, "c"))
    await asyncio.sleep(0)
    assert log == ["a", "b", "c"]
    assert turn_flush(asyncio.get_running_loop()) is turn_flush(asyncio.get_running_loop())


def _burst_server(burst: Handler[PingPong]) -> Server:
    """A server running `burst` on PingPong, answering MessageV1 sync requests (a barrier)."""
    server = Server(close_wait=1.0)

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message="barrier"))

    server.handle(MessageV1, echo)
    server.handle(PingPong, burst)
    return server


async def test_frames_of_one_turn_keep_their_order_with_replies_and_broadcasts() -> None:
    """A handler publishes and broadcasts in one turn, then sends: each client sees exactly that order."""

    async def burst(sender: Sender, msg: Message[PingPong]) -> None:
        for n in range(msg.payload.sequence):
            await server.publish("t", ReplyV1(message=f"p{n}"))
            if n % 10 == 0:
                await server.broadcast(ReplyV1(message=f"b{n}"))
        await sender.send(ReplyV1(message="sent"))  # written at once: after the frames kept before it
        await server.publish("t", ReplyV1(message="last"))

    server = _burst_server(burst)
    async with server:
        clients = [listening_client(server.addr) for _ in range(3)]
        for client, _ in clients:
            await client.connect()
            await client.subscribe("t")
            await barrier(client)  # the subscription is in effect
        await clients[0][0].send(PingPong(sequence=300))
        expected = [text for n in range(300) for text in (f"p{n}", f"b{n}")[: 2 if n % 10 == 0 else 1]]
        first = await clients[0][1].wait_for(len(expected) + 2)
        assert [m.payload.message for m in first] == [*expected, "sent", "last"]
        for _, inbox in clients[1:]:
            got = await inbox.wait_for(len(expected) + 1)
            assert [m.payload.message for m in got] == [*expected, "last"]
        for client, _ in clients:
            await client.close()


async def test_a_burst_larger_than_what_a_link_keeps_arrives_whole() -> None:
    """Past its keep limit a link writes at once (flow control then applies): nothing lost, nothing reordered."""
    body = "x" * 2000

    async def burst(sender: Sender, msg: Message[PingPong]) -> None:
        for n in range(200):  # 400 KB in one turn, far past the 32 KiB a link keeps
            await server.publish("t", ReplyV1(message=f"{n}:{body}"))
        await sender.send(ReplyV1(message="done"))

    server = _burst_server(burst)
    async with server:
        client, inbox = listening_client(server.addr)
        async with client:
            await client.subscribe("t")
            await barrier(client)
            await client.send(PingPong(sequence=0))
            got = await inbox.wait_for(201, timeout=WAIT)
            assert [m.payload.message.partition(":")[0] for m in got] == [*map(str, range(200)), "done"]


def _data_segments_in(client: Client) -> int:
    """Segments carrying data this client's socket received so far (Linux ``tcp_info.tcpi_data_segs_in``)."""
    link: object = client._link  # pyright: ignore[reportPrivateUsage]
    transport = getattr(link, "_tcp", None) or link._ws.transport  # type: ignore[attr-defined]  # picows, websockets
    sock = transport.get_extra_info("socket")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    return int(struct.unpack_from("I", info, 152)[0])


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's tcp_info")
async def test_replies_to_a_batch_of_requests_leave_with_one_write() -> None:
    """64 requests read in one go get their 64 replies in one write (not a system call each), in order."""

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server = Server(close_wait=1.0)
    server.handle(MessageV1, echo)
    async with server:
        client = Client(server=server.addr, heartbeat_interval=None)
        client.registry.register(ReplyV1)
        async with client:
            for n in range(40):  # the handler is seen not to yield: it runs inline, in the read loop
                await client.send_sync(MessageV1(message=str(n)), timeout=WAIT)
            before = _data_segments_in(client)
            # One turn: the 64 requests are written before the server reads any of them.
            calls = [client.send_sync(MessageV1(message=str(n)), timeout=WAIT) for n in range(64)]
            replies = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
            segments = _data_segments_in(client) - before
        assert [reply.payload.message for reply in replies] == [str(n) for n in range(64)]  # type: ignore[attr-defined]
        assert segments <= 8, f"64 replies came in {segments} segments"
        print(f"\n64 pipelined replies arrived in {segments} TCP segment(s)")
