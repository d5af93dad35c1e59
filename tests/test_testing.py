"""The in-memory test transport runs the real server and client code without sockets."""

from __future__ import annotations

import asyncio

import pytest

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, ConnectionLostError, Message, Sender, Server, Status, TextFrameError
from goomerang_runtime.testing import InMemory, memory_pipe

from .codegen.chat_impl import ChatService, Listener
from .helpers import WAIT, Collector


async def test_generated_stub_against_a_service_in_memory() -> None:
    # The example of the README's "Testing your service" section.
    server = Server()
    chat.add_chat(server, ChatService())
    async with InMemory(server) as net, net.client() as client:
        stub = chat.ChatStub(client)
        reply = await stub.join(JoinRequest(room="go", user="ana"))
        assert isinstance(reply, JoinAccepted)
        assert list(reply.members) == ["ana"]
        assert isinstance(await stub.join(JoinRequest(room="closed")), JoinRejected)
    assert server.status is Status.CLOSED
    assert client.status is Status.CLOSED


async def test_pushes_and_topics_in_memory() -> None:
    server = Server()
    chat.add_chat(server, ChatService())
    async with InMemory(server) as net:
        listener = Client(server="in-memory:1", heartbeat_interval=None)
        ears = Listener()
        chat.add_chat_push(listener, ears)
        await net.connect(listener)
        got: asyncio.Queue[Message[Said]] = asyncio.Queue()

        async def on_said(sender: Sender, msg: Message[Said]) -> None:
            await got.put(msg)

        await chat.RoomsTopic(listener).subscribe("rooms.*", on_said)
        async with net.client() as speaker:
            await chat.ChatStub(speaker).say(SayRequest(room="go", text="hi"), headers={"user": "ana"})
            assert (await asyncio.wait_for(ears.heard.get(), WAIT)).text == "hi"
            publication = await asyncio.wait_for(got.get(), WAIT)
            assert publication.metadata.topic == "rooms.go"
        await listener.close()


async def test_server_shutdown_closes_in_memory_clients() -> None:
    server = Server()
    server.handle(MessageV1, lambda sender, msg: sender.send(ReplyV1()))  # type: ignore[arg-type, return-value]
    async with InMemory(server) as net:
        client = await net.connect(Client(server="in-memory:1", heartbeat_interval=None))
        reply = await client.send_sync(MessageV1(), timeout=WAIT, expect=ReplyV1)
        assert reply.payload == ReplyV1()
        await server.shutdown()
        await asyncio.wait_for(client.wait_closed(), WAIT)
    assert client.status is Status.CLOSED


async def test_memory_pipe_reports_bad_input_like_a_socket() -> None:
    server = Server()
    errors = Collector()
    server.on_error(errors)
    server.handle(MessageV1, lambda sender, msg: sender.send(ReplyV1()))  # type: ignore[arg-type, return-value]
    async with InMemory(server):
        client_end, server_end = memory_pipe()
        task = asyncio.create_task(server.serve_link(server_end))
        await client_end.send("text")
        await errors.wait_for(TextFrameError)
        client_end.abort()
        await asyncio.wait_for(task, WAIT)
        await errors.wait_for(ConnectionLostError)
        with pytest.raises(Exception, match="closed"):
            await client_end.send(b"x")
