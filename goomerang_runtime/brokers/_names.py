"""Sans-I/O mapping of goomerang topics to NATS subjects and Redis channels.

Go topics are arbitrary strings, so they cannot become subjects as they are.

NATS: a subject is dot-separated tokens that must not be empty nor hold
whitespace, and ``*``/``>`` tokens are wildcards. Each topic token is
escaped: ASCII letters, digits, ``-`` and ``_`` stay, any other character
becomes ``%XX`` per UTF-8 byte, and an empty token becomes ``%`` (which
escaping never produces otherwise). Escaping is per token and injective, so
a pattern's ``*`` and ``>`` tokens stay native wildcards with exactly the
semantics of :func:`goomerang_runtime.topics.pattern_matches`.

Redis: channels are binary-safe, so a literal topic is its channel as it is
(``SUBSCRIBE``). A pattern becomes a glob (``PSUBSCRIBE``) where ``*`` and
``>`` tokens become ``*`` and glob characters are escaped; the glob matches
a superset of the pattern's topics (``*`` also crosses dots), and the
receiver re-checks each publication with ``pattern_matches``.

Queue groups. NATS: members subscribe to a topic's subject with the group
as queue name; a publication handed back for a group goes to
``{prefix}.g.<group>.<topic>``, where each replica with members of the group
listens (queue subscription) on ``{prefix}.g.<group>.<pattern>``. Redis:
the members are counted in hashes (``{prefix}:q:w`` for wildcard patterns,
``{prefix}:q:l:<topic>`` for literal ones), and each replica reads the
group deliveries chosen for it on its own channel ``{prefix}:r:<replica>``.
"""

from __future__ import annotations

import string

from ..topics import is_pattern

__all__ = [
    "escape_token",
    "nats_broadcast_subject",
    "nats_group_pattern",
    "nats_group_prefix",
    "nats_group_subject",
    "nats_pattern",
    "nats_subject",
    "redis_broadcast_channel",
    "redis_channel",
    "redis_glob",
    "redis_group_counters",
    "redis_group_literal",
    "redis_group_wildcards",
    "redis_history_meta",
    "redis_history_stream",
    "redis_inbox",
    "validate_nats_prefix",
]

_SAFE = frozenset(string.ascii_letters + string.digits + "-_")
_GLOB_SPECIAL = frozenset("\\*?[]^-")
_WILDCARDS = ("*", ">")


def escape_token(token: str) -> str:
    """One topic token as a valid, wildcard-free NATS subject token."""
    if not token:
        return "%"
    if all(char in _SAFE for char in token):
        return token
    return "".join(char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode()) for char in token)


def validate_nats_prefix(prefix: str) -> str:
    """Check a subject prefix: dot-separated tokens of letters, digits, ``-`` and ``_``."""
    tokens = prefix.split(".")
    if not prefix or any(not token or escape_token(token) != token for token in tokens):
        raise ValueError(f"{prefix!r} is not a subject prefix: use dot-separated tokens of letters, digits, '-', '_'")
    return prefix


def _literal_tokens(topic: str) -> str:
    return ".".join(escape_token(token) for token in topic.split("."))


def _pattern_tokens(pattern: str, literal: bool) -> str:
    if literal or not is_pattern(pattern):
        return _literal_tokens(pattern)
    raw = pattern.split(".")
    last = len(raw) - 1
    return ".".join(
        token if token == "*" or (token == ">" and i == last) else escape_token(token) for i, token in enumerate(raw)
    )


def nats_subject(prefix: str, topic: str) -> str:
    """The subject a publication on literal `topic` goes to."""
    return f"{prefix}.t." + _literal_tokens(topic)


def nats_pattern(prefix: str, pattern: str, *, literal: bool = False) -> str:
    """The subject (wildcards native) to subscribe to for `pattern`.

    A ``>`` before the last token is no wildcard (a Go client's plain
    string): it is escaped, and the subject still matches its topic. A
    `literal` pattern (a subscriber without wildcards) is escaped whole.
    """
    return f"{prefix}.t." + _pattern_tokens(pattern, literal)


def nats_group_prefix(prefix: str) -> str:
    """What every hand-back subject starts with (the catch-all subscription skips them)."""
    return f"{prefix}.g."


def nats_group_subject(prefix: str, group: str, topic: str) -> str:
    """The subject a publication on `topic` handed back for queue `group` goes to."""
    return f"{prefix}.g.{escape_token(group)}." + _literal_tokens(topic)


def nats_group_pattern(prefix: str, group: str, pattern: str, *, literal: bool = False) -> str:
    """The subject a replica with members of `group` on `pattern` takes hand-backs on."""
    return f"{prefix}.g.{escape_token(group)}." + _pattern_tokens(pattern, literal)


def nats_broadcast_subject(prefix: str) -> str:
    """The subject every replica subscribes to for broadcasts."""
    return f"{prefix}.b"


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in _GLOB_SPECIAL else char for char in text)


def redis_channel(prefix: str, topic: str) -> bytes:
    """The channel of literal `topic` (and of an exact subscription to it)."""
    return f"{prefix}:t:{topic}".encode()


def redis_glob(prefix: str, pattern: str) -> bytes:
    """The ``PSUBSCRIBE`` glob for wildcard `pattern`; it matches a superset of its topics."""
    tokens = ("*" if token in _WILDCARDS else _glob_escape(token) for token in pattern.split("."))
    return (_glob_escape(f"{prefix}:t:") + ".".join(tokens)).encode()


def redis_broadcast_channel(prefix: str) -> bytes:
    """The channel every replica subscribes to for broadcasts."""
    return f"{prefix}:b".encode()


def redis_inbox(prefix: str, replica: str) -> bytes:
    """The channel on which `replica` gets the group deliveries chosen for it."""
    return f"{prefix}:r:{replica}".encode()


def redis_group_literal(prefix: str, topic: str) -> bytes:
    """The hash counting members of each group on literal `topic`, per replica."""
    return f"{prefix}:q:l:{topic}".encode()


def redis_group_wildcards(prefix: str) -> bytes:
    """The hash counting members of each group on each wildcard pattern, per replica."""
    return f"{prefix}:q:w".encode()


def redis_group_counters(prefix: str) -> bytes:
    """The hash of each group's turn counter."""
    return f"{prefix}:q:n".encode()


def redis_history_meta(prefix: str, topic: str) -> bytes:
    """The hash of a topic's shared history: its epoch (``e``) and last offset (``n``)."""
    return f"{prefix}:h:m:{topic}".encode()


def redis_history_stream(prefix: str, topic: str) -> bytes:
    """The stream holding a topic's last publications, under the ids ``<offset>-0``."""
    return f"{prefix}:h:s:{topic}".encode()
