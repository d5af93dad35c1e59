"""Topic names and subscription patterns, and the index matching them.

Topics are exact strings, as in the Go library. Going beyond it, a
subscription may use NATS subject wildcards on dot-separated tokens: ``*``
matches exactly one token and ``>`` (only as the last token) matches one or
more tokens. ``rooms.*`` matches ``rooms.go`` but not ``rooms.go.dev``;
``rooms.>`` matches both, but not ``rooms``. A subscription without a
wildcard token matches only the identical topic. A published topic is always
literal.

Wildcards are an extension (:mod:`goomerang_runtime.extensions`): for a Go
peer, whose library has none, every topic and subscription is a plain
string, ``*`` and ``>`` included. Whoever publishes on a topic holding
wildcard tokens (a Go client may) reaches only the subscriptions with
exactly that string.
"""

from __future__ import annotations

import string
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from .errors import GroupError, TopicError

__all__ = [
    "MAX_GROUP_LENGTH",
    "TopicIndex",
    "is_pattern",
    "pattern_covers",
    "pattern_matches",
    "validate_group",
    "validate_pattern",
    "validate_topic",
]

S = TypeVar("S", bound=Hashable)
_WILDCARDS = ("*", ">")
_GROUP_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")
MAX_GROUP_LENGTH = 128
"""Longest queue group name, in characters."""


def is_pattern(pattern: str) -> bool:
    """Whether a subscription uses a wildcard token."""
    return any(token in _WILDCARDS for token in pattern.split("."))


def validate_pattern(pattern: str) -> str:
    """Check a subscription; raises TopicError for an empty one or a misplaced ``>``."""
    if not pattern:
        raise TopicError(pattern, "must not be empty")
    tokens = pattern.split(".")
    if ">" in tokens[:-1]:
        raise TopicError(pattern, "'>' may only be the last token")
    return pattern


def validate_topic(topic: str) -> str:
    """Check a published topic; raises TopicError for an empty or wildcard topic."""
    if not topic:
        raise TopicError(topic, "must not be empty")
    if is_pattern(topic):
        raise TopicError(topic, "wildcards are for subscriptions, publish to a literal topic")
    return topic


def validate_group(group: str) -> str:
    """Check a queue group name: 1 to 128 ASCII letters, digits, ``-``, ``_`` or ``.``; raises GroupError.

    Names this plain travel as they are in a header, a NATS queue name and
    a Redis field.
    """
    if not group:
        raise GroupError(group, "must not be empty")
    if len(group) > MAX_GROUP_LENGTH:
        raise GroupError(group, f"longer than {MAX_GROUP_LENGTH} characters")
    if not _GROUP_CHARS.issuperset(group):
        raise GroupError(group, "use ASCII letters, digits, '-', '_' and '.' only")
    return group


def _tokens_match(pattern: tuple[str, ...], topic: list[str]) -> bool:
    last = len(pattern) - 1
    for i, token in enumerate(pattern):
        if token == ">" and i == last:
            return len(topic) > i
        if i >= len(topic) or (token != "*" and token != topic[i]):
            return False
    return len(topic) == len(pattern)


def pattern_matches(pattern: str, topic: str) -> bool:
    """Whether subscription `pattern` receives publications on `topic`.

    A topic holding wildcard tokens is a plain string (a Go peer's): only
    the identical subscription receives it.
    """
    if not is_pattern(pattern) or is_pattern(topic):
        return pattern == topic
    return _tokens_match(tuple(pattern.split(".")), topic.split("."))


def pattern_covers(family: str, pattern: str) -> bool:
    """Whether every topic `pattern` matches is also matched by `family`.

    ``rooms.*`` covers ``rooms.go`` and ``rooms.*``, not ``rooms.>``;
    ``rooms.>`` covers all three.
    """
    outer = family.split(".")
    inner = pattern.split(".")
    for i, token in enumerate(outer):
        if token == ">" and i == len(outer) - 1:
            return len(inner) > i
        if i >= len(inner):
            return False
        sub = inner[i]
        if token == "*":
            if sub == ">":
                return False
        elif sub in _WILDCARDS or sub != token:
            return False
    return len(inner) == len(outer)


class _Node(Generic[S]):
    """One token position of the wildcard trie."""

    __slots__ = ("children", "rest", "star", "subs")

    def __init__(self) -> None:
        self.children: dict[str, _Node[S]] = {}
        self.star: _Node[S] | None = None
        self.rest: set[S] = set()
        """Subscribers of a pattern ending in ``>`` here."""
        self.subs: set[S] = set()
        """Subscribers of a pattern ending here."""

    def empty(self) -> bool:
        return not (self.children or self.star or self.rest or self.subs)


class TopicIndex(Generic[S]):
    """Which subscribers each subscription has; matches topics to them.

    A subscription is a wildcard pattern, or ``literal`` (a Go peer's, or
    one without wildcard tokens): then it matches only the identical topic.
    Wildcard patterns live in a token trie, as in NATS, so matching a topic
    costs by its depth and the patterns that share its tokens, not by the
    number of patterns.
    """

    __slots__ = ("_exact", "_root", "_wild")

    def __init__(self) -> None:
        self._exact: dict[str, set[S]] = {}
        self._wild: dict[str, set[S]] = {}
        self._root: _Node[S] = _Node()

    def add(self, pattern: str, subscriber: S, *, literal: bool = False) -> bool:
        """Subscribe; returns True when the string `pattern` had no subscriber before."""
        first = pattern not in self._exact and pattern not in self._wild
        if not literal and is_pattern(pattern):
            subs = self._wild.get(pattern)
            if subs is None:
                subs = self._wild[pattern] = set()
            subs.add(subscriber)
            leaf = self._leaf(pattern, create=True)
            assert leaf is not None  # created on the way
            leaf[0].add(subscriber)
            return first
        subs = self._exact.get(pattern)
        if subs is None:
            self._exact[pattern] = {subscriber}
        else:
            subs.add(subscriber)
        return first

    def _leaf(self, pattern: str, *, create: bool) -> tuple[set[S], list[tuple[_Node[S], str]]] | None:
        """The subscriber set of `pattern` in the trie, and the path to it (node, token) for pruning."""
        tokens = pattern.split(".")
        last = len(tokens) - 1
        node = self._root
        path: list[tuple[_Node[S], str]] = []
        for i, token in enumerate(tokens):
            if token == ">" and i == last:
                return node.rest, path
            path.append((node, token))
            if token == "*":
                child = node.star
                if child is None:
                    if not create:
                        return None
                    child = node.star = _Node()
            else:
                child = node.children.get(token)
                if child is None:
                    if not create:
                        return None
                    child = node.children[token] = _Node()
            node = child
        return node.subs, path

    def remove(self, pattern: str, subscriber: S, *, literal: bool = False) -> bool:
        """Unsubscribe; returns True when the string `pattern` has no subscriber left."""
        if not literal and is_pattern(pattern):
            subs = self._wild.get(pattern)
            if subs is None or subscriber not in subs:
                return False
            subs.discard(subscriber)
            found = self._leaf(pattern, create=False)
            if found is not None:
                found[0].discard(subscriber)
                self._prune(found[1])
            if subs:
                return False
            del self._wild[pattern]
        else:
            subs = self._exact.get(pattern)
            if subs is None or subscriber not in subs:
                return False
            subs.discard(subscriber)
            if subs:
                return False
            del self._exact[pattern]
        return pattern not in self._exact and pattern not in self._wild

    @staticmethod
    def _prune(path: list[tuple[_Node[S], str]]) -> None:
        for parent, token in reversed(path):
            child = parent.star if token == "*" else parent.children.get(token)
            if child is None or not child.empty():
                return
            if token == "*":
                parent.star = None
            else:
                del parent.children[token]

    def remove_all(self, patterns: Iterable[str], subscriber: S, *, literal: bool = False) -> list[str]:
        """Unsubscribe from each pattern; returns those left without subscribers."""
        return [pattern for pattern in patterns if self.remove(pattern, subscriber, literal=literal)]

    def match(self, topic: str) -> set[S]:
        """Every subscriber whose subscription matches `topic` (each once).

        A topic holding wildcard tokens matches only subscriptions with
        exactly that string (patterns included): it is a plain string.
        """
        exact = self._exact.get(topic)
        found: set[S] = set(exact) if exact else set()
        if not self._wild:
            return found
        if is_pattern(topic):
            same = self._wild.get(topic)
            if same is not None:
                found |= same
            return found
        nodes = [self._root]
        for token in topic.split("."):
            following: list[_Node[S]] = []
            for node in nodes:
                if node.rest:
                    found |= node.rest  # ">" takes this token and all after it
                child = node.children.get(token)
                if child is not None:
                    following.append(child)
                if node.star is not None:
                    following.append(node.star)
            if not following:
                return found
            nodes = following
        for node in nodes:
            if node.subs:
                found |= node.subs
        return found

    def patterns(self) -> list[str]:
        """Every pattern with at least one subscriber, sorted."""
        return sorted({*self._exact, *self._wild})

    def __len__(self) -> int:
        return len({*self._exact, *self._wild})
