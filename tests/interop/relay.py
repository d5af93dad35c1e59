"""A TCP relay that sits between two goomerang peers and records what passes.

Bytes are forwarded unchanged, in both directions, with back-pressure (a
peer that stops reading stops the relay reading from the other side). In
parallel the relay parses what it forwards, without ever affecting the
forwarding: the HTTP upgrade request and response heads, then the WebSocket
frames of each direction (unmasked, fragments reassembled), and decodes each
binary message as a ``goomerang.protocol.Frame``, keeping its raw bytes.

Over TLS the bytes are opaque: a relay made with ``parse=False`` only
forwards and counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from goomerang_runtime.protocol_pb2 import Frame

from ..helpers import WAIT

__all__ = ["HttpHead", "Relay", "RelayedConnection", "Stream", "WsFrame", "WsMessage"]

Side = Literal["client", "server"]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def unmask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte masking `key` (RFC 6455 5.3), fast for MiB payloads."""
    if not data:
        return data
    n = len(data)
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


@dataclass
class HttpHead:
    """The start line and headers of an HTTP request or response."""

    start_line: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive; repeated ones joined by commas)."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None

    def has(self, name: str) -> bool:
        """Whether header `name` is present (case-insensitive)."""
        return any(key.lower() == name.lower() for key, _ in self.headers)

    @property
    def status(self) -> int:
        """The status code of a response head."""
        return int(self.start_line.split()[1])


@dataclass
class WsFrame:
    """One WebSocket frame as it was on the wire (payload unmasked)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None when the frame has no body)."""
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int.from_bytes(self.payload[:2], "big")

    @property
    def close_reason(self) -> bytes:
        """The reason bytes of a close frame."""
        return self.payload[2:]


@dataclass
class WsMessage:
    """A whole data message: its frames reassembled and, if binary, decoded."""

    opcode: int
    data: bytes
    frames: list[WsFrame]
    frame: Frame | None = None
    """The goomerang Frame decoded from a binary message (None if it did not parse)."""
    decode_error: str | None = None

    @property
    def fragments(self) -> int:
        """How many WebSocket frames carried this message."""
        return len(self.frames)

    @property
    def masked(self) -> bool:
        """Whether every frame of the message was masked."""
        return all(f.masked for f in self.frames)


@dataclass
class Stream:
    """What one side wrote, parsed."""

    side: Side
    bytes_seen: int = 0
    head: HttpHead | None = None
    frames: list[WsFrame] = field(default_factory=list)
    messages: list[WsMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    eof: bool = False
    _buf: bytearray = field(default_factory=bytearray)
    _parts: list[WsFrame] = field(default_factory=list)
    _in_frames: bool = False

    @property
    def controls(self) -> list[WsFrame]:
        """Close, ping and pong frames, in order."""
        return [f for f in self.frames if f.opcode >= OP_CLOSE]

    @property
    def closes(self) -> list[WsFrame]:
        """Close frames, in order."""
        return [f for f in self.frames if f.opcode == OP_CLOSE]

    @property
    def pings(self) -> list[WsFrame]:
        """Ping frames, in order."""
        return [f for f in self.frames if f.opcode == OP_PING]

    @property
    def goomerang_frames(self) -> list[Frame]:
        """The decoded goomerang frames of the binary messages, in order."""
        return [m.frame for m in self.messages if m.frame is not None]

    def feed(self, data: bytes, upgraded: Callable[[], bool | None]) -> None:
        """Parse `data` (what this side just wrote)."""
        self.bytes_seen += len(data)
        self._buf += data
        if self.head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
            self.head = HttpHead(lines[0], headers)
            del self._buf[: end + 4]
        if not self._in_frames:
            state = upgraded()
            if state is None:  # the other side's head is not parsed yet
                return
            if not state:
                self._buf.clear()  # not a WebSocket connection: nothing more to parse
                return
            self._in_frames = True
        self._parse_frames()

    def _parse_frames(self) -> None:
        buf = self._buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            masked = bool(b1 & 0x80)
            key = b""
            if masked:
                if len(buf) < pos + 4:
                    return
                key = bytes(buf[pos : pos + 4])
                pos += 4
            if len(buf) < pos + length:
                return
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            if masked:
                payload = unmask(payload, key)
            frame = WsFrame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, masked, payload)
            self.frames.append(frame)
            self._assemble(frame)

    def _assemble(self, frame: WsFrame) -> None:
        if frame.opcode >= OP_CLOSE:
            return
        if frame.opcode == OP_CONTINUATION:
            if not self._parts:
                self.errors.append("continuation frame without a message")
                return
        elif self._parts:
            self.errors.append("new data frame inside a fragmented message")
            self._parts = []
        self._parts.append(frame)
        if not frame.fin:
            return
        parts, self._parts = self._parts, []
        msg = WsMessage(parts[0].opcode, b"".join(p.payload for p in parts), parts)
        if msg.opcode == OP_BINARY:
            try:
                msg.frame = Frame.FromString(msg.data)
            except Exception as exc:
                msg.decode_error = f"{type(exc).__name__}: {exc}"
        self.messages.append(msg)


class RelayedConnection:
    """One client connection through the relay, parsed both ways."""

    def __init__(self, index: int, parse: bool) -> None:
        self.index = index
        self.parse = parse
        self.from_client = Stream("client")
        self.from_server = Stream("server")
        self.changed = asyncio.Event()
        self.closed = False
        """Both directions ended."""

    @property
    def request(self) -> HttpHead | None:
        """The client's upgrade request head."""
        return self.from_client.head

    @property
    def response(self) -> HttpHead | None:
        """The server's response head."""
        return self.from_server.head

    def stream(self, side: Side) -> Stream:
        """What `side` wrote."""
        return self.from_client if side == "client" else self.from_server

    def _upgraded(self) -> bool | None:
        response = self.from_server.head
        if response is None:
            return None
        return response.start_line.split()[1:2] == ["101"]

    def record(self, side: Side, data: bytes) -> None:
        """Parse bytes `side` wrote (never raises: parse errors are recorded)."""
        stream = self.stream(side)
        if not self.parse:
            stream.bytes_seen += len(data)
        else:
            try:
                stream.feed(data, self._upgraded)
                if side == "server" and self.from_client._buf and self.from_client.head is not None:
                    self.from_client.feed(b"", self._upgraded)  # frames that came before the 101 was parsed
            except Exception as exc:
                stream.errors.append(f"parser: {type(exc).__name__}: {exc}")
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
        """Wait (bounded) until `predicate()` holds, re-checking whenever bytes pass."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"relay connection #{self.index}: timed out waiting for {what or predicate}") from None


class Relay:
    """Listens on 127.0.0.1 (a free port) and relays each connection to `target` (``host:port``)."""

    def __init__(self, target: str, parse: bool = True) -> None:
        self.target = target
        self.parse = parse
        self.connections: list[RelayedConnection] = []
        self.changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def addr(self) -> str:
        """``host:port`` clients connect to."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> Relay:
        """Start listening."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()  # the pumps see EOF or an error and end
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=WAIT)
            for task in stuck:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), WAIT)

    async def wait_connections(self, count: int, timeout: float = WAIT) -> None:
        """Wait (bounded) until `count` connections were accepted."""
        async with asyncio.timeout(timeout):
            while len(self.connections) < count:
                self.changed.clear()
                await self.changed.wait()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = RelayedConnection(len(self.connections), self.parse)
        self.connections.append(conn)
        self._writers.append(client_writer)
        self.changed.set()
        try:
            host, port = self.target.rsplit(":", 1)
            try:
                server_reader, server_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                client_writer.transport.abort()
                return
            self._writers.append(server_writer)
            await asyncio.gather(
                self._pump(conn, "client", client_reader, server_writer),
                self._pump(conn, "server", server_reader, client_writer),
            )
            for writer in (client_writer, server_writer):
                writer.close()
        finally:
            conn.closed = True
            conn.changed.set()
            self._tasks.discard(task)

    async def _pump(
        self, conn: RelayedConnection, side: Side, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Forward what `side` writes to the other side until EOF; then half-close it."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    conn.stream(side).eof = True
                    conn.changed.set()
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                conn.record(side, data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # A reset on one side: reset the other one too.
            conn.stream(side).eof = True
            writer.transport.abort()
