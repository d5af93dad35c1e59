"""Plain HTTP routes answered on the server's own listener, beside ``/ws``.

``server.route("/healthz", health_route(server))`` makes ``GET /healthz`` on
the server's port answer without a WebSocket upgrade; the metrics module uses
the same mechanism for ``GET /metrics``. A route is a plain function from an
:class:`HttpRequest` to an :class:`HttpResponse` (or any
``(status, headers, body)`` tuple). It runs in the event loop during the
HTTP handshake, so it must be quick and must not block.
"""

from __future__ import annotations

import email.utils
import http
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeAlias
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .errors import RouteError
from .status import Status

__all__ = ["HttpRequest", "HttpResponse", "Route", "health_route", "text_response"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a route gets: a ``GET`` request for its path."""

    path: str
    """The path, without the query string."""
    query: str = ""
    """The query string, without the ``?``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers, names lowercased (the last value of a repeated one)."""


class HttpResponse(NamedTuple):
    """What a route answers; a plain ``(status, headers, body)`` tuple also works."""

    status: int
    headers: Mapping[str, str]
    body: bytes


Route: TypeAlias = Callable[[HttpRequest], tuple[int, Mapping[str, str], bytes]]
"""A function answering ``GET`` requests for one path."""


def text_response(status: int, text: str) -> HttpResponse:
    """A ``text/plain`` UTF-8 response."""
    return HttpResponse(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())


class _HasStatus(Protocol):
    @property
    def status(self) -> Status: ...


def health_route(peer: _HasStatus) -> Route:
    """A route answering the peer's status name: 200 when RUNNING, 503 otherwise."""

    def health(request: HttpRequest) -> HttpResponse:
        status = peer.status
        code = http.HTTPStatus.OK if status is Status.RUNNING else http.HTTPStatus.SERVICE_UNAVAILABLE
        return text_response(code, status.name + "\n")

    return health


def build_response(answer: tuple[int, Mapping[str, str], bytes]) -> Response:
    """Build the handshake response that carries a route's answer (runtime use)."""
    status, extra, body = answer
    code = http.HTTPStatus(status)
    headers = Headers([("Date", email.utils.formatdate(usegmt=True)), ("Connection", "close")])
    for key, value in extra.items():
        if key.lower() not in ("content-length", "connection", "date"):
            headers[key] = value
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/octet-stream"
    headers["Content-Length"] = str(len(body))
    return Response(code.value, code.phrase, headers, body)


def answer_route(fn: Route, request: Request, report: Callable[[BaseException], None]) -> Response:
    """Run a route for a handshake request (runtime use).

    A route that raises answers 500 and is reported as :class:`RouteError`.
    """
    url = urlsplit(request.path)
    try:
        headers = {key.lower(): value for key, value in request.headers.raw_items()}
        return build_response(fn(HttpRequest(url.path, url.query, headers)))
    except Exception as exc:
        err = RouteError(url.path, exc)
        err.__cause__ = exc
        report(err)
        return build_response(text_response(http.HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error\n"))
