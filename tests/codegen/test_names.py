from __future__ import annotations

import pytest

from goomerang_codegen.names import (
    import_aliases,
    output_path,
    pb2_module,
    py_identifier,
    snake_case,
    topic_class_name,
)


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("Join", "join"),
        ("SayHello", "say_hello"),
        ("HTTPStatus", "http_status"),
        ("getHTTPResponseCode", "get_http_response_code"),
        ("Import", "import_"),
        ("Class", "class_"),
        ("Lambda", "lambda_"),
        ("None", "none"),
        ("V2Thing", "v2_thing"),
        ("already_snake", "already_snake"),
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake
    assert snake.isidentifier()


def test_reserved_words_get_a_suffix() -> None:
    assert py_identifier("def") == "def_"
    assert py_identifier("match") == "match"  # soft keywords are fine identifiers


@pytest.mark.parametrize(
    ("pattern", "alias", "name"),
    [
        ("rooms.*", "", "RoomsTopic"),
        ("chat.rooms.>", "", "ChatRoomsTopic"),
        ("lobby", "", "LobbyTopic"),
        ("user-events.*", "", "UserEventsTopic"),
        ("*.status", "AnyStatus", "AnyStatusTopic"),
        ("*.>", "", ""),
        ("1st.topic", "", ""),
    ],
)
def test_topic_class_name(pattern: str, alias: str, name: str) -> None:
    assert topic_class_name(pattern, alias) == name


def test_module_and_output_paths() -> None:
    assert pb2_module("chat/v1/chat.proto") == "chat.v1.chat_pb2"
    assert pb2_module("a/b-c.proto") == "a.b_c_pb2"
    assert output_path("chat/v1/chat.proto") == "chat/v1/chat_goomerang.py"
    assert output_path("nopkg.proto") == "nopkg_goomerang.py"


def test_import_aliases_are_short_and_unique() -> None:
    aliases = import_aliases(["chat.v1.chat_pb2", "chat.v2.chat_pb2", "common.types_pb2", "nopkg_pb2"])
    assert aliases == {
        "chat.v1.chat_pb2": "_v1_chat_pb2",
        "chat.v2.chat_pb2": "_v2_chat_pb2",
        "common.types_pb2": "_types_pb2",
        "nopkg_pb2": "_nopkg_pb2",
    }
    assert len(set(aliases.values())) == len(aliases)
