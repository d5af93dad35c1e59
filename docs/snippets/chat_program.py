"""The chat service, its client and its push handler: a complete program on the generated code."""

import asyncio

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest
from goomerang_runtime import Client, Message, Sender, Server


class ChatService(chat.ChatBase):  # abstract: mypy insists on join() and say()
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        if request.room != "go":
            return JoinRejected(reason="no such room")
        ctx.reply_headers["status"] = "200"  # headers of the reply
        return JoinAccepted(members=[request.user])  # returned = sent as the sync reply

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        said = Said(room=request.room, user=ctx.headers.get("user", ""), text=request.text)
        await chat.ChatPushSender(ctx.server).broadcast(said)  # to every client
        await chat.RoomsTopic(ctx.server).publish(f"rooms.{request.room}", said)  # to subscribers


class Ears(chat.ChatPushBase):
    def __init__(self) -> None:
        self.heard: asyncio.Queue[Said] = asyncio.Queue()

    async def hear(self, request: Said, ctx: chat.ClientContext) -> None:
        await self.heard.put(request)


async def main() -> None:
    server = Server()
    chat.add_chat(server, ChatService())  # registers a handler per rpc and every kind needed
    async with server:
        client, ears = Client(server=server.addr), Ears()
        chat.add_chat_push(client, ears)  # client-side handlers, before connecting
        async with client:
            stub = chat.ChatStub(client)
            match await stub.join(JoinRequest(room="go", user="ana"), timeout=2.0):
                case JoinAccepted(members=members):
                    print("joined with", list(members))
                case JoinRejected(reason=reason):
                    print("rejected:", reason)

            async def on_said(sender: Sender, msg: Message[Said]) -> None:
                print(f"{msg.metadata.topic}: {msg.payload.text}")

            await chat.RoomsTopic(client).subscribe("rooms.go", on_said)
            await stub.say(SayRequest(room="go", text="hi"), headers={"user": "ana"})
            print("heard:", (await asyncio.wait_for(ears.heard.get(), 2.0)).text)


asyncio.run(main())
