"""The two commands as a person meets them: versions, help, usage errors, what they need (issue 15.7, 15.9)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.compiler import plugin_pb2

import goomerang_runtime
from goomerang_codegen.cli import main

ROOT = Path(__file__).resolve().parents[2]
RST = re.compile(r"``|:(class|meth|func|mod|attr):`")

CHAT = """syntax = "proto3";
package shop.v1;
import "goomerang/options.proto";
message Order { string id = 1; }
message Placed { string id = 1; }
service Orders { rpc Place(Order) returns (Placed); }
"""

# A Python that cannot import what the codegen extra brings, as after a plain `pip install goomerang`.
WITHOUT_EXTRA = "import sys; sys.modules['jinja2'] = sys.modules['grpc_tools'] = None; "


def _run(args: list[str], stdin: bytes | None = b"", cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *args], input=stdin, cwd=cwd, capture_output=True, timeout=120, check=False)


def _request() -> bytes:
    """A CodeGeneratorRequest for goomerang/options.proto, as protoc would send it."""
    from goomerang import options_pb2

    request = plugin_pb2.CodeGeneratorRequest(file_to_generate=[options_pb2.DESCRIPTOR.name])
    for name in ("google/protobuf/descriptor.proto", options_pb2.DESCRIPTOR.name):
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
        request.proto_file.append(proto)
    return request.SerializeToString()


def test_goomerang_version(capsys: pytest.CaptureFixture[str]) -> None:
    done = _run(["-m", "goomerang", "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == f"goomerang {goomerang_runtime.__version__}"
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"goomerang {goomerang_runtime.__version__}"


@pytest.mark.parametrize("subcommand", [[], ["generate"], ["package"], ["include-path"]])
def test_help_is_plain_text(subcommand: list[str]) -> None:
    done = _run(["-m", "goomerang", *subcommand, "--help"])
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert text.startswith("usage: goomerang")
    assert not RST.search(text), text
    assert all(len(line) <= 100 for line in text.splitlines()), text


def test_the_plugin_answers_help_and_version() -> None:
    for args in (["--help"], ["-h"]):
        done = _run(["-m", "goomerang_codegen", *args])
        assert done.returncode == 0
        text = done.stdout.decode()
        assert text.startswith("usage: protoc-gen-goomerang")
        assert "--goomerang_out" in text
        assert "goomerang generate" in text
        assert not RST.search(text)
    done = _run(["-m", "goomerang_codegen", "--version"])
    assert done.stdout.decode().strip() == f"protoc-gen-goomerang {goomerang_runtime.__version__}"


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        ([], b"", "no CodeGeneratorRequest on stdin"),
        ([], b"\n not a request", "stdin is not a CodeGeneratorRequest"),
        (["--out", "x"], b"", "protoc passes none"),
    ],
)
def test_the_plugin_run_by_hand_is_a_usage_error(args: list[str], stdin: bytes, says: str) -> None:
    done = _run(["-m", "goomerang_codegen", *args], stdin=stdin)
    assert done.returncode == 2
    assert done.stdout == b""
    assert says in done.stderr.decode()
    assert "usage: protoc-gen-goomerang" in done.stderr.decode()


def test_the_plugin_still_serves_protoc() -> None:
    done = _run(["-m", "goomerang_codegen"], stdin=_request())
    assert done.returncode == 0, done.stderr
    response = plugin_pb2.CodeGeneratorResponse.FromString(done.stdout)
    assert not response.error


def test_the_plugin_without_the_codegen_extra_says_which_extra() -> None:
    done = _run(["-c", WITHOUT_EXTRA + "from goomerang_codegen.plugin import main; sys.exit(main())"], _request())
    assert done.returncode == 0, done.stderr  # protoc reads the error from the response and fails
    response = plugin_pb2.CodeGeneratorResponse.FromString(done.stdout)
    assert response.error == (
        "protoc-gen-goomerang needs jinja2, from the codegen extra: pip install 'goomerang[codegen]'"
    )


def test_generate_without_the_codegen_extra_says_which_extra(tmp_path: Path) -> None:
    (tmp_path / "a.proto").write_text('syntax = "proto3";\nmessage A {}\n')
    code = WITHOUT_EXTRA + "from goomerang_codegen.cli import main; sys.exit(main(sys.argv[1:]))"
    done = _run(["-c", code, "generate", "-I", str(tmp_path), "-o", str(tmp_path / "out"), "a.proto"])
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "goomerang generate: needs grpcio-tools, jinja2, from the codegen extra: pip install 'goomerang[codegen]'"
    )
    assert not (tmp_path / "out").exists()


def test_generate_counts_the_files_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "protos" / "shop" / "v1").mkdir(parents=True)
    (tmp_path / "protos" / "shop" / "v1" / "orders.proto").write_text(CHAT)
    out = tmp_path / "shopgen"
    assert main(["generate", "-I", str(tmp_path / "protos"), "-o", str(out), "shop/v1/orders.proto"]) == 0
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == [
        "__init__.py",
        "shop/__init__.py",
        "shop/v1/__init__.py",
        "shop/v1/orders_goomerang.py",
        "shop/v1/orders_pb2.py",
        "shop/v1/orders_pb2.pyi",
    ]
    assert capsys.readouterr().out.strip() == f"goomerang: wrote 6 files for 1 proto into {out}"
