"""Generated stubs against a generated-base server over real loopback sockets."""

from __future__ import annotations

import asyncio

import pytest

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest
from generated.edge import halts_goomerang as halts
from generated.edge.halts_pb2 import Halt
from goomerang_runtime import Client, Message, RemoteHandlerError, Sender, Server, TopicError, UsageError

from ..helpers import WAIT
from .chat_impl import ChatService, Listener


def chat_server() -> Server:
    server = Server()
    chat.add_chat(server, ChatService())
    return server


async def test_sync_rpc_both_union_arms() -> None:
    async with chat_server() as server, Client(server=server.addr) as client:
        stub = chat.ChatStub(client)
        accepted = await stub.join(JoinRequest(room="go", user="ana"), timeout=WAIT)
        assert isinstance(accepted, JoinAccepted)
        assert list(accepted.members) == ["ana"]
        rejected = await stub.join(JoinRequest(room="closed", user="bob"), timeout=WAIT)
        assert isinstance(rejected, JoinRejected)
        assert rejected.reason == "room closed"
        match await stub.join(JoinRequest(room="go", user="eve"), timeout=WAIT):
            case JoinAccepted(members=members):
                assert list(members) == ["ana", "eve"]
            case other:
                pytest.fail(f"unexpected {other}")


async def test_reply_headers_set_by_the_base_method() -> None:
    async with chat_server() as server, Client(server=server.addr) as client:
        reply = await client.send_sync(JoinRequest(room="go", user="ana"), timeout=WAIT, expect=JoinAccepted)
        assert reply.headers == {"room": "go"}


async def test_reply_headers_and_metadata_through_the_stub() -> None:
    async with chat_server() as server, Client(server=server.addr) as client:
        whole = await chat.ChatStub(client).join_with_reply(JoinRequest(room="go", user="ana"), timeout=WAIT)
        assert whole.headers == {"room": "go"}
        assert whole.payload == JoinAccepted(members=["ana"])
        assert whole.kind == "chat.v1.JoinAccepted"
        assert whole.metadata.is_sync
        rejected = await chat.ChatStub(client).join_with_reply(JoinRequest(room="closed"), timeout=WAIT)
        assert isinstance(rejected.payload, JoinRejected)


async def test_a_push_through_ctx_sender_is_not_the_reply() -> None:
    """A sync method that pushes to its caller before returning: the push is a push, the return is the reply."""

    class Welcoming(chat.ChatBase):
        async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
            assert ctx.message.payload is request
            await ctx.sender.send(Said(text=f"welcome {request.user}"))
            ctx.reply_headers["pushed"] = "1"
            return JoinAccepted(members=[request.user])

        async def say(self, request: SayRequest, ctx: chat.ChatSayContext) -> None:
            await ctx.sender.send(Said(text="heard you"))

    server = Server()
    chat.add_chat(server, Welcoming())
    async with server:
        client, ears = Client(server=server.addr), Listener()
        chat.add_chat_push(client, ears)
        async with client:
            stub = chat.ChatStub(client)
            whole = await stub.join_with_reply(JoinRequest(user="ana"), timeout=WAIT)
            assert whole.payload == JoinAccepted(members=["ana"])
            assert whole.headers == {"pushed": "1"}
            assert (await asyncio.wait_for(ears.heard.get(), WAIT)).text == "welcome ana"
            # Fire and forget: the sender is the connection's own.
            await stub.say(SayRequest())
            assert (await asyncio.wait_for(ears.heard.get(), WAIT)).text == "heard you"
            assert ears.heard.empty()


async def test_topic_only_file_registers_its_kinds() -> None:
    """edge/halts.proto has topics and no service: register_topic_kinds lets the server pass them through."""
    server = Server()
    halts.register_topic_kinds(server)
    got: asyncio.Queue[Message[Halt]] = asyncio.Queue()

    async def on_halt(sender: Sender, msg: Message[Halt]) -> None:
        await got.put(msg)

    async with server, Client(server=server.addr) as listener, Client(server=server.addr) as venue:
        await halts.VenueHaltsTopic(listener).subscribe("venue.halts.*", on_halt)
        await halts.VenueHaltsTopic(venue).publish("venue.halts.xnas", Halt(venue="xnas", reason="volatility"))
        delivered = await asyncio.wait_for(got.get(), WAIT)
        assert delivered.payload == Halt(venue="xnas", reason="volatility")
        assert delivered.metadata.topic == "venue.halts.xnas"


async def test_raising_or_lying_method_fails_the_caller_fast() -> None:
    server = chat_server()
    server.on_error(lambda e: None)
    async with server, Client(server=server.addr) as client:
        stub = chat.ChatStub(client)
        with pytest.raises(RemoteHandlerError, match="the room exploded"):
            await stub.join(JoinRequest(room="boom"), timeout=WAIT)
        with pytest.raises(RemoteHandlerError) as info:
            await stub.join(JoinRequest(room="liar"), timeout=WAIT)
        assert info.value.error_type == "TypeError"


async def test_fire_and_forget_and_server_push_to_every_client() -> None:
    async with chat_server() as server:
        ana, bob = Client(server=server.addr), Client(server=server.addr)
        ana_ears, bob_ears = Listener(), Listener()
        chat.add_chat_push(ana, ana_ears)
        chat.add_chat_push(bob, bob_ears)
        async with ana, bob:
            size = await chat.ChatStub(ana).say(SayRequest(room="go", text="hello"), headers={"user": "ana"})
            assert size == len(SayRequest(room="go", text="hello").SerializeToString())
            for ears in (ana_ears, bob_ears):
                heard = await asyncio.wait_for(ears.heard.get(), WAIT)
                assert heard == Said(room="go", user="ana", text="hello")


async def test_push_to_one_client_by_peer() -> None:
    server = Server()
    pushed = asyncio.Event()

    class Greeter(chat.ChatBase):
        async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
            await chat.ChatPushSender(ctx.server).send(ctx.peer, Said(text=f"welcome {request.user}"))
            pushed.set()
            return JoinAccepted(members=[request.user])

        async def say(self, request: SayRequest, ctx: chat.Context) -> None:
            await chat.ChatPushSender(ctx.server).send(ctx.sender, Said(text="only you"))

    chat.add_chat(server, Greeter())
    async with server:
        ana, bob = Client(server=server.addr), Client(server=server.addr)
        ana_ears, bob_ears = Listener(), Listener()
        chat.add_chat_push(ana, ana_ears)
        chat.add_chat_push(bob, bob_ears)
        async with ana, bob:
            await chat.ChatStub(ana).join(JoinRequest(user="ana"), timeout=WAIT)
            assert (await asyncio.wait_for(ana_ears.heard.get(), WAIT)).text == "welcome ana"
            await chat.ChatStub(bob).say(SayRequest())
            assert (await asyncio.wait_for(bob_ears.heard.get(), WAIT)).text == "only you"
            assert ana_ears.heard.empty()


async def test_typed_topics_publish_and_subscribe() -> None:
    async with chat_server() as server:
        speaker, listener = Client(server=server.addr), Client(server=server.addr)
        ears = Listener()
        chat.add_chat_push(listener, ears)  # broadcasts go here, publications to the topic handler
        got: asyncio.Queue[Message[Said]] = asyncio.Queue()

        async def on_said(sender: Sender, msg: Message[Said]) -> None:
            await got.put(msg)

        async with speaker, listener:
            await chat.RoomsTopic(listener).subscribe("rooms.go", on_said)
            await chat.RoomsTopic(speaker).publish("rooms.go", Said(text="client publish"), headers={"h": "1"})
            first = await asyncio.wait_for(got.get(), WAIT)
            assert first.payload.text == "client publish"
            assert first.headers == {"h": "1"}
            assert first.metadata.topic == "rooms.go"
            # The server's say() broadcasts (to the kind handler) and publishes (to the topic handler).
            await chat.ChatStub(speaker).say(SayRequest(room="go", text="both ways"), headers={"user": "s"})
            published = await asyncio.wait_for(got.get(), WAIT)
            broadcast = await asyncio.wait_for(ears.heard.get(), WAIT)
            assert published.payload.text == broadcast.text == "both ways"
            # Another room is not delivered.
            await chat.RoomsTopic(server).publish("rooms.other", Said(text="elsewhere"))
            await chat.RoomsTopic(server).publish("rooms.go", Said(text="server publish"))
            assert (await asyncio.wait_for(got.get(), WAIT)).payload.text == "server publish"
            await chat.RoomsTopic(listener).unsubscribe("rooms.go")


async def test_topic_family_is_enforced() -> None:
    async with chat_server() as server, Client(server=server.addr) as client:
        rooms = chat.RoomsTopic(client)
        with pytest.raises(TopicError, match="family"):
            await rooms.publish("lobby", Said())
        with pytest.raises(TopicError, match="family"):
            await rooms.publish("rooms.*", Said())

        async def on_said(sender: Sender, msg: Message[Said]) -> None:
            pass

        with pytest.raises(TopicError, match="family"):
            await rooms.subscribe("rooms.>", on_said)
        await rooms.subscribe("rooms.*", on_said)  # the whole family is fine
        with pytest.raises(UsageError, match="server"):  # a type error too; untyped callers get this
            await chat.RoomsTopic(server).subscribe("rooms.go", on_said)  # type: ignore[misc]
