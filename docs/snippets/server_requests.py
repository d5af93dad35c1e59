"""The server asks one client and waits for its reply (runtime API, no code generation)."""

import asyncio

from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1, SuccessReplyV1
from goomerang_runtime import Client, Message, PeerInfo, RemoteHandlerError, Sender, Server, SyncTimeoutError


# --8<-- [start:client]
async def answer(sender: Sender, msg: Message[MessageV1]) -> SuccessReplyV1 | BadReplyV1:
    # On a client, what a handler returns is the reply to the server's request.
    if not msg.payload.message:
        return BadReplyV1(reason="empty")
    return SuccessReplyV1(message=msg.payload.message.upper())


async def refuse(sender: Sender, msg: Message[ReplyV1]) -> ReplyV1:
    raise PermissionError("not today")  # the server's call raises RemoteHandlerError at once


# --8<-- [end:client]


async def main() -> None:
    server = Server()
    connected: asyncio.Queue[PeerInfo] = asyncio.Queue()
    server.on_connect(connected.put_nowait)
    async with server:
        client = Client(server=server.addr)
        client.handle(MessageV1, answer)
        client.handle(ReplyV1, refuse)
        async with client:
            peer = await connected.get()
            # --8<-- [start:server]
            # `peer`: a PeerInfo, its id, or a server handler's sender or context.
            ask = MessageV1(message="hi")
            reply = await server.send_sync(peer, ask, expect=(SuccessReplyV1, BadReplyV1), timeout=2.0)
            match reply.payload:  # SuccessReplyV1 | BadReplyV1
                case SuccessReplyV1(message=text):
                    print("the client says", text)
                case BadReplyV1(reason=reason):
                    print("the client refused:", reason)
            try:
                await server.send_sync(peer.id, ReplyV1(), expect=ReplyV1, timeout=2.0)
            except RemoteHandlerError as exc:
                print(exc)  # remote handler for 'goomerang.example.ReplyV1' failed with PermissionError: not today
            except SyncTimeoutError:
                print("no answer within 2 s")
            # --8<-- [end:server]
            assert reply.payload == SuccessReplyV1(message="HI")
            assert server.pending_sync == 0


asyncio.run(main())
