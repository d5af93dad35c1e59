"""A goomerang server in its own process, for tests that kill and restart it.

``python -m tests.serve_subprocess PORT`` serves on 127.0.0.1:PORT (0: any),
echoes MessageV1 as ReplyV1, passes MessageV1 publications through, prints
``READY host:port`` once listening and runs until killed or stdin closes.
"""

from __future__ import annotations

import asyncio
import sys

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Message, Sender, Server


async def main(port: int) -> None:
    server = Server(listen=f"127.0.0.1:{port}", close_wait=1.0)

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, echo)
    async with server:
        print(f"READY {server.addr}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
