"""A metered server and client; the server answers GET /metrics and GET /healthz beside /ws."""

import asyncio

from prometheus_client import CollectorRegistry

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Message, Sender, exception_guard
from goomerang_runtime.metrics import ClientMetrics, ServerMetrics, metered_client, metered_server


async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
    await sender.send(ReplyV1(message=msg.payload.message))


async def main() -> None:
    registry = CollectorRegistry()  # leave it out to use the global registry
    metrics = ServerMetrics(processing_buckets=(0.001, 0.01, 0.1, 1.0)).register(registry)
    server = metered_server(metrics, listen="127.0.0.1:0", expose=True)  # e.g. listen="0.0.0.0:8080"
    server.middleware(exception_guard(lambda error, msg: print(msg.kind, "raised", error)))
    server.handle(MessageV1, on_message)
    async with server:  # curl http://<server.addr>/metrics and /healthz now
        client = metered_client(ClientMetrics().register(registry), server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            await client.send_sync(MessageV1(message="hi"), timeout=2)
            print("connected clients:", registry.get_sample_value("goomerang_server_connected_clients"))


asyncio.run(main())
