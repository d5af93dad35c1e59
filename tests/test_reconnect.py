"""Opt-in client reconnection: backoff with jitter, a hook per attempt, topics re-subscribed."""

from __future__ import annotations

import asyncio

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    AuthenticationError,
    Client,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    HandshakeRequest,
    Message,
    NotRunningError,
    PeerInfo,
    ReconnectFailedError,
    ReconnectPolicy,
    Sender,
    Server,
    Status,
)

from .helpers import WAIT, Collector

FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.1, multiplier=2.0, jitter=0.5)


def replying_server(port: int = 0) -> Server:
    server = Server(listen=f"127.0.0.1:{port}")

    async def reply(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, reply)
    return server


class StatusWatch:
    """Events for each status a client reaches, re-armed by `expect`."""

    def __init__(self, client: Client) -> None:
        self.seen: list[Status] = []
        self._events: dict[Status, asyncio.Event] = {}
        client.on_status_change(self._on_status)

    def _on_status(self, status: Status) -> None:
        self.seen.append(status)
        self._events.setdefault(status, asyncio.Event()).set()

    def expect(self, status: Status) -> asyncio.Event:
        event = self._events[status] = asyncio.Event()
        return event


async def test_reconnects_after_a_restart_and_resubscribes() -> None:
    first = replying_server()
    await first.start()
    port = int(first.addr.rsplit(":", 1)[1])
    client = Client(server=first.addr, reconnect=FAST)
    attempts: list[tuple[int, float, BaseException | None]] = []
    client.on_reconnect(lambda n, delay, err: attempts.append((n, delay, err)))
    watch = StatusWatch(client)
    got: asyncio.Queue[Message[MessageV1]] = asyncio.Queue()

    async def on_topic(sender: Sender, msg: Message[MessageV1]) -> None:
        await got.put(msg)

    await client.connect(timeout=WAIT)
    await client.subscribe("news", MessageV1, on_topic)
    closed, running = watch.expect(Status.CLOSED), watch.expect(Status.RUNNING)
    await first.shutdown()
    await asyncio.wait_for(closed.wait(), WAIT)
    with pytest.raises(NotRunningError):  # while it reconnects, sends fail at once
        await client.send(MessageV1())

    second = replying_server(port)
    subscribed = asyncio.Event()
    second.on_subscribe(lambda topic: subscribed.set())
    async with second:
        await asyncio.wait_for(running.wait(), WAIT)
        await asyncio.wait_for(subscribed.wait(), WAIT)  # re-subscribed by itself
        assert client.subscriptions == frozenset({"news"})
        reply = await client.send_sync(MessageV1(message="back"), timeout=WAIT, expect=ReplyV1)
        assert reply.payload.message == "back"
        await second.publish("news", MessageV1(message="after the restart"))
        assert (await asyncio.wait_for(got.get(), WAIT)).payload.message == "after the restart"
        await client.close()
    assert attempts
    assert [n for n, _, _ in attempts] == list(range(1, len(attempts) + 1))
    assert all(0 < delay <= FAST.max_delay * (1 + FAST.jitter) for _, delay, _ in attempts)
    assert watch.seen[:3] == [Status.RUNNING, Status.CLOSING, Status.CLOSED]
    assert watch.seen[-3:] == [Status.RUNNING, Status.CLOSING, Status.CLOSED]


async def test_gives_up_after_max_attempts() -> None:
    server = replying_server()
    await server.start()
    client = Client(server=server.addr, reconnect=FAST.model_copy(update={"max_attempts": 3}))
    errors = Collector()
    client.on_error(errors)
    await client.connect(timeout=WAIT)
    await server.shutdown()
    (err,) = await errors.wait_for(ReconnectFailedError)
    assert err.attempts == 3
    assert client.status is Status.CLOSED


async def test_close_stops_reconnecting() -> None:
    server = replying_server()
    await server.start()
    client = Client(server=server.addr, reconnect=FAST)
    tried = asyncio.Event()
    client.on_reconnect(lambda n, delay, err: tried.set() if n >= 2 else None)
    await client.connect(timeout=WAIT)
    await server.shutdown()
    await asyncio.wait_for(tried.wait(), WAIT)
    await client.close()
    assert client.status is Status.CLOSED
    assert client.subscriptions == frozenset()


async def test_user_close_does_not_reconnect() -> None:
    async with replying_server() as server:
        client = Client(server=server.addr, reconnect=FAST)
        client.on_reconnect(lambda n, delay, err: pytest.fail("reconnected after close()"))
        await client.connect(timeout=WAIT)
        await client.close()
        assert client.status is Status.CLOSED


def test_policy_is_validated() -> None:
    with pytest.raises(ConfigError, match="multiplier"):
        Client(server="127.0.0.1:1", reconnect={"multiplier": 0.5})  # type: ignore[typeddict-item]


async def test_revoked_credentials_drop_the_client_and_it_stops_retrying() -> None:
    """The server drops a connected peer whose token it revoked; 403 on reconnect ends the retries."""
    tokens = {"Bearer t1": "ana"}

    def authenticate(request: HandshakeRequest) -> str:
        user = tokens.get(request.headers.get("authorization", ""))
        if user is None:
            raise AuthenticationError(403, "revoked")
        return user

    server = Server(authenticate=authenticate)
    peers: list[PeerInfo] = []
    server.on_connect(peers.append)
    async with server:
        client = Client(server=server.addr, headers={"Authorization": "Bearer t1"}, reconnect=FAST)
        errors = Collector()
        client.on_error(errors)
        attempts: list[int] = []
        client.on_reconnect(lambda attempt, delay, last: attempts.append(attempt))
        await client.connect(timeout=WAIT)
        del tokens["Bearer t1"]
        await server.disconnect(peers[0].id, "credentials revoked")
        (err,) = await errors.wait_for(ReconnectFailedError)
        assert isinstance(err.last_error, ConnectError)
        assert err.last_error.status == 403
        assert "refused" in str(err)
        assert attempts == [1]  # one try, then no more: 403 cannot get better by retrying
        assert client.status is Status.CLOSED
        assert server.peers == []
        with pytest.raises(ConnectionLostError):
            await server.disconnect("conn-404")
