"""Plain sends, sync requests and big messages, in both directions."""

from __future__ import annotations

import asyncio

import pytest

from .harness import Direction, Interop
from .model import FULL, Msg, SyncFailed
from .protowire import UUID_RE

MESSAGE = FULL["MessageV1"]
REPLY = FULL["ReplyV1"]
BAD_REPLY = FULL["BadReplyV1"]


@pytest.mark.scenario("plain send with headers (client -> server)")
async def test_plain_send_with_headers(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    await client.send(Msg("MessageV1", "hello", {"k1": "v1", "Key-Two": "value two"}))
    await client.send(Msg("MessageV1", "bare"))
    # A Go server runs handlers concurrently: arrival order is not kept.
    got = {d.text: d for d in await server.received.wait_for(2)}
    first, second = got["hello"], got["bare"]
    assert (first.kind, first.text, first.headers) == (MESSAGE, "hello", {"k1": "v1", "Key-Two": "value two"})
    assert (first.uuid, first.is_sync) == ("", False)
    assert (second.text, second.headers, second.uuid, second.is_sync) == ("bare", {}, "", False)


@pytest.mark.scenario("plain send with headers (server -> client)")
async def test_server_pushes_plain_message_with_headers(interop: Interop) -> None:
    await interop.start_server()
    client = await interop.new_client()
    await client.send(Msg("MessageV1", "echo:push me", {"trace": "abc", "n": "1"}))
    [pushed] = await client.received.wait_for(1)
    assert (pushed.kind, pushed.text, pushed.headers) == (REPLY, "re:echo:push me", {"trace": "abc", "n": "1"})
    assert (pushed.uuid, pushed.is_sync, pushed.topic) == ("", False, "")


@pytest.mark.scenario("sync request with reply headers")
async def test_sync_request_with_reply_headers(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    reply = await client.send_sync(Msg("MessageV1", "ana", {"user": "ana"}))
    assert (reply.kind, reply.text, reply.headers, reply.is_sync) == (REPLY, "re:ana", {"reply": "yes"}, True)
    [request] = await server.received.wait_for(1)
    assert (request.kind, request.text, request.headers, request.is_sync) == (MESSAGE, "ana", {"user": "ana"}, True)
    assert UUID_RE.match(request.uuid), request.uuid
    assert reply.uuid == request.uuid
    assert client.received.items == []  # a sync reply never reaches the handlers


@pytest.mark.scenario("sync: second reply kind (BadReplyV1)")
async def test_sync_second_reply_kind(interop: Interop) -> None:
    await interop.start_server()
    client = await interop.new_client()
    bad = await client.send_sync(Msg("MessageV1", "bad:nope"))
    good = await client.send_sync(Msg("MessageV1", "fine"))
    assert (bad.kind, bad.text, bad.headers) == (BAD_REPLY, "re:bad:nope", {"reply": "yes"})
    assert (good.kind, good.text) == (REPLY, "re:fine")


@pytest.mark.scenario("sync: 50 concurrent calls, each correlated")
async def test_fifty_concurrent_sync_calls(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    texts = [f"bad:{i}" if i % 5 == 0 else f"call-{i}" for i in range(50)]
    replies = await asyncio.gather(*(client.send_sync(Msg("MessageV1", t, {"i": str(i)})) for i, t in enumerate(texts)))
    for text, reply in zip(texts, replies, strict=True):
        assert reply.text == "re:" + text
        assert reply.kind == (BAD_REPLY if text.startswith("bad:") else REPLY)
        assert reply.headers == {"reply": "yes"}
    requests = await server.received.wait_for(50)
    assert len({r.uuid for r in requests}) == 50
    assert {r.uuid: r.text for r in requests} == {r.uuid: t for r, t in zip(replies, texts, strict=True)}


@pytest.mark.scenario("sync: handler sends no reply (caller times out, nothing on the wire)")
async def test_sync_without_reply_times_out_and_sends_nothing(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    # The Go server has no failing handler but a silent one; the Python server has both.
    texts = ["silent:1"] if interop.direction is Direction.PY_CLIENT else ["silent:1", "raise:2"]
    for text in texts:
        with pytest.raises(SyncFailed) as failed:
            await client.send_sync(Msg("MessageV1", text), timeout=1.0)
        assert "deadline" in str(failed.value) or "Timeout" in str(failed.value), failed.value
    await client.barrier()  # the server is still serving
    conn = interop.conn(client)
    uuids = {r.uuid for r in await server.received.wait_for(len(texts))}
    answered = [(f.kind, f.uuid, f.is_sync) for f in conn.from_server.goomerang_frames if f.uuid in uuids]
    assert answered == [], f"the server answered requests it had no reply for: {answered}"
    go = server if interop.direction is Direction.PY_CLIENT else client
    assert go.errors == []


@pytest.mark.scenario("messages over 4 KiB (fragmented by Go)")
async def test_messages_over_4_kib(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    text = "".join(chr(ord("a") + i % 26) for i in range(6000))
    await client.send(Msg("MessageV1", text, {"size": "6000"}))
    reply = await client.send_sync(Msg("MessageV1", text))
    got = {d.is_sync: d for d in await server.received.wait_for(2)}
    plain, request = got[False], got[True]
    assert plain.has_text(text)
    assert plain.headers == {"size": "6000"}
    assert request.has_text(text)
    assert reply.has_text("re:" + text)
    go_big = [m for m in interop.go_wrote(interop.conn(client)).messages if len(m.data) > 4096]
    assert go_big, "the Go peer wrote no message over 4 KiB"
    if interop.direction is Direction.GO_CLIENT:  # gorilla's server writes one frame; its client fragments
        assert all(m.fragments > 1 for m in go_big), [m.fragments for m in go_big]


@pytest.mark.scenario("messages of 3 MiB")
async def test_messages_of_3_mib(interop: Interop) -> None:
    server = await interop.start_server()
    client = await interop.new_client()
    text = "0123456789abcdef" * (3 * 1024 * 1024 // 16)
    reply = await client.send_sync(Msg("MessageV1", text, {"size": "3MiB"}), timeout=20)
    [request] = await server.received.wait_for(1)
    assert request.has_text(text)
    assert request.headers == {"size": "3MiB"}
    assert reply.kind == REPLY
    assert reply.has_text("re:" + text)
    await client.send(Msg("MessageV1", "echo:" + text))
    [pushed] = await client.received.wait_for(1, timeout=20)
    assert pushed.has_text("re:echo:" + text)
