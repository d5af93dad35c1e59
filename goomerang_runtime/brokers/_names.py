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
"""

from __future__ import annotations

import string

from ..topics import is_pattern

__all__ = [
    "escape_token",
    "nats_broadcast_subject",
    "nats_pattern",
    "nats_subject",
    "redis_broadcast_channel",
    "redis_channel",
    "redis_glob",
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


def nats_subject(prefix: str, topic: str) -> str:
    """The subject a publication on literal `topic` goes to."""
    return f"{prefix}.t." + ".".join(escape_token(token) for token in topic.split("."))


def nats_pattern(prefix: str, pattern: str) -> str:
    """The subject (wildcards native) to subscribe to for `pattern`.

    A ``>`` before the last token is no wildcard (a Go client's plain
    string): it is escaped, and the subject still matches its topic.
    """
    if not is_pattern(pattern):
        return nats_subject(prefix, pattern)
    raw = pattern.split(".")
    last = len(raw) - 1
    tokens = (
        token if token == "*" or (token == ">" and i == last) else escape_token(token) for i, token in enumerate(raw)
    )
    return f"{prefix}.t." + ".".join(tokens)


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
