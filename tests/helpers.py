"""Shared test helpers: error collectors, certificates, raw WebSocket peers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from goomerang_runtime.config import default_transport

E = TypeVar("E", bound=BaseException)

WAIT = 10.0

TRANSPORT = default_transport()
"""The transport of every Server and Client of this run that names none (``$GOOMERANG_TRANSPORT``)."""


def only_on(transport: str, reason: str) -> pytest.MarkDecorator:
    """Skip a test that is about one transport when the run is on the other one."""
    return pytest.mark.skipif(transport != TRANSPORT, reason=f"{transport} transport only: {reason}")


OUR_PEER = {
    "Goomerang-Extensions": "close-codes, error-reply, queue-groups, recovery, server-requests, topic-header, wildcards"
}
"""Handshake headers of a raw client that speaks as this library does (without them: a Go client)."""
"""Upper bound of any single wait in the tests, in seconds."""


class Collector:
    """An error/event hook that records what it gets and lets tests await it."""

    def __init__(self) -> None:
        self.items: list[BaseException] = []
        self._changed = asyncio.Event()

    def __call__(self, item: BaseException) -> None:
        self.items.append(item)
        self._changed.set()

    def of(self, cls: type[E]) -> list[E]:
        return [item for item in self.items if isinstance(item, cls)]

    async def wait_for(self, cls: type[E], count: int = 1, timeout: float = WAIT) -> list[E]:
        """Wait until `count` items of `cls` arrived; returns them."""
        async with asyncio.timeout(timeout):
            while len(self.of(cls)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(cls)


class Counter:
    """Counts calls and lets tests await a number of them."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def hit(self, n: int = 1) -> None:
        self.count += n
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


async def wait_until(predicate: Callable[[], bool], event: asyncio.Event, timeout: float = WAIT) -> None:
    """Wait until `predicate()` holds, re-checking each time `event` is set."""
    async with asyncio.timeout(timeout):
        while not predicate():
            event.clear()
            await event.wait()


@dataclass
class Certs:
    """A throwaway CA and a server (and client) certificate signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_cert)
        return ctx

    def client_context(self, with_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if with_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certs(directory: Path) -> Certs:
    """Create a CA, a server certificate for 127.0.0.1/localhost and a client one."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("goomerang test CA"))
        .issuer_name(_name("goomerang test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    paths = Certs(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
    )
    paths.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_pem, server_key = leaf("127.0.0.1", server=True)
    paths.server_cert.write_bytes(server_pem)
    paths.server_key.write_bytes(server_key)
    client_pem, client_key = leaf("goomerang test client", server=False)
    paths.client_cert.write_bytes(client_pem)
    paths.client_key.write_bytes(client_key)
    return paths


@dataclass
class HttpAnswer:
    """A plain HTTP response read off a socket."""

    status: int
    headers: dict[str, str]
    body: bytes


async def http_get(addr: str, path: str, headers: dict[str, str] | None = None) -> HttpAnswer:
    """``GET path`` over a fresh TCP connection to ``host:port``; header names lowercased."""
    host, port = addr.rsplit(":", 1)
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection(host, int(port))
        lines = [f"GET {path} HTTP/1.1", f"Host: {addr}"]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        answer_headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            answer_headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(answer_headers.get("content-length", "0")))
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return HttpAnswer(int(status_line.split()[1]), answer_headers, body)
