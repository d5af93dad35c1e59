"""A bare WebSocket client on a plain socket that behaves as the Go client does.

gorilla/websocket (under the Go library) answers a close frame and then
never closes TCP itself; websockets' own client does. This client sends
and reads frames, and closes its socket only when told to, so tests can
see what a server does with a peer like that.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

from .helpers import WAIT

OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


@dataclass(frozen=True)
class RawFrame:
    """One WebSocket frame as it arrived."""

    fin: bool
    opcode: int
    data: bytes

    @property
    def close_code(self) -> int | None:
        """The code of a close frame (None without one)."""
        return struct.unpack("!H", self.data[:2])[0] if self.opcode == OP_CLOSE and len(self.data) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        """The reason bytes of a close frame."""
        return self.data[2:]


class RawClient:
    """A connected raw client: its handshake response headers and frame I/O."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]) -> None:
        self.reader = reader
        self.writer = writer
        self.response_headers = headers

    @classmethod
    async def connect(cls, addr: str, path: str = "/ws", headers: dict[str, str] | None = None) -> RawClient:
        """Open the socket and do the opening handshake; fails unless the server answers 101."""
        host, _, port = addr.rpartition(":")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {addr}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        status, *fields = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 101"), status
        response = {}
        for field in fields:
            if field:
                name, _, value = field.partition(":")
                response[name.strip().lower()] = value.strip()
        return cls(reader, writer, response)

    @classmethod
    async def connect_raw(cls, addr: str, extra: dict[str, list[str]], path: str = "/ws") -> RawClient:
        """Send an upgrade request with `extra` headers (each value a line of its own); no answer read."""
        host, _, port = addr.rpartition(":")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1"]
        if "Host" not in extra:
            lines.append(f"Host: {addr}")
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, values in extra.items() for value in values]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return cls(reader, writer, {})

    async def status_line(self) -> str:
        """The first line of the server's HTTP answer."""
        return (await asyncio.wait_for(self.reader.readline(), WAIT)).decode().strip()

    def send(self, opcode: int, data: bytes = b"", *, fin: bool = True) -> None:
        """Write one masked frame."""
        mask = os.urandom(4)
        size = len(data)
        head = bytes([(0x80 if fin else 0) | opcode])
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", size)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
        self.writer.write(head + mask + masked)

    def send_close(self, code: int = 1000) -> None:
        """Start the close handshake."""
        self.send(OP_CLOSE, struct.pack("!H", code))

    async def recv(self) -> RawFrame:
        """The next frame from the server; IncompleteReadError once it closed TCP."""
        async with asyncio.timeout(WAIT):
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            data = await self.reader.readexactly(size)
        return RawFrame(bool(first & 0x80), first & 0x0F, data)

    async def recv_until_close(self) -> RawFrame:
        """Skip data frames up to the server's close frame."""
        while True:
            frame = await self.recv()
            if frame.opcode == OP_CLOSE:
                return frame

    async def server_closed_tcp(self) -> bool:
        """Whether the server closed TCP (EOF) within the wait."""
        async with asyncio.timeout(WAIT):
            await self.reader.read()  # whatever is left, up to EOF
        return self.reader.at_eof()

    async def close(self) -> None:
        """The close handshake (code 1000), then the socket."""
        self.send_close(1000)
        await self.recv_until_close()
        self.abort()

    def abort(self) -> None:
        """Drop the socket (test teardown)."""
        self.writer.transport.abort()

    def reset(self) -> None:
        """Drop the socket with a TCP reset, as a crashed or killed peer's kernel does."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
