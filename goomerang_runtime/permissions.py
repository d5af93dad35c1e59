"""Topic permissions with wildcard-aware semantics, as NATS has them.

::

    perms = Permissions(
        subscribe=TopicRules(allow=["rooms.public.>"], deny=["rooms.public.secret"]),
        publish=TopicRules(allow=["rooms.public.*"]),
    )
    server = Server(authorize=perms)          # or per principal, see below

A :class:`Permissions` is an authorisation hook. With wildcards in play a
yes/no on the subscription pattern is not enough, so it answers like this:

- **publish** on a topic: allowed when an ``allow`` pattern matches it (or
  there is no allow list) and no ``deny`` pattern does;
- **subscribe** to a pattern: allowed when an ``allow`` pattern *covers*
  it (every topic it can match is allowed: ``rooms.>`` covers
  ``rooms.*``, not the other way round) and no ``deny`` pattern covers it;
  a subscription that overlaps a denied pattern only in part is allowed,
  and
- **receiving**: the server asks again, with the concrete topic, before it
  delivers a publication that reached the client through a wildcard
  subscription; a topic that ``deny`` matches is never delivered. So
  ``>`` under ``deny=["secret.>"]`` gets everything but ``secret.*``.

That last check holds for any authorisation hook, not only this one (see
:class:`~goomerang_runtime.config.ServerConfig.authorize`). For rules per
principal, pick the :class:`Permissions` in your own hook::

    def authorize(peer, action, topic, kind):
        return PERMISSIONS[peer.principal](peer, action, topic, kind)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .auth import Action
from .handler import PeerInfo
from .topics import is_pattern, pattern_covers, pattern_matches, validate_pattern

__all__ = ["Permissions", "TopicRules"]


def _patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    return tuple(validate_pattern(pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class TopicRules:
    """Allowed and denied topic patterns for one action.

    `allow` None allows every topic (then only `deny` restricts); an empty
    `allow` allows none.
    """

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    def __init__(self, allow: Iterable[str] | None = None, deny: Iterable[str] = ()) -> None:
        object.__setattr__(self, "allow", None if allow is None else _patterns(allow))
        object.__setattr__(self, "deny", _patterns(deny))

    def permits_topic(self, topic: str) -> bool:
        """Whether a concrete `topic` is allowed."""
        if self.allow is not None and not any(pattern_matches(allow, topic) for allow in self.allow):
            return False
        return not any(pattern_matches(deny, topic) for deny in self.deny)

    def permits_pattern(self, pattern: str) -> bool:
        """Whether a subscription to `pattern` is allowed (concrete topics are checked again on delivery)."""
        if not is_pattern(pattern):
            return self.permits_topic(pattern)
        if self.allow is not None and not any(pattern_covers(allow, pattern) for allow in self.allow):
            return False
        return not any(pattern_covers(deny, pattern) for deny in self.deny)


@dataclass(frozen=True, slots=True)
class Permissions:
    """What clients may publish, subscribe to and broadcast; an authorisation hook."""

    publish: TopicRules = field(default_factory=TopicRules)
    subscribe: TopicRules = field(default_factory=TopicRules)
    broadcast: bool = True

    def __call__(self, peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        if action == "publish":
            return self.publish.permits_topic(topic)
        if action == "subscribe":
            return self.subscribe.permits_pattern(topic)
        return self.broadcast
