from __future__ import annotations

from pathlib import Path

from goomerang_codegen.layout import add_init_files, rewrite_imports

PB2 = """from chat.v1 import chat_pb2 as chat_dot_v1_dot_chat__pb2
import nopkg_pb2 as nopkg__pb2
from google.protobuf import empty_pb2 as google_dot_protobuf_dot_empty__pb2
from goomerang import options_pb2 as goomerang_dot_options__pb2
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'chat.v1.chat_pb2', _globals)
"""

PYI = """import chat.v1.chat_pb2
import nopkg_pb2
x: chat.v1.chat_pb2.Foo
y: nopkg_pb2.Ping
"""


def test_rewrites_only_modules_generated_together() -> None:
    modules = ["chat.v1.chat_pb2", "nopkg_pb2"]
    assert rewrite_imports(PB2, modules, "generated") == (
        "from generated.chat.v1 import chat_pb2 as chat_dot_v1_dot_chat__pb2\n"
        "from generated import nopkg_pb2 as nopkg__pb2\n"
        "from google.protobuf import empty_pb2 as google_dot_protobuf_dot_empty__pb2\n"
        "from goomerang import options_pb2 as goomerang_dot_options__pb2\n"
        "_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'generated.chat.v1.chat_pb2', _globals)\n"
    )
    assert rewrite_imports(PYI, modules, "out.pkg") == (
        "import out.pkg.chat.v1.chat_pb2\n"
        "import out.pkg.nopkg_pb2\n"
        "x: out.pkg.chat.v1.chat_pb2.Foo\n"
        "y: out.pkg.nopkg_pb2.Ping\n"
    )


def test_rewriting_twice_changes_nothing() -> None:
    once = rewrite_imports(PB2, ["chat.v1.chat_pb2"], "generated")
    assert rewrite_imports(once, ["chat.v1.chat_pb2"], "generated") == once


def test_init_files_in_every_folder_with_modules(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "m_pb2.py").write_text("")
    (tmp_path / "empty").mkdir()
    created = add_init_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in created) == [
        "__init__.py",
        "a/__init__.py",
        "a/b/__init__.py",
    ]
    assert add_init_files(tmp_path) == []
