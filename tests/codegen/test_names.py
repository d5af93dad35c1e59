from __future__ import annotations

import builtins
import re
from pathlib import Path

import pytest

from goomerang_codegen.names import (
    BUILTIN_TYPES,
    import_aliases,
    method_name,
    output_path,
    pb2_module,
    py_identifier,
    snake_case,
    topic_alias_problem,
    topic_class_name,
    with_reply_name,
)

ROOT = Path(__file__).resolve().parents[2]
BUILTINS_PROTO = ROOT / "protos" / "examples" / "edge" / "builtins" / "v1" / "builtins.proto"
LOWER_BUILTINS = sorted(name for name in dir(builtins) if name.islower() and not name.startswith("_"))


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


def test_builtin_types_cover_this_python() -> None:
    """A builtin class missing from the fixed set would give a method that shadows it."""
    assert {name for name in LOWER_BUILTINS if isinstance(getattr(builtins, name), type)} <= BUILTIN_TYPES


@pytest.mark.parametrize("name", LOWER_BUILTINS)
def test_methods_never_shadow_a_builtin_class(name: str) -> None:
    method = method_name(name[:1].upper() + name[1:])
    assert method.isidentifier()
    if isinstance(getattr(builtins, name), type):
        assert method == name + "_"
    assert method not in BUILTIN_TYPES
    assert with_reply_name(name[:1].upper() + name[1:]) == name + "_with_reply"


def test_the_builtins_example_has_an_rpc_per_builtin() -> None:
    """protos/examples/edge/builtins/v1/builtins.proto: every name in generated code and the typing tests."""
    rpcs = set(re.findall(r"^  rpc (\w+)\(", BUILTINS_PROTO.read_text(), flags=re.MULTILINE))
    assert {name[:1].upper() + name[1:] for name in LOWER_BUILTINS} <= rpcs


@pytest.mark.parametrize(
    ("alias", "problem"),
    [
        ("VenueHalts", ""),
        ("venueHalts", ""),
        (
            "venue-halts",
            "alias 'venue-halts' is not a Python identifier: use letters, digits and '_', e.g. 'VenueHalts'",
        ),
        ("1st", "alias '1st' is not a Python identifier"),
        ("class", ""),  # ClassTopic
        ("_Hidden", "alias '_Hidden' must start with a letter"),
    ],
)
def test_topic_alias_problems(alias: str, problem: str) -> None:
    found = topic_alias_problem(alias)
    assert found.startswith(problem) if problem else found == ""
