"""Broadcast and publish/subscribe across languages, in both directions.

Against a Go peer, topics are plain strings: ``*``, ``>`` and ``.`` mean
nothing special, and deliveries carry exactly the publisher's headers.
"""

from __future__ import annotations

import pytest

from .harness import Interop
from .model import FULL, Msg
from .peers import ClientSide, ServerSide

REPLY = FULL["ReplyV1"]


def texts(client: ClientSide) -> list[str | None]:
    """Texts of what the client's handlers got, in arrival order."""
    return [d.text for d in client.received.items]


async def subscribe_all(server: ServerSide, plan: dict[ClientSide, list[str]]) -> None:
    """Subscribe each client to its topics and wait until the server ran every subscription."""
    for client, topics in plan.items():
        for topic in topics:
            await client.subscribe(topic)
    await server.wait_hook("subscribed", count=sum(len(t) for t in plan.values()))


@pytest.mark.scenario("client broadcast (sender included, headers restored)")
async def test_client_broadcast_reaches_everyone_with_the_users_headers(interop: Interop) -> None:
    server = await interop.start_server()
    a = await interop.new_client()
    b = await interop.new_client()
    await a.broadcast(Msg("ReplyV1", "to all", {"room": "go", "k": "v"}))
    for client in (a, b):
        [got] = await client.received.wait_for(1)
        assert (got.kind, got.text, got.headers) == (REPLY, "to all", {"room": "go", "k": "v"})
        assert (got.uuid, got.is_sync, got.topic) == ("", False, "")
    await server.wait_hook("client_broadcast")
    for client in (a, b):
        await client.barrier()
        assert texts(client) == ["to all"]


@pytest.mark.scenario("server broadcast")
async def test_server_broadcast_reaches_everyone_with_its_headers(interop: Interop) -> None:
    server = await interop.start_server()
    a = await interop.new_client()
    b = await interop.new_client()
    await server.broadcast(Msg("ReplyV1", "from the server", {"h": "1"}))
    for client in (a, b):
        [got] = await client.received.wait_for(1)
        assert (got.kind, got.text, got.headers, got.is_sync, got.uuid) == (
            REPLY,
            "from the server",
            {"h": "1"},
            False,
            "",
        )


@pytest.mark.scenario("subscribe, publish, unsubscribe")
async def test_subscribe_publish_unsubscribe(interop: Interop) -> None:
    server = await interop.start_server()
    a = await interop.new_client()
    b = await interop.new_client()
    await subscribe_all(server, {a: ["news", "other"], b: ["news"]})
    await b.publish("news", Msg("ReplyV1", "n1", {"h": "v", "message-inner": "x"}))
    for client in (a, b):  # the publisher is subscribed too
        [got] = await client.received.wait_for(1)
        assert (got.kind, got.text, got.is_sync, got.uuid) == (REPLY, "n1", False, "")
        assert got.headers == {"h": "v", "message-inner": "x"}, "exactly the publisher's headers"
    await a.unsubscribe("news")
    await server.wait_hook("unsubscribed", "news")
    await b.publish("news", Msg("ReplyV1", "n2"))
    await server.wait_hook("published", "news", count=2)
    await b.received.wait_for(2)
    # Published after n2 was fanned out: if n2 went to `a`, it arrives before this.
    await b.publish("other", Msg("ReplyV1", "sentinel"))
    await a.received.wait(lambda items: any(d.text == "sentinel" for d in items), "the sentinel")
    assert texts(a) == ["n1", "sentinel"]
    assert texts(b) == ["n1", "n2"]


@pytest.mark.scenario("server-side publish")
async def test_server_publish_reaches_only_subscribers(interop: Interop) -> None:
    server = await interop.start_server()
    a = await interop.new_client()
    b = await interop.new_client()
    await subscribe_all(server, {a: ["alerts"]})
    await server.publish("alerts", Msg("ReplyV1", "a1", {"sev": "high"}))
    [got] = await a.received.wait_for(1)
    assert (got.kind, got.text, got.headers, got.is_sync) == (REPLY, "a1", {"sev": "high"}, False)
    await server.broadcast(Msg("ReplyV1", "after"))
    await b.received.wait_for(1)
    await a.received.wait_for(2)
    assert texts(a) == ["a1", "after"]
    assert texts(b) == ["after"]


LITERAL_PLAN = {"x": ["a.*", "w.*", "end"], "y": [">", "a.>", "end"], "z": ["a.x", "w.x", "end"]}


async def literal_topic_clients(interop: Interop, server: ServerSide) -> dict[str, ClientSide]:
    clients = {name: await interop.new_client() for name in LITERAL_PLAN}
    await subscribe_all(server, {clients[name]: topics for name, topics in LITERAL_PLAN.items()})
    return clients


async def wait_end(clients: dict[str, ClientSide]) -> dict[str, list[str | None]]:
    for client in clients.values():
        await client.received.wait(lambda items: any(d.text == "end" for d in items), "the 'end' publication")
    return {name: sorted(texts(c), key=str) for name, c in clients.items()}


@pytest.mark.scenario("topics with *, > and . are literal strings")
async def test_wildcard_characters_are_literal_in_client_publications(interop: Interop) -> None:
    server = await interop.start_server()
    clients = await literal_topic_clients(interop, server)
    publisher = clients["z"]
    for topic in ["a.x", "a.*", "w.x", "w.*", ">", "a.>", "a.b.c"]:
        errors = len(server.errors)
        await publisher.publish(topic, Msg("ReplyV1", topic, {"t": topic}))
        await server.wait_hook("published", topic, errors_since=errors)  # a Go server runs commands concurrently
    await publisher.publish("end", Msg("ReplyV1", "end"))
    got = await wait_end(clients)
    assert got == {"x": ["a.*", "end", "w.*"], "y": [">", "a.>", "end"], "z": ["a.x", "end", "w.x"]}
    for client in clients.values():
        for delivery in client.received.items:
            assert delivery.headers == ({} if delivery.text == "end" else {"t": delivery.text})


@pytest.mark.scenario("server-side publish on topics with *, > and .")
async def test_wildcard_characters_are_literal_in_server_publications(interop: Interop) -> None:
    server = await interop.start_server()
    clients = await literal_topic_clients(interop, server)
    for topic in ["a.*", "w.x", ">", "a.b"]:
        await server.publish(topic, Msg("ReplyV1", topic))
    await server.publish("end", Msg("ReplyV1", "end"))
    got = await wait_end(clients)
    assert got == {"x": ["a.*", "end"], "y": [">", "end"], "z": ["end", "w.x"]}
