"""The whole typed reply of a sync rpc: payload, reply headers and metadata."""

import asyncio

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, SayRequest
from goomerang_runtime import Client, Server


class ChatService(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        ctx.reply_headers["status"] = "200"
        return JoinAccepted(members=[request.user])

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


async def main() -> None:
    server = Server()
    chat.add_chat(server, ChatService())
    async with server, Client(server=server.addr) as client:
        stub = chat.ChatStub(client)
        # --8<-- [start:whole]
        whole = await stub.join_with_reply(JoinRequest(room="go", user="ana"), timeout=2.0)
        # whole: Message[JoinAccepted | JoinRejected]
        print(whole.headers.get("status"), whole.metadata.creation)
        match whole.payload:
            case JoinAccepted(members=members):
                print("members:", list(members))
            case JoinRejected(reason=reason):
                print("rejected:", reason)
        # --8<-- [end:whole]


asyncio.run(main())
