"""What two goomerang peers add to the Go wire, agreed in the WebSocket handshake.

A Go peer speaks exactly the Go library's protocol. Where both ends are
this library, they may go beyond it. Each extension is a token; a client
lists the ones it supports in the ``Goomerang-Extensions`` request header,
and the server answers with the ones it will use (those it supports too).
A Go server ignores the header and answers none, and a Go client sends
none: each such connection gets exactly Go's wire, so one Python server
serves Go and Python clients at once, each with its own rules.

The tokens, and what each changes when both ends agree::

    ========================  ==================================================
    token                     what it changes, when both ends agree
    ========================  ==================================================
    ``topic-header``          publication deliveries carry the topic in the
                              ``goomerang-topic`` header (``Metadata.topic``)
    ``wildcards``             ``*`` and ``>`` in subscriptions are wildcards;
                              without it every topic is a plain string
    ``error-reply``           a failed sync handler answers with an
                              ``ErrorReply`` (``RemoteHandlerError`` at once);
                              without it nothing is sent, as in Go
    ``close-codes``           precise close codes (1009 message too big, 1013
                              slow consumer, 1011 ...); without it every close
                              frame carries 1000 and an empty reason
    ``queue-groups``          a subscription may name a queue group (the
                              ``goomerang-group`` header on its subscribe and
                              unsubscribe frames): each publication reaches
                              one member of each group; group deliveries carry
                              the header too, and a left group is confirmed
    ``server-requests``       the server may ask a client and wait for its
                              reply (``Server.send_sync``); without it the
                              server refuses before sending anything
    ``recovery``              deliveries from a server that keeps history carry
                              ``goomerang-position`` (``epoch:offset``); a
                              reconnecting client's subscribe may carry
                              ``goomerang-since``, and the server replays what
                              followed, then says what it could not (needs
                              ``topic-header`` too)
    ========================  ==================================================
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CLOSE_CODES",
    "ERROR_REPLY",
    "EXTENSIONS_HEADER",
    "GO_WIRE",
    "QUEUE_GROUPS",
    "RECOVERY",
    "SERVER_REQUESTS",
    "SUPPORTED",
    "TOPIC_HEADER",
    "WILDCARDS",
    "format_extensions",
    "negotiate",
    "parse_extensions",
]

EXTENSIONS_HEADER: Final = "Goomerang-Extensions"
"""The handshake header (request and response) that lists extensions."""

TOPIC_HEADER: Final = "topic-header"
"""Publication deliveries carry their topic in the ``goomerang-topic`` header (``Metadata.topic``)."""
WILDCARDS: Final = "wildcards"
"""``*`` and ``>`` in subscriptions are wildcards; without it every topic is a plain string."""
ERROR_REPLY: Final = "error-reply"
"""A failed sync handler answers with an ``ErrorReply`` (the caller's ``RemoteHandlerError`` at once)."""
CLOSE_CODES: Final = "close-codes"
"""Close frames carry precise codes (1009, 1013, 1011...); without it always 1000 and no reason."""

QUEUE_GROUPS: Final = "queue-groups"
"""Subscriptions may name a queue group; each publication reaches one member of each group."""
SERVER_REQUESTS: Final = "server-requests"
"""The server may send sync requests to the client and wait for its replies (``Server.send_sync``)."""

RECOVERY: Final = "recovery"
"""Publications carry their history position; a reconnecting client catches up on what it missed."""

SUPPORTED: Final = frozenset(
    {TOPIC_HEADER, WILDCARDS, ERROR_REPLY, CLOSE_CODES, SERVER_REQUESTS, RECOVERY, QUEUE_GROUPS}
)
"""Every extension this library speaks."""

GO_WIRE: Final[frozenset[str]] = frozenset()
"""No extension: the Go library's wire exactly."""


def parse_extensions(value: str | None) -> frozenset[str]:
    """The tokens of a header value (unknown ones included); None: a Go peer."""
    if not value:
        return GO_WIRE
    return frozenset(token.strip().lower() for token in value.split(",") if token.strip())


def format_extensions(extensions: frozenset[str]) -> str:
    """A header value, tokens sorted so that the bytes are stable."""
    return ", ".join(sorted(extensions))


def negotiate(offered: str | None, supported: frozenset[str] = SUPPORTED) -> frozenset[str] | None:
    """What a server uses with a client that offered `offered`.

    None when the client sent no header (a Go client): answer none, speak Go.
    """
    if offered is None:
        return None
    key = (offered, supported)
    agreed = _AGREED.get(key)
    if agreed is None:
        agreed = parse_extensions(offered) & supported
        if len(_AGREED) < _AGREED_LIMIT:  # clients offer a handful of distinct headers: one set each
            _AGREED[key] = agreed
    return agreed


_AGREED: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
_AGREED_LIMIT = 256
