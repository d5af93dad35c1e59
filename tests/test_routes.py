"""Plain HTTP routes on the server's own listener, beside the WebSocket endpoint."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    HttpRequest,
    HttpResponse,
    RegistrationClosedError,
    RouteError,
    Server,
    Status,
    health_route,
)
from goomerang_runtime.routes import text_response

from .helpers import WAIT, Collector, http_get
from .test_server import echo


async def test_a_route_answers_get_while_the_websocket_endpoint_keeps_working() -> None:
    seen: list[HttpRequest] = []

    def hello(request: HttpRequest) -> tuple[int, Mapping[str, str], bytes]:
        seen.append(request)
        return 201, {"Content-Type": "text/plain", "X-Answer": "42", "Content-Length": "999"}, b"hello"

    server = Server()
    server.handle(MessageV1, echo)
    server.route("/hello", hello)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            answer = await http_get(server.addr, "/hello?name=ana", {"X-Custom": "yes"})
            reply = await client.send_sync(MessageV1(message="still ws"), timeout=WAIT, expect=ReplyV1)
    assert answer.status == 201
    assert answer.body == b"hello"
    assert answer.headers["x-answer"] == "42"
    assert answer.headers["content-type"] == "text/plain"
    assert answer.headers["content-length"] == "5"  # computed, never the route's
    assert [(r.path, r.query, r.headers["x-custom"]) for r in seen] == [("/hello", "name=ana", "yes")]
    assert reply.payload.message == "still ws"


async def test_unrouted_paths_stay_404_and_a_raising_route_answers_500() -> None:
    def broken(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("no luck")

    server = Server()
    errors = Collector()
    server.on_error(errors)
    server.route("/broken", broken)
    async with server:
        assert (await http_get(server.addr, "/broken")).status == 500
        assert (await http_get(server.addr, "/elsewhere")).status == 404
        with pytest.raises(websockets.InvalidStatus) as info:
            async with ws_connect(f"ws://{server.addr}/elsewhere"):
                pass
        assert info.value.response.status_code == 404
    [err] = await errors.wait_for(RouteError)
    assert err.path == "/broken"
    assert isinstance(err.__cause__, RuntimeError)
    assert "no luck" in str(err)


async def test_route_registration_rules() -> None:
    server = Server()
    server.route("/ok", health_route(server))
    for bad in ("/ws", "/wss", "nope", "/q?x=1", "/ok"):
        with pytest.raises(ValueError, match=r"route|endpoint"):
            server.route(bad, health_route(server))
    async with server:
        with pytest.raises(RegistrationClosedError):
            server.route("/late", health_route(server))


async def test_health_route_answers_the_status_name() -> None:
    server = Server()
    server.route("/healthz", health_route(server))
    probe = health_route(server)
    assert probe(HttpRequest("/healthz")) == text_response(503, "NEW\n")
    async with server:
        answer = await http_get(server.addr, "/healthz")
        assert (answer.status, answer.body) == (200, b"RUNNING\n")
        assert answer.headers["content-type"].startswith("text/plain")

    class Closing:
        status = Status.CLOSING

    assert health_route(Closing())(HttpRequest("/healthz")).status == 503
    assert probe(HttpRequest("/healthz")) == text_response(503, "CLOSED\n")
