"""A metered server and client, with GET /metrics and GET /healthz on the server's port.

Run it with ``.venv/bin/python examples/metrics.py`` (needs the ``metrics``
extra, which the dev setup installs). It sends some traffic, then scrapes
the server's own port over plain HTTP, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Message, ProtoMessage, Sender, exception_guard, logging_middleware
from goomerang_runtime.metrics import ClientMetrics, ServerMetrics, metered_client, metered_server


def fetch(url: str) -> tuple[int, str]:
    """A blocking HTTP GET (run in a thread): status and body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def main() -> None:
    # The logging middleware's records carry kind, size, duration, outcome... as attributes.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("log: %(kind)s size=%(size)d outcome=%(outcome)s"))
    message_log = logging.getLogger("example.messages")
    message_log.addHandler(handler)
    message_log.setLevel(logging.INFO)

    # Metric sets register in the global Prometheus registry unless given another one.
    server = metered_server(ServerMetrics().register(), listen="127.0.0.1:0", expose=True, max_concurrency=4)

    def on_exception(error: Exception, msg: Message[ProtoMessage]) -> None:
        print(f"guard caught {type(error).__name__} from a {msg.kind} handler")

    server.middleware(exception_guard(on_exception))  # after the metrics middleware, before the rest
    server.middleware(logging_middleware(message_log))

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        if msg.payload.message == "boom":
            raise RuntimeError("boom")
        await sender.send(ReplyV1(message="re: " + msg.payload.message))

    server.handle(MessageV1, on_message)

    async with server:
        client = metered_client(ClientMetrics().register(), server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            for n in range(3):
                await client.send_sync(MessageV1(message=f"request {n}"), timeout=5)
            await client.send(MessageV1(message="boom"))
            await client.send_sync(MessageV1(message="still serving"), timeout=5)

            base = f"http://{server.addr}"
            status, health = await asyncio.to_thread(fetch, base + "/healthz")
            print(f"GET /healthz -> {status} {health.strip()}")
            status, text = await asyncio.to_thread(fetch, base + "/metrics")
            print(f"GET /metrics -> {status}")
            for line in text.splitlines():
                if line.startswith(
                    ("goomerang_server_message_processing_duration_seconds_count", "goomerang_server_status")
                ):
                    print("  " + line)
                if line.startswith(
                    ("goomerang_client_message_sent_sync_duration_seconds_count", "goomerang_client_status")
                ):
                    print("  " + line)
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
