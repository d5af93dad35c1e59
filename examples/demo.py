"""The chat demo: a server and two clients in one process, on the generated chat code.

Run it with ``scripts/demo`` from a fresh clone. The code it runs on was
generated from ``protos/examples/chat/v1/chat.proto`` into ``generated/``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest
from goomerang_runtime import Client, Message, Sender, Server, Status


def log(who: str, what: str) -> None:
    print(f"[{who:>6}] {what}", flush=True)


class ChatService(chat.ChatBase):
    """The server side: rooms with members."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {"go": []}

    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        log("server", f"{request.user} asks to join {request.room!r} (headers {ctx.headers})")
        if request.room not in self.rooms:
            return JoinRejected(reason=f"no room {request.room!r}")
        self.rooms[request.room].append(request.user)
        ctx.reply_headers["room-size"] = str(len(self.rooms[request.room]))
        return JoinAccepted(members=self.rooms[request.room])

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        said = Said(room=request.room, user=ctx.headers.get("user", "?"), text=request.text)
        log("server", f"{said.user} says {said.text!r} in {said.room!r}: broadcast and publish")
        await chat.ChatPushSender(ctx.server).broadcast(said)
        await chat.RoomsTopic(ctx.server).publish(f"rooms.{said.room}", said)


class Ears(chat.ChatPushBase):
    """The client side: what the server pushes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.heard = asyncio.Event()

    async def hear(self, request: Said, ctx: chat.ClientContext) -> None:
        log(self.name, f"heard {request.user}: {request.text!r} (broadcast)")
        self.heard.set()


async def main() -> None:
    server = Server(listen="127.0.0.1:0")
    chat.add_chat(server, ChatService())
    server.on_status_change(lambda s: log("server", f"status {s.name}"))
    server.on_error(lambda e: log("server", f"error: {e}"))

    async with server:
        log("server", f"listening on {server.url}")
        ana, bob = Client(server=server.addr), Client(server=server.addr)
        ana_ears, bob_ears = Ears("ana"), Ears("bob")
        chat.add_chat_push(ana, ana_ears)
        chat.add_chat_push(bob, bob_ears)
        for name, client in (("ana", ana), ("bob", bob)):
            client.on_status_change(lambda s, name=name: log(name, f"status {s.name}"))

        async with ana, bob:
            stub_ana, stub_bob = chat.ChatStub(ana), chat.ChatStub(bob)

            # A sync request whose reply is a union: JoinAccepted | JoinRejected.
            for stub, who, room in ((stub_ana, "ana", "go"), (stub_bob, "bob", "rust")):
                match await stub.join(JoinRequest(room=room, user=who), headers={"client": who}, timeout=5):
                    case JoinAccepted(members=members):
                        log(who, f"joined {room!r}, members {list(members)}")
                    case JoinRejected(reason=reason):
                        log(who, f"rejected: {reason}")

            # The same request through the plain runtime API, to read the reply headers.
            reply = await ana.send_sync(
                Message(JoinRequest(room="go", user="ana2")).set_header("client", "ana"),
                timeout=5,
                expect=(JoinAccepted, JoinRejected),
            )
            log("ana", f"sync reply {type(reply.payload).__name__} with headers {reply.headers}")

            # A typed topic: bob follows room "go".
            published = asyncio.Event()

            async def on_room(sender: Sender, msg: Message[Said]) -> None:
                log("bob", f"topic {msg.metadata.topic}: {msg.payload.user} said {msg.payload.text!r}")
                published.set()

            await chat.RoomsTopic(bob).subscribe("rooms.go", on_room)

            # Fire and forget; the server broadcasts and publishes what is said.
            size = await stub_ana.say(SayRequest(room="go", text="hello!"), headers={"user": "ana"})
            log("ana", f"said hello ({size} payload bytes, fire and forget)")
            await asyncio.wait_for(asyncio.gather(ana_ears.heard.wait(), bob_ears.heard.wait(), published.wait()), 5)
            log("demo", f"{len(server.peers)} clients connected; closing gracefully")
        log("demo", f"clients {ana.status.name}/{bob.status.name}; shutting the server down")
    assert server.status is Status.CLOSED
    log("demo", "done")


if __name__ == "__main__":
    asyncio.run(main())
