"""Every error the runtime raises or reports, under one root.

Catch :class:`GoomerangError` for all of them. The tree keeps "the caller
misused the API" apart from "the peer or the network failed", so retries can
be built on the second branch only::

    GoomerangError
    ├── UsageError                  the caller misused the API
    │   ├── ConfigError             an option failed validation
    │   ├── NotRunningError         the peer is not RUNNING
    │   ├── AlreadyRunningError     run()/connect() on a running peer
    │   ├── RegistrationClosedError handle()/middleware() after start
    │   ├── TopicError              an invalid topic or subscription pattern
    │   ├── GroupError              an invalid queue group, or one the server cannot take
    │   ├── DuplicateKindError      two message classes for one kind
    │   ├── DuplicateHandlerError   two handlers for one kind
    │   ├── UnsupportedPeerError    the peer lacks the extension a call needs (a Go peer)
    │   └── NoReplyError            a handler of a server's request returned no reply
    ├── ProtocolError               the peer sent something we cannot use
    │   ├── FrameDecodeError        bytes that are not a goomerang Frame
    │   ├── TextFrameError          a text WebSocket message
    │   ├── UnknownKindError        a kind missing from the registry
    │   ├── NoHandlerError          a known kind that has no handler here
    │   ├── PayloadDecodeError      a payload that does not parse as its kind
    │   ├── UnknownReplyError       a sync reply nobody waits for (late)
    │   ├── UnexpectedReplyError    a sync reply of a kind the caller did not expect
    │   └── EnvelopeDecodeError     broker data that is not a goomerang envelope
    ├── AccessError                 who gets in, and what they may do
    │   ├── AuthenticationError     the handshake was refused (401/403)
    │   └── AuthorizationError      a client command was denied
    ├── LimitError                  a client went past a server limit
    ├── TransportError              the connection failed
    │   ├── ConnectError            could not open the WebSocket (also a ConnectionError)
    │   ├── ReconnectFailedError    a client gave up reconnecting
    │   ├── RecoveryError           publications missed while disconnected that cannot be recovered
    │   ├── ConnectionLostError     the connection ended under a pending call
    │   ├── HeartbeatTimeoutError   the peer stopped answering pings
    │   ├── MessageTooBigError      the peer closed with 1009 (message too big)
    │   ├── SlowConsumerError       a peer's outgoing queue stayed full
    │   │   └── SlowSubscriptionError  a subscription iterator's reader fell behind
    │   └── BrokerError             the pub/sub broker (NATS, Redis) failed or is unreachable
    ├── SyncTimeoutError            send_sync deadline passed (also a TimeoutError)
    ├── HandlerError                a local handler raised (reported to on_error)
    ├── HookError                   a hook raised (reported to on_error)
    ├── RouteError                  an HTTP route raised (reported to on_error)
    └── RemoteHandlerError          the peer's handler raised on our sync request
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AlreadyRunningError",
    "AuthenticationError",
    "AuthorizationError",
    "BrokerError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "DuplicateHandlerError",
    "DuplicateKindError",
    "EnvelopeDecodeError",
    "FrameDecodeError",
    "GoomerangError",
    "GroupError",
    "HandlerError",
    "HeartbeatTimeoutError",
    "HookError",
    "LimitError",
    "MessageTooBigError",
    "NoHandlerError",
    "NoReplyError",
    "NotRunningError",
    "PayloadDecodeError",
    "ProtocolError",
    "ReconnectFailedError",
    "RecoveryError",
    "RegistrationClosedError",
    "RemoteHandlerError",
    "RouteError",
    "SlowConsumerError",
    "SlowSubscriptionError",
    "SyncTimeoutError",
    "TextFrameError",
    "TopicError",
    "TransportError",
    "UnexpectedReplyError",
    "UnknownKindError",
    "UnknownReplyError",
    "UnsupportedPeerError",
    "UsageError",
]


class GoomerangError(Exception):
    """Root of every error raised or reported by goomerang."""


# The caller misused the API.


class UsageError(GoomerangError):
    """The caller used the API in a way it does not allow."""


class ConfigError(UsageError, ValueError):
    """An option failed validation; `problems` maps each bad field to why."""

    def __init__(self, owner: str, problems: dict[str, str]) -> None:
        self.owner = owner
        self.problems = problems
        super().__init__(owner, problems)

    def __str__(self) -> str:
        parts = "; ".join(f"{field!r}: {why}" for field, why in self.problems.items())
        return f"invalid {self.owner} option {parts}"


class NotRunningError(UsageError):
    """The operation needs a RUNNING peer."""

    def __init__(self, operation: str, status: str) -> None:
        self.operation = operation
        self.status = status
        super().__init__(operation, status)

    def __str__(self) -> str:
        return f"cannot {self.operation}: status is {self.status}, not RUNNING"


class AlreadyRunningError(UsageError):
    """The peer was already started (a server runs only once)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)

    def __str__(self) -> str:
        return self.what


class RegistrationClosedError(UsageError):
    """Handlers, middlewares and kinds must be registered before start."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)

    def __str__(self) -> str:
        return f"cannot register {self.what}: the peer already started"


class TopicError(UsageError, ValueError):
    """A topic or subscription pattern that breaks the topic rules."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(topic, reason)

    def __str__(self) -> str:
        return f"topic {self.topic!r}: {self.reason}"


class GroupError(UsageError, ValueError):
    """A queue group name that breaks the rules, or a group subscription the other end cannot take.

    Raised by the client before anything is sent (a bad name; a Go server,
    or one without the ``queue-groups`` extension), and reported by a server
    whose broker has no queue groups.
    """

    def __init__(self, group: str, reason: str) -> None:
        self.group = group
        self.reason = reason
        super().__init__(group, reason)

    def __str__(self) -> str:
        return f"queue group {self.group!r}: {self.reason}"


class DuplicateKindError(UsageError):
    """Two different message classes claim one kind (full name)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)

    def __str__(self) -> str:
        return f"kind {self.kind!r} is already registered with another class"


class DuplicateHandlerError(UsageError):
    """A second handler for a kind that already has one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)

    def __str__(self) -> str:
        return f"kind {self.kind!r} already has a handler"


class UnsupportedPeerError(UsageError):
    """The peer does not speak the extension an operation needs: nothing was sent.

    A Go peer speaks none (see :mod:`goomerang_runtime.extensions`), nor does
    a peer of this library with ``extensions=False``.
    """

    def __init__(self, peer: str, operation: str, extension: str) -> None:
        self.peer = peer
        self.operation = operation
        self.extension = extension
        super().__init__(peer, operation, extension)

    def __str__(self) -> str:
        return (
            f"cannot {self.operation} to {self.peer}: it did not agree on the {self.extension!r} extension"
            " (a Go client, or extensions=False); nothing was sent"
        )


class NoReplyError(UsageError):
    """A client's handler of a server's request finished without returning a reply.

    Reported to the client's error hooks; the server's caller gets
    :class:`RemoteHandlerError` with this error's name, at once.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)

    def __str__(self) -> str:
        return f"the handler of the server's request {self.kind!r} returned no reply"


# The peer sent something we cannot use.


class ProtocolError(GoomerangError):
    """The peer sent data that breaks the goomerang protocol."""


class FrameDecodeError(ProtocolError):
    """A binary WebSocket message that is not a serialized Frame."""

    def __init__(self, size: int, reason: str) -> None:
        self.size = size
        self.reason = reason
        super().__init__(size, reason)

    def __str__(self) -> str:
        return f"malformed frame of {self.size} bytes: {self.reason}"


class TextFrameError(ProtocolError):
    """A text WebSocket message; goomerang frames are binary only."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(size)

    def __str__(self) -> str:
        return f"text message of {self.size} characters ignored: frames must be binary"


class UnknownKindError(ProtocolError):
    """A frame whose kind is not in the receiver's registry."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)

    def __str__(self) -> str:
        return f"unknown message kind {self.kind!r}: register it first"


class NoHandlerError(ProtocolError):
    """A plain frame of a registered kind for which no handler is registered."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)

    def __str__(self) -> str:
        return f"no handler for message kind {self.kind!r}"


class PayloadDecodeError(ProtocolError):
    """A payload that does not parse as the message class of its kind."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(kind, reason)

    def __str__(self) -> str:
        return f"payload of kind {self.kind!r} does not parse: {self.reason}"


class UnknownReplyError(ProtocolError):
    """A sync reply whose uuid no caller waits for (it came too late)."""

    def __init__(self, uuid: str, kind: str) -> None:
        self.uuid = uuid
        self.kind = kind
        super().__init__(uuid, kind)

    def __str__(self) -> str:
        return f"sync reply {self.uuid!r} of kind {self.kind!r} has no waiting caller"


class UnexpectedReplyError(ProtocolError):
    """A sync reply whose kind is not one the caller accepts."""

    def __init__(self, got: str, expected: tuple[str, ...]) -> None:
        self.got = got
        self.expected = expected
        super().__init__(got, expected)

    def __str__(self) -> str:
        return f"sync reply of kind {self.got!r}, expected one of {list(self.expected)}"


class EnvelopeDecodeError(ProtocolError):
    """Bytes received from the broker that are not a goomerang envelope (another writer on our subjects?)."""

    def __init__(self, broker: str, size: int, reason: str) -> None:
        self.broker = broker
        self.size = size
        self.reason = reason
        super().__init__(broker, size, reason)

    def __str__(self) -> str:
        return f"malformed envelope of {self.size} bytes from {self.broker}: {self.reason}"


# Access.


class AccessError(GoomerangError):
    """Authentication or authorisation said no."""


class AuthenticationError(AccessError):
    """Raised by an authentication hook to refuse a handshake with `status` (401 or 403)."""

    def __init__(self, status: int = 401, reason: str = "") -> None:
        if status not in (401, 403):
            raise ValueError(f"status must be 401 or 403, not {status}")
        self.status = status
        self.reason = reason
        super().__init__(status, reason)

    def __str__(self) -> str:
        what = "unauthorized" if self.status == 401 else "forbidden"
        return f"{self.status} {what}" + (f": {self.reason}" if self.reason else "")


class AuthorizationError(AccessError):
    """A client's subscribe, publish or broadcast command was denied and dropped."""

    def __init__(self, peer: str, action: str, topic: str, kind: str) -> None:
        self.peer = peer
        self.action = action
        self.topic = topic
        self.kind = kind
        super().__init__(peer, action, topic, kind)

    def __str__(self) -> str:
        target = f" on {self.topic!r}" if self.topic else ""
        kind = f" of {self.kind!r}" if self.kind else ""
        return f"{self.peer} may not {self.action}{kind}{target}: dropped"


class LimitError(GoomerangError):
    """A client went past one of the server's limits; only that client is affected."""

    def __init__(self, peer: str, limit: str, value: float, detail: str) -> None:
        self.peer = peer
        self.limit = limit
        self.value = value
        self.detail = detail
        super().__init__(peer, limit, value, detail)

    def __str__(self) -> str:
        return f"{self.peer}: {self.limit} ({self.value:g}) exceeded: {self.detail}"


# The connection failed.


class TransportError(GoomerangError):
    """The network or the peer failed; a retry may succeed."""


class ConnectError(TransportError, ConnectionError):
    """The WebSocket connection could not be opened; `status` is the HTTP answer, if any.

    Also a :class:`ConnectionError` (so an :class:`OSError`), as asyncio's own
    connection failures are: ``except OSError`` around ``connect()`` catches
    it. `errno` is the socket error's number when the network failed
    (``errno.ECONNREFUSED``...), else None; `strerror` is `reason`.
    """

    def __init__(self, url: str, reason: str, status: int | None = None, errno: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(errno, reason)  # OSError's (errno, strerror)

    def __str__(self) -> str:
        return f"cannot connect to {self.url}: {self.reason}"

    def __repr__(self) -> str:
        return f"ConnectError({self.url!r}, {self.reason!r}, status={self.status!r}, errno={self.errno!r})"

    def __reduce__(self) -> tuple[type[ConnectError], tuple[str, str, int | None, int | None]]:
        return (type(self), (self.url, self.reason, self.status, self.errno))

    @property
    def retryable(self) -> bool:
        """Whether trying again may succeed: a network error, a timeout, 5xx, 408 or 429; not 401, 403, 404..."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class ReconnectFailedError(TransportError):
    """A client's reconnection policy ran out of attempts."""

    def __init__(self, attempts: int, last_error: BaseException | None) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(attempts, last_error)

    def __str__(self) -> str:
        if isinstance(self.last_error, ConnectError) and not self.last_error.retryable:
            return f"stopped reconnecting after {self.attempts} attempts, refused: {self.last_error}"
        return f"gave up reconnecting after {self.attempts} attempts: {self.last_error}"


class RecoveryError(TransportError):
    """Publications on `topic` that a reconnected client missed and cannot get back.

    `missed_from` .. `missed_to` (inclusive) are the server's offsets of the
    lost publications (`missed` of them): they left the history (its size
    bound or its ttl) before the client came back. All three are None when how
    much was lost is not known: the server is another instance (restarted, or
    another replica) whose offsets do not continue the old ones, or the
    subscription is a wildcard pattern, which is not recovered.
    """

    def __init__(
        self, topic: str, missed_from: int | None = None, missed_to: int | None = None, reason: str = ""
    ) -> None:
        self.topic = topic
        self.missed_from = missed_from
        self.missed_to = missed_to
        self.reason = reason
        super().__init__(topic, missed_from, missed_to, reason)

    @property
    def missed(self) -> int | None:
        """How many publications are lost; None when not known."""
        if self.missed_from is None or self.missed_to is None:
            return None
        return self.missed_to - self.missed_from + 1

    def __str__(self) -> str:
        if self.missed is None:
            return f"publications on {self.topic!r} missed while disconnected: {self.reason or 'unknown how many'}"
        return (
            f"{self.missed} publications on {self.topic!r} (offsets {self.missed_from}..{self.missed_to}) "
            f"missed while disconnected are no longer in the server's history"
        )


class ConnectionLostError(TransportError):
    """The connection ended while something was still waiting on it."""

    def __init__(self, reason: str, code: int | None = None, frames: int = 0) -> None:
        self.reason = reason
        self.code = code
        self.frames = frames
        """Accepted frames this report accounts for: queued and never sent, or received and never handled."""
        super().__init__(reason, code, frames)

    def __str__(self) -> str:
        suffix = f" (close code {self.code})" if self.code is not None else ""
        return f"connection lost: {self.reason}{suffix}"


class HeartbeatTimeoutError(TransportError):
    """No pong came back within the heartbeat timeout; the peer is gone."""

    def __init__(self, timeout: float, peer: str = "") -> None:
        self.timeout = timeout
        self.peer = peer
        super().__init__(timeout, peer)

    def __str__(self) -> str:
        who = f" from {self.peer}" if self.peer else ""
        return f"no pong{who} within {self.timeout:g}s: closing the connection"


class MessageTooBigError(TransportError):
    """A message exceeded a size limit; the connection closed with 1009."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)

    def __str__(self) -> str:
        return f"message too big, connection closed with code 1009: {self.detail}"


class SlowConsumerError(TransportError):
    """A peer did not drain its outgoing queue in time and was disconnected."""

    def __init__(self, peer: str, queued: int, waited: float, queued_bytes: int = 0) -> None:
        self.peer = peer
        self.queued = queued
        self.waited = waited
        self.queued_bytes = queued_bytes
        """Bytes of the frames waiting for the peer when it was disconnected."""
        super().__init__(peer, queued, waited, queued_bytes)

    def __str__(self) -> str:
        return (
            f"slow consumer {self.peer}: outgoing queue full ({self.queued} frames, {self.queued_bytes} bytes)"
            f" for {self.waited:g}s, disconnected"
        )


class SlowSubscriptionError(SlowConsumerError):
    """A subscription iterator's reader fell behind: its buffer was full, so the subscription ended.

    The client's connection and its other subscriptions go on; the iterator
    yields what it had buffered, then raises this. `queued` and
    `queued_bytes` are what was waiting unread; the publication that did not
    fit, and what follows it, are not delivered to this subscription.
    """

    def __init__(self, topic: str, kind: str, queued: int, queued_bytes: int) -> None:
        self.topic = topic
        self.kind = kind
        super().__init__(f"subscription {topic!r}", queued, 0.0, queued_bytes)

    def __str__(self) -> str:
        return (
            f"slow consumer: subscription {self.topic!r} of {self.kind!r} left {self.queued} messages"
            f" ({self.queued_bytes} bytes) unread, its limit: the subscription ended"
        )

    def __reduce__(self) -> tuple[type[SlowSubscriptionError], tuple[str, str, int, int]]:
        return (type(self), (self.topic, self.kind, self.queued, self.queued_bytes))


class BrokerError(TransportError):
    """The pub/sub broker failed: unreachable, connection lost, or a message it refused.

    Local delivery never depends on the broker; only other replicas miss what
    this error says. `dropped` counts publications that will never reach them.
    """

    def __init__(self, broker: str, reason: str, dropped: int = 0) -> None:
        self.broker = broker
        self.reason = reason
        self.dropped = dropped
        super().__init__(broker, reason, dropped)

    def __str__(self) -> str:
        suffix = f" ({self.dropped} publications lost between replicas)" if self.dropped else ""
        return f"broker {self.broker}: {self.reason}{suffix}"


# Everything else.


class SyncTimeoutError(GoomerangError, TimeoutError):
    """No sync reply arrived before the deadline."""

    def __init__(self, kind: str, timeout: float) -> None:
        self.kind = kind
        self.timeout = timeout
        super().__init__(kind, timeout)

    def __str__(self) -> str:
        return f"no reply to {self.kind!r} within {self.timeout:g}s"


class HandlerError(GoomerangError):
    """A local handler (or middleware) raised; the original is `__cause__`."""

    def __init__(self, kind: str, error: BaseException) -> None:
        self.kind = kind
        self.error = error
        super().__init__(kind, error)

    def __str__(self) -> str:
        return f"handler for {self.kind!r} raised {type(self.error).__name__}: {self.error}"


class HookError(GoomerangError):
    """A user hook raised; the original is `__cause__`."""

    def __init__(self, hook: str, error: BaseException) -> None:
        self.hook = hook
        self.error = error
        super().__init__(hook, error)

    def __str__(self) -> str:
        return f"hook {self.hook} raised {type(self.error).__name__}: {self.error}"


class RouteError(GoomerangError):
    """An HTTP route of the server raised; it answered 500. The original is `__cause__`."""

    def __init__(self, path: str, error: BaseException) -> None:
        self.path = path
        self.error = error
        super().__init__(path, error)

    def __str__(self) -> str:
        return f"route {self.path!r} raised {type(self.error).__name__}: {self.error}"


class RemoteHandlerError(GoomerangError):
    """The peer's handler raised while serving our sync request."""

    def __init__(self, request_kind: str, error_type: str, detail: str) -> None:
        self.request_kind = request_kind
        self.error_type = error_type
        self.detail = detail
        super().__init__(request_kind, error_type, detail)

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"remote handler for {self.request_kind!r} failed with {self.error_type}{detail}"
