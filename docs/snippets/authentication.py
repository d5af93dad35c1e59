"""Authentication of each handshake, authorisation of each client command."""

import asyncio

from generated.goomerang.example.messages_pb2 import ReplyV1
from goomerang_runtime import (
    Action,
    AuthenticationError,
    Client,
    ConnectError,
    HandshakeRequest,
    PeerInfo,
    Server,
)

TOKENS = {"Bearer ana-token": "ana", "Bearer root-token": "admin"}


# --8<-- [start:hooks]
def authenticate(request: HandshakeRequest) -> str:
    user = TOKENS.get(request.headers.get("authorization", ""))
    if user is None:
        raise AuthenticationError(401, "missing or unknown token")
    return user


def authorize(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
    # action is "subscribe", "publish" or "broadcast"; topic is "" for broadcasts
    return action != "broadcast" or peer.principal == "admin"


server = Server(authenticate=authenticate, authorize=authorize)
# --8<-- [end:hooks]


async def main() -> None:
    server.register_message(ReplyV1)
    async with server:
        # --8<-- [start:client]
        client = Client(server=server.addr, headers={"Authorization": "Bearer ana-token"})
        # --8<-- [end:client]
        async with client:
            print("connected; the server's handlers see sender.peer.principal == 'ana'")
        try:
            await Client(server=server.addr).connect()
        except ConnectError as error:
            print("refused:", error.status)


asyncio.run(main())
