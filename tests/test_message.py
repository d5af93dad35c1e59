from __future__ import annotations

import datetime as dt

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import Message, Metadata, kind_of


def test_fluent_and_keyword_construction_are_equal() -> None:
    fluent = Message(MessageV1(message="m")).set_header("a", "1").set_header("b", "2")
    keywords = Message(payload=MessageV1(message="m"), headers={"a": "1", "b": "2"})
    assert fluent == keywords
    assert fluent.kind == "goomerang.example.MessageV1" == kind_of(MessageV1)
    assert fluent.get_header("a") == "1"
    assert fluent.get_header("missing", "default") == "default"


def test_headers_are_copied_not_shared() -> None:
    source = {"a": "1"}
    msg = Message(MessageV1(), source)
    msg.set_header("b", "2")
    assert source == {"a": "1"}


def test_metadata_creation_is_utc_datetime() -> None:
    meta = Metadata("k", creation_ns=1_700_000_000_500_000_000)
    assert meta.creation == dt.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=dt.UTC)
    assert Metadata("k").creation is None
