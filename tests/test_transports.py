"""The transport option: either WebSocket library under the same wire, and the two talking to each other.

The whole suite runs on each transport (``GOOMERANG_TRANSPORT=picows pytest``); this file checks what
that cannot: choosing the transport, what one refuses, and peers on different transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import struct

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, SuccessReplyV1
from goomerang_runtime import (
    Client,
    ConfigError,
    HandlerError,
    Message,
    MessageTooBigError,
    RemoteHandlerError,
    Sender,
    Server,
)
from goomerang_runtime.config import TRANSPORT_ENV, ClientConfig, ServerConfig

from .helpers import OUR_PEER, WAIT, Certs, Collector
from .rawws import OP_BINARY, RawClient

TRANSPORTS = ["websockets", "picows"]


def test_the_transport_defaults_to_websockets_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    assert ServerConfig().transport == "websockets"
    assert ClientConfig(server="127.0.0.1:1").transport == "websockets"
    monkeypatch.setenv(TRANSPORT_ENV, "picows")
    assert ServerConfig().transport == "picows"
    assert ClientConfig(server="127.0.0.1:1", transport="websockets").transport == "websockets"


def test_compression_is_refused_on_picows_naming_the_option() -> None:
    with pytest.raises(ConfigError) as info:
        Server(transport="picows", compression=True)
    assert set(info.value.problems) == {"compression"}
    assert "picows" in info.value.problems["compression"]
    with pytest.raises(ConfigError) as client_info:
        Client(server="127.0.0.1:1", transport="picows", compression=True)
    assert set(client_info.value.problems) == {"compression"}
    assert Server(transport="websockets", compression=True).config.compression is True


def test_an_unknown_transport_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        Server(transport="trio")  # type: ignore[typeddict-item]
    assert set(info.value.problems) == {"transport"}
    monkeypatch.setenv(TRANSPORT_ENV, "nope")
    with pytest.raises(ConfigError) as env_info:
        Client(server="127.0.0.1:1")
    assert set(env_info.value.problems) == {"transport"}


def echo_server(**options: object) -> tuple[Server, Collector]:
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)

    async def reply(sender: Sender, msg: Message[MessageV1]) -> None:
        if msg.payload.message == "fail":
            raise ValueError("asked to fail")
        await sender.send(SuccessReplyV1(message=msg.payload.message))

    server.handle(MessageV1, reply)
    server.handle(PingPong, lambda sender, msg: None)
    return server, errors


@pytest.mark.parametrize("server_transport", TRANSPORTS)
@pytest.mark.parametrize("client_transport", TRANSPORTS)
async def test_peers_on_different_transports_speak_one_wire(
    server_transport: str, client_transport: str, certs: Certs
) -> None:
    server, errors = echo_server(transport=server_transport, tls=certs.server_context())
    async with server:
        assert server.url.startswith("wss://")
        client = Client(server=server.addr, transport=client_transport, tls=certs.client_context())  # type: ignore[arg-type]

        async def answer(sender: Sender, msg: Message[PingPong]) -> PingPong:
            return PingPong(sequence=msg.payload.sequence + 1)

        client.handle(PingPong, answer)
        async with client:
            reply = await client.send_sync(MessageV1(message="hello"), timeout=WAIT, expect=SuccessReplyV1)
            assert reply.payload.message == "hello"
            assert client.extensions == {
                "close-codes",
                "error-reply",
                "queue-groups",
                "recovery",
                "server-requests",
                "topic-header",
                "wildcards",
            }
            with pytest.raises(RemoteHandlerError):
                await client.send_sync(MessageV1(message="fail"), timeout=WAIT)
            [peer] = server.peers
            assert peer.extensions == client.extensions
            asked = await server.send_sync(peer, PingPong(sequence=1), expect=PingPong, timeout=WAIT)
            assert asked.payload.sequence == 2  # the server asks the client, on either transport
    [failed] = errors.items  # the handler that raised, and nothing else
    assert isinstance(failed, HandlerError)


@pytest.mark.parametrize("server_transport", TRANSPORTS)
@pytest.mark.parametrize("client_transport", TRANSPORTS)
async def test_a_message_too_big_closes_1009_across_transports(server_transport: str, client_transport: str) -> None:
    server, errors = echo_server(transport=server_transport, max_message_size=1024)
    async with server:
        client = Client(server=server.addr, transport=client_transport)  # type: ignore[arg-type]
        client_errors = Collector()
        client.on_error(client_errors)
        await client.connect()
        await client.send(PingPong(body=b"x" * 2048))
        await client.wait_closed()
        [too_big] = await errors.wait_for(MessageTooBigError)
        assert "1009" in str(too_big)
        [reported] = await client_errors.wait_for(MessageTooBigError)
        assert "1009" in str(reported)


@pytest.mark.parametrize("our_peer", [True, False], ids=["our client", "Go client"])
async def test_a_frame_past_the_limit_is_cut_off_before_it_is_all_read(our_peer: bool) -> None:
    """A frame announcing 64 MiB is refused long before 64 MiB arrive: 1009, or 1000 for a Go peer."""
    server, errors = echo_server(max_message_size=64 * 1024)
    async with server:
        raw = await RawClient.connect(server.addr, headers=OUR_PEER if our_peer else None)
        try:
            size = 64 * 1024 * 1024
            raw.writer.write(bytes([0x80 | OP_BINARY, 0x80 | 127]) + struct.pack("!Q", size) + b"\0\0\0\0")
            closed = asyncio.ensure_future(raw.recv_until_close())
            chunk = b"\0" * (64 * 1024)
            written = 0
            with contextlib.suppress(ConnectionError):
                while not closed.done() and written < size:
                    raw.writer.write(chunk)
                    written += len(chunk)
                    await raw.writer.drain()
                    await asyncio.sleep(0)  # the server runs in this loop: let it read
            close = await closed
            assert close.close_code == (1009 if our_peer else 1000)
            assert written < 8 * 1024 * 1024, written  # cut off near the limit, not after 64 MiB
            await errors.wait_for(MessageTooBigError)
        finally:
            raw.abort()


def test_every_test_bound_to_one_transport_is_listed_in_the_docs() -> None:
    """The docs' table of what does not run on one transport names every test marked ``only_on``."""
    root = pathlib.Path(__file__).parent
    bound: list[str] = []
    for path in sorted(root.rglob("test_*.py")):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            if line.lstrip().startswith("@only_on("):
                test = next(other for other in lines[n + 1 :] if other.lstrip().startswith(("def ", "async def ")))
                name = test.split("def ", 1)[1].split("(", 1)[0]
                bound.append(f"{path.relative_to(root).as_posix()}::{name}")
    assert bound, "only_on is used by at least the compression test"
    docs = (root.parent / "docs" / "runtime.md").read_text()
    assert [test for test in bound if f"`{test}`" not in docs] == []
