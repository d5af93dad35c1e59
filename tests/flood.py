"""Flooders for the hostile tests, in a process of their own as real clients would be.

Usage: python -m tests.flood URL CONNECTIONS COUNT
Connects CONNECTIONS raw clients, prints "ready" once all are connected, then, after a line on stdin,
sends COUNT sync requests on each without ever reading a reply, and exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import Message
from goomerang_runtime._codec import encode_message

from .helpers import OUR_PEER


async def flood(ws: ClientConnection, count: int) -> None:
    ws.transport.pause_reading()
    with contextlib.suppress(Exception):
        for n in range(count):
            data, _, _ = encode_message(
                Message(MessageV1(message="flood")), uuid=f"00000000-0000-4000-8000-{n:012x}", is_sync=True
            )
            await ws.send(data)


async def main(url: str, connections: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    flooders = [await ws_connect(url, max_size=None, additional_headers=OUR_PEER) for _ in range(connections)]
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    floods = [asyncio.create_task(flood(ws, count)) for ws in flooders]
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes our stdin
    for task in floods:
        task.cancel()
    for ws in flooders:
        ws.transport.abort()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
