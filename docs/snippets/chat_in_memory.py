"""Testing a generated service in memory, without a network."""

import asyncio

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRequest
from goomerang_runtime import Server
from goomerang_runtime.testing import InMemory


class ChatService(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        return JoinAccepted(members=[request.user])

    async def say(self, request: object, ctx: chat.Context) -> None:
        pass


async def test_join() -> None:
    server = Server()
    chat.add_chat(server, ChatService())
    async with InMemory(server) as net, net.client() as client:
        reply = await chat.ChatStub(client).join(JoinRequest(room="go", user="ana"))
        assert reply == JoinAccepted(members=["ana"])


asyncio.run(test_join())  # with pytest-asyncio, just collect test_join
