"""Authorisation that wildcards cannot bypass: every subscription shape against allow and deny policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from generated.goomerang.example.messages_pb2 import ReplyV1
from goomerang_runtime import AuthorizationError, PeerInfo, Server
from goomerang_runtime.auth import Action
from goomerang_runtime.permissions import Permissions, TopicRules
from goomerang_runtime.topics import pattern_matches

from .helpers import Collector
from .inbox import barrier, listening_client
from .replica import add_handlers

TOPICS = [
    "rooms.public.a",
    "rooms.public.b",
    "rooms.public.a.deep",
    "rooms.private.x",
    "rooms.private.x.y",
    "rooms",
    "other.private.x",
    "a.private.x",
    "x",
]
SHAPES = [
    "rooms.public.a",
    "rooms.private.x",
    "rooms.public.*",
    "rooms.public.>",
    "rooms.*.x",
    "rooms.*",
    "rooms.>",
    "*.private.x",
    "*.*.*",
    "*",
    ">",
]

Policy = Callable[[PeerInfo, Action, str, str], bool]


def allow_list(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
    """A hand-written hook allowing only rooms.public.* (with the library's own matcher)."""
    return action != "subscribe" or pattern_matches("rooms.public.*", topic)


def deny_list(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
    """A hand-written hook refusing *.private.x and rooms.private.>."""
    return action != "subscribe" or not (
        pattern_matches("*.private.x", topic) or pattern_matches("rooms.private.>", topic)
    )


POLICIES: dict[str, Policy] = {
    "hook-allow-list": allow_list,
    "hook-deny-list": deny_list,
    "permissions-allow": Permissions(subscribe=TopicRules(allow=["rooms.public.*"])),
    "permissions-deny": Permissions(subscribe=TopicRules(deny=["*.private.x", "rooms.private.>"])),
    "permissions-both": Permissions(subscribe=TopicRules(allow=["rooms.>"], deny=["rooms.private.>"])),
}


def concrete_allowed(policy: Policy, topic: str) -> bool:
    return policy(PeerInfo("t", "t:0"), "subscribe", topic, "")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync-hook", "async-hook"])
@pytest.mark.parametrize("name", list(POLICIES))
async def test_no_subscription_shape_receives_a_topic_the_policy_refuses(name: str, asynchronous: bool) -> None:
    policy = POLICIES[name]

    async def async_policy(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        await asyncio.sleep(0)
        return policy(peer, action, topic, kind)

    hook: Callable[[PeerInfo, Action, str, str], Awaitable[bool] | bool] = async_policy if asynchronous else policy
    server = Server(authorize=hook)
    errors = Collector()
    server.on_error(errors)
    add_handlers(server, "S")
    async with server:
        subscribers = {shape: listening_client(server.addr) for shape in SHAPES}
        publisher, _ = listening_client(server.addr)
        for client, _ in subscribers.values():
            await client.connect()
        try:
            async with publisher:
                for shape, (client, inbox) in subscribers.items():
                    await client.subscribe(shape, ReplyV1, inbox)
                    await barrier(client)
                for topic in TOPICS:
                    await publisher.publish(topic, ReplyV1(message=topic))
                await barrier(publisher)
                for shape, (client, inbox) in subscribers.items():
                    subscribed = concrete_allowed(policy, shape)  # the hook's answer for the pattern itself
                    expected = [
                        t for t in TOPICS if subscribed and pattern_matches(shape, t) and concrete_allowed(policy, t)
                    ]
                    await inbox.wait_for(len(expected))
                    await barrier(publisher)
                    await barrier(client)
                    got = inbox.texts()
                    assert got == expected, (name, shape)
                    # Never a topic the policy refuses as a concrete topic.
                    assert all(concrete_allowed(policy, t) for t in got)
        finally:
            for client, _ in subscribers.values():
                await client.close()
    assert {type(e) for e in errors.items} <= {AuthorizationError}


def test_permissions_answer_patterns_with_subset_semantics() -> None:
    rules = TopicRules(allow=["rooms.public.*", "news.>"], deny=["news.secret.>"])
    assert rules.permits_pattern("rooms.public.*")
    assert rules.permits_pattern("rooms.public.a")
    assert not rules.permits_pattern("rooms.public.>")  # would match rooms.public.a.b
    assert not rules.permits_pattern(">")
    assert rules.permits_pattern("news.*")  # overlaps the deny list only in part: checked per topic
    assert not rules.permits_pattern("news.secret.>")
    assert not rules.permits_topic("news.secret.x")
    assert rules.permits_topic("news.x")
    assert not TopicRules(allow=[]).permits_topic("anything")
    with pytest.raises(ValueError, match="last token"):
        TopicRules(allow=["a.>.b"])
    perms = Permissions(publish=TopicRules(allow=["out.*"]), broadcast=False)
    peer = PeerInfo("t", "t:0")
    assert perms(peer, "publish", "out.x", "k")
    assert not perms(peer, "publish", "in.x", "k")
    assert not perms(peer, "broadcast", "", "k")
    assert perms(peer, "subscribe", ">", "")
