from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import DuplicateKindError, MessageRegistry, PayloadDecodeError, UnknownKindError


def test_register_and_decode() -> None:
    reg = MessageRegistry()
    assert reg.register(MessageV1) == "goomerang.example.MessageV1"
    reg.register(MessageV1)  # idempotent
    assert "goomerang.example.MessageV1" in reg
    assert list(reg) == ["goomerang.example.MessageV1"]
    assert reg.decode("goomerang.example.MessageV1", MessageV1(message="x").SerializeToString()) == MessageV1(
        message="x"
    )


def test_unknown_kind_and_bad_bytes() -> None:
    reg = MessageRegistry()
    reg.register(ReplyV1)
    with pytest.raises(UnknownKindError):
        reg.get("goomerang.example.MessageV1")
    with pytest.raises(PayloadDecodeError):
        reg.decode("goomerang.example.ReplyV1", b"\x0a\x10short")


def test_another_class_with_the_same_name_is_rejected() -> None:
    reg = MessageRegistry()
    reg.register(MessageV1)
    # The same full name from another descriptor pool: a different class.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="impostor.proto",
            package="goomerang.example",
            message_type=[descriptor_pb2.DescriptorProto(name="MessageV1")],
        )
    )
    impostor = message_factory.GetMessageClass(pool.FindMessageTypeByName("goomerang.example.MessageV1"))
    assert impostor is not MessageV1
    with pytest.raises(DuplicateKindError, match=r"goomerang\.example\.MessageV1"):
        reg.register(impostor)
