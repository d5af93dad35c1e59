"""Who gets in: the authentication hook, principals, and mutual TLS."""

from __future__ import annotations

import asyncio

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    AuthenticationError,
    Client,
    ConnectError,
    HandshakeRequest,
    HookError,
    Message,
    Sender,
    Server,
)

from .helpers import WAIT, Certs, Collector

TOKENS = {"Bearer ana-token": "ana", "Bearer bob-token": "bob"}


def whoami_server(**options: object) -> Server:
    server = Server(**options)  # type: ignore[arg-type]

    async def whoami(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=str(sender.peer.principal)))

    server.handle(MessageV1, whoami)
    return server


async def whoami(server: Server, **options: object) -> str:
    async with Client(server=server.addr, **options) as client:  # type: ignore[arg-type]
        reply = await client.send_sync(MessageV1(), timeout=WAIT, expect=ReplyV1)
        return reply.payload.message


def by_token(request: HandshakeRequest) -> str:
    token = request.headers.get("authorization")
    if token is None:
        raise AuthenticationError(401, "no token")
    if token not in TOKENS:
        raise AuthenticationError(403, "unknown token")
    return TOKENS[token]


async def test_bearer_token_gives_the_principal_to_handlers() -> None:
    async with whoami_server(authenticate=by_token) as server:
        assert await whoami(server, headers={"Authorization": "Bearer ana-token"}) == "ana"
        assert await whoami(server, headers={"Authorization": "Bearer bob-token"}) == "bob"


async def test_missing_or_bad_credentials_are_refused_with_401_or_403() -> None:
    async with whoami_server(authenticate=by_token) as server:
        with pytest.raises(ConnectError) as info:
            await Client(server=server.addr).connect(timeout=WAIT)
        assert info.value.status == 401
        with pytest.raises(ConnectError) as info:
            await Client(server=server.addr, headers={"Authorization": "Bearer nope"}).connect(timeout=WAIT)
        assert info.value.status == 403
        assert server.peers == []


async def test_async_authenticator_reads_the_query_and_path() -> None:
    seen: list[HandshakeRequest] = []

    async def by_query(request: HandshakeRequest) -> str:
        seen.append(request)
        await asyncio.sleep(0)
        if request.query.get("user") != ["eve"]:
            raise AuthenticationError(401)
        return "eve"

    async with whoami_server(authenticate=by_query) as server:
        # The client's URL has no query; a raw handshake shows the query reaches the hook.
        from websockets.asyncio.client import connect as ws_connect

        async with ws_connect(f"ws://{server.addr}/ws?user=eve"):
            pass
        assert seen[-1].path == "/ws"
        assert seen[-1].query == {"user": ["eve"]}
        assert seen[-1].remote_address.startswith("127.0.0.1:")
        with pytest.raises(ConnectError):
            await Client(server=server.addr).connect(timeout=WAIT)


async def test_authenticator_returning_none_refuses() -> None:
    async with whoami_server(authenticate=lambda request: None) as server:
        with pytest.raises(ConnectError) as info:
            await Client(server=server.addr).connect(timeout=WAIT)
        assert info.value.status == 401


async def test_broken_authenticator_answers_500_and_is_reported() -> None:
    def broken(request: HandshakeRequest) -> str:
        raise RuntimeError("auth backend down")

    server = whoami_server(authenticate=broken)
    errors = Collector()
    server.on_error(errors)
    async with server:
        with pytest.raises(ConnectError) as info:
            await Client(server=server.addr).connect(timeout=WAIT)
        assert info.value.status == 500
        (err,) = await errors.wait_for(HookError)
        assert "auth backend down" in str(err)


async def test_mutual_tls_refuses_clients_without_a_certificate(certs: Certs) -> None:
    def by_certificate(request: HandshakeRequest) -> str:
        assert request.peer_certificate is not None
        subject = dict(item for rdn in request.peer_certificate["subject"] for item in rdn)
        return str(subject["commonName"])

    server = whoami_server(tls=certs.server_context(require_client_cert=True), authenticate=by_certificate)
    async with server:
        assert await whoami(server, tls=certs.client_context(with_cert=True)) == "goomerang test client"
        with pytest.raises(ConnectError):
            await Client(server=server.addr, tls=certs.client_context(with_cert=False)).connect(timeout=WAIT)
        assert server.peers == []


async def test_authorisation_drops_denied_commands_and_reports_them() -> None:
    from goomerang_runtime import Action, AuthorizationError, PeerInfo

    asked: list[tuple[object, str, str, str]] = []

    async def authorize(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        asked.append((peer.principal, action, topic, kind))
        if action == "broadcast":
            return peer.principal == "ana"
        return not topic.startswith("secret")

    server = whoami_server(authenticate=by_token, authorize=authorize)
    server.register_message(ReplyV1)
    errors = Collector()
    server.on_error(errors)
    async with server:
        ana = Client(server=server.addr, headers={"Authorization": "Bearer ana-token"})
        bob = Client(server=server.addr, headers={"Authorization": "Bearer bob-token"})
        got: dict[str, asyncio.Queue[str]] = {"ana": asyncio.Queue(), "bob": asyncio.Queue()}

        def collect(name: str):  # type: ignore[no-untyped-def]
            async def handle(sender: Sender, msg: Message[ReplyV1]) -> None:
                await got[name].put(msg.payload.message)

            return handle

        ana.handle(ReplyV1, collect("ana"))
        bob.handle(ReplyV1, collect("bob"))
        async with ana, bob:
            await bob.subscribe("secret.plans")  # denied: never subscribed
            await bob.subscribe("news")
            await bob.broadcast(ReplyV1(message="from bob"))  # denied: not fanned out
            await ana.publish("secret.plans", ReplyV1(message="hidden"))  # denied
            await ana.publish("news", ReplyV1(message="public"))
            await ana.broadcast(ReplyV1(message="from ana"))
            assert await asyncio.wait_for(got["bob"].get(), WAIT) == "public"
            assert await asyncio.wait_for(got["bob"].get(), WAIT) == "from ana"
            assert await asyncio.wait_for(got["ana"].get(), WAIT) == "from ana"
            denied = await errors.wait_for(AuthorizationError, 3)
    assert {(e.action, e.topic) for e in denied} == {
        ("subscribe", "secret.plans"),
        ("broadcast", ""),
        ("publish", "secret.plans"),
    }
    assert got["ana"].empty()
    assert got["bob"].empty()
    assert ("bob", "subscribe", "news", "") in asked
    assert ("ana", "publish", "news", "goomerang.example.ReplyV1") in asked


async def test_max_subscriptions_refuses_the_extra_topic() -> None:
    from goomerang_runtime import LimitError

    server = whoami_server(max_subscriptions=2)
    server.register_message(ReplyV1)
    errors = Collector()
    server.on_error(errors)
    got: asyncio.Queue[str] = asyncio.Queue()
    async with server:
        client = Client(server=server.addr)

        async def handle(sender: Sender, msg: Message[ReplyV1]) -> None:
            await got.put(msg.payload.message)

        client.handle(ReplyV1, handle)
        async with client:
            for topic in ("a", "b", "c"):
                await client.subscribe(topic)
            (err,) = await errors.wait_for(LimitError)
            assert err.limit == "max_subscriptions"
            for topic in ("a", "b", "c"):
                await server.publish(topic, ReplyV1(message=topic))
            await client.subscribe("a")  # re-subscribing a topic it has is fine
            await server.publish("a", ReplyV1(message="a again"))
            assert [await asyncio.wait_for(got.get(), WAIT) for _ in range(3)] == ["a", "b", "a again"]
