"""Every way to generate gives an importable, typed package from a multi-package proto set, or says what to do.

Routes: ``goomerang generate``; plain ``python -m grpc_tools.protoc`` (absolute imports,
the output directory on sys.path, or ``goomerang package`` after it); and buf (the npm
package @bufbuild/buf, installed into a cache outside the repository), with its default
per-directory strategy and with ``strategy: all``. ``package=`` given to the plugin
itself is refused with what to do instead, under protoc and under buf.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goomerang_codegen.cli import include_path, main

from .conftest import launcher
from .tools import buf_cache, buf_command, pyright_report

ROOT = Path(__file__).resolve().parents[2]

PROTOS = {
    "book/v1/common.proto": """syntax = "proto3";
package book.v1;
message Money { int64 cents = 1; }
""",
    "book/v1/orders/orders.proto": """syntax = "proto3";
package book.v1.orders;
import "goomerang/options.proto";
import "google/protobuf/empty.proto";
import "book/v1/common.proto";
message Order { string id = 1; book.v1.Money total = 2; }
message Refused { string why = 1; }
message CancelRequest { string id = 1; }
service Orders {
  rpc Place(Order) returns (book.v1.Money) { option (goomerang.also_replies) = "Refused"; }
  rpc Cancel(CancelRequest) returns (google.protobuf.Empty);
}
option (goomerang.topic) = {name: "orders.>" type: "Order"};
""",
    "venue/v1/venue.proto": """syntax = "proto3";
package venue.v1;
import "goomerang/options.proto";
import "google/protobuf/empty.proto";
import "book/v1/common.proto";
message Quote { string symbol = 1; book.v1.Money price = 2; }
service VenuePush {
  option (goomerang.handled_by) = CLIENT;
  rpc Quoted(Quote) returns (google.protobuf.Empty);
}
""",
    "venue/v1/halts.proto": """syntax = "proto3";
package venue.v1;
import "goomerang/options.proto";
message Halt { string symbol = 1; }
option (goomerang.topic) = {name: "venue.halts.*" type: "Halt" alias: "VenueHalts"};
""",
}

GOOMERANG_MODULES = (
    "book.v1.orders.orders_goomerang",
    "venue.v1.venue_goomerang",
    "venue.v1.halts_goomerang",
)

USER = '''"""What a user writes against the generated package."""

from __future__ import annotations

from typing import assert_type

import goomerang_runtime as rt
from {p}book.v1.common_pb2 import Money
from {p}book.v1.orders import orders_goomerang as orders
from {p}book.v1.orders.orders_pb2 import CancelRequest, Order, Refused
from {p}venue.v1 import halts_goomerang as halts
from {p}venue.v1 import venue_goomerang as venue
from {p}venue.v1.halts_pb2 import Halt
from {p}venue.v1.venue_pb2 import Quote


class Book(orders.OrdersBase):
    async def place(self, request: Order, ctx: orders.OrdersPlaceContext) -> orders.OrdersPlaceReply:
        ctx.reply_headers["book"] = "main"
        return Money(cents=request.total.cents) if request.id else Refused(why="no id")

    async def cancel(self, request: CancelRequest, ctx: orders.Context) -> None:
        await venue.VenuePushSender(ctx.server).broadcast(Quote(symbol=request.id))


class Screen(venue.VenuePushBase):
    async def quoted(self, request: Quote, ctx: venue.VenuePushQuotedContext) -> None:
        assert_type(ctx.message.payload, Quote)


async def use(server: rt.Server, client: rt.Client) -> None:
    orders.add_orders(server, Book())
    halts.register_topic_kinds(server)
    venue.add_venue_push(client, Screen())
    stub = orders.OrdersStub(client)
    assert_type(await stub.place(Order(id="1")), Money | Refused)
    assert_type(await stub.place_with_reply(Order(id="1")), rt.Message[Money | Refused])
    await halts.VenueHaltsTopic(client).publish("venue.halts.x", Halt(symbol="x"))
'''


def _write_protos(root: Path) -> list[str]:
    for name, text in PROTOS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sorted(PROTOS)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _imports(where: Path, prefix: str) -> None:
    """Every generated module imports from `where` (the directory on sys.path), in a fresh interpreter."""
    code = "import importlib\n" + "".join(f"importlib.import_module({prefix + m!r})\n" for m in GOOMERANG_MODULES)
    done = _run([sys.executable, "-c", code], where, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr


def _typed(where: Path, prefix: str, cache: Path) -> None:
    """A user's module over the output passes mypy --strict and pyright strict, from `where`."""
    user = where / "user_app.py"
    user.write_text(USER.format(p=prefix))
    done = _run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), user.name], where)
    assert done.returncode == 0, done.stdout
    errors = pyright_report([user], where, [where])
    assert errors == {}, errors


@pytest.fixture
def protos(tmp_path: Path) -> tuple[Path, list[str]]:
    src = tmp_path / "protos"
    return src, _write_protos(src)


@pytest.fixture
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "mypy-cache-routes"


def test_goomerang_generate_makes_a_package(tmp_path: Path, protos: tuple[Path, list[str]], mypy_cache: Path) -> None:
    src, names = protos
    app = tmp_path / "app"
    assert main(["generate", "-I", str(src), "-o", str(app / "bookgen"), *(str(src / n) for n in names)]) == 0
    _imports(app, "bookgen.")
    _typed(app, "bookgen.", mypy_cache)


def test_goomerang_generate_with_a_dotted_package(tmp_path: Path, protos: tuple[Path, list[str]]) -> None:
    src, names = protos
    app = tmp_path / "app"
    out = app / "my" / "gen"
    assert (
        main(["generate", "-I", str(src), "-o", str(out), "--package", "my.gen", *(str(src / n) for n in names)]) == 0
    )
    (app / "my" / "__init__.py").write_text("")
    _imports(app, "my.gen.")


def _protoc(src: Path, out: Path, names: list[str], goomerang_out: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = out.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{src}",
        f"-I{include_path()}",
        f"--plugin=protoc-gen-goomerang={launcher(bin_dir)}",
        f"--plugin=protoc-gen-mypy={Path(sys.executable).parent / 'protoc-gen-mypy'}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--goomerang_out={goomerang_out}",
        *names,
    ]
    return _run(cmd, src)


def test_plain_protoc_is_importable_from_its_output_dir(
    tmp_path: Path, protos: tuple[Path, list[str]], mypy_cache: Path
) -> None:
    src, names = protos
    out = tmp_path / "out"
    done = _protoc(src, out, names, str(out))
    assert done.returncode == 0, done.stderr
    _imports(out, "")
    _typed(out, "", mypy_cache)


def test_plain_protoc_then_goomerang_package(tmp_path: Path, protos: tuple[Path, list[str]]) -> None:
    src, names = protos
    out = tmp_path / "app" / "bookgen"
    assert _protoc(src, out, names, str(out)).returncode == 0
    assert main(["package", str(out)]) == 0
    assert main(["package", str(out)]) == 0  # twice changes nothing
    assert "from bookgen.book.v1 import common_pb2" in (out / "book" / "v1" / "orders" / "orders_pb2.py").read_text()
    _imports(tmp_path / "app", "bookgen.")


def test_plain_protoc_refuses_package_option(tmp_path: Path, protos: tuple[Path, list[str]]) -> None:
    src, names = protos
    out = tmp_path / "out"
    done = _protoc(src, out, names, f"package=bookgen:{out}")
    assert done.returncode != 0
    assert "plugin option package=bookgen is not supported" in done.stderr
    assert "goomerang package --package bookgen OUT" in done.stderr


def _buf_workspace(tmp_path: Path, strategy: str | None, opt: str | None) -> Path:
    """A buf v2 workspace: the protos, goomerang/options.proto vendored, protoc's python, mypy-protobuf and ours."""
    work = tmp_path / "work"
    _write_protos(work / "protos")
    shutil.copytree(include_path(), work / "vendor")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    protoc = bin_dir / "protoc"
    protoc.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grpc_tools.protoc "$@"\n')
    protoc.chmod(0o755)
    ours = launcher(bin_dir)
    (work / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\n  - path: vendor\n")
    extra = (f"    strategy: {strategy}\n" if strategy else "") + (f"    opt: {opt}\n" if opt else "")
    (work / "buf.gen.yaml").write_text(
        "version: v2\n"
        "inputs:\n  - directory: protos\n"
        "plugins:\n"
        f"  - protoc_builtin: python\n    protoc_path: {protoc}\n    out: out\n"
        f"  - local: {Path(sys.executable).parent / 'protoc-gen-mypy'}\n    out: out\n"
        f"  - local: {ours}\n    out: out\n{extra}"
    )
    return work


def _buf_generate(work: Path) -> subprocess.CompletedProcess[str]:
    buf = buf_command(buf_cache())
    env = {**os.environ, "BUF_CACHE_DIR": str(work / ".bufcache")}
    return _run([*buf, "generate"], work, env=env)


@pytest.mark.timeout(600)
def test_buf_per_directory_then_goomerang_package(tmp_path: Path, mypy_cache: Path) -> None:
    work = _buf_workspace(tmp_path, None, None)  # buf's default: one plugin run per directory
    done = _buf_generate(work)
    assert done.returncode == 0, done.stderr
    out = work / "out"
    _imports(out, "")  # absolute imports: consistent whatever each run saw
    app = tmp_path / "app"
    shutil.copytree(out, app / "bookgen")
    assert main(["package", str(app / "bookgen")]) == 0
    _imports(app, "bookgen.")
    _typed(app, "bookgen.", mypy_cache)


@pytest.mark.timeout(600)
def test_buf_strategy_all_gives_the_same_output(tmp_path: Path) -> None:
    per_dir = _buf_workspace(tmp_path / "a", None, None)
    at_once = _buf_workspace(tmp_path / "b", "all", None)
    assert _buf_generate(per_dir).returncode == 0
    assert _buf_generate(at_once).returncode == 0
    tree = {p.relative_to(per_dir / "out"): p.read_bytes() for p in (per_dir / "out").rglob("*_goomerang.py")}
    assert len(tree) == len(GOOMERANG_MODULES)
    assert tree == {p.relative_to(at_once / "out"): p.read_bytes() for p in (at_once / "out").rglob("*_goomerang.py")}


@pytest.mark.timeout(600)
def test_buf_refuses_package_option(tmp_path: Path) -> None:
    work = _buf_workspace(tmp_path, "all", "package=bookgen")
    done = _buf_generate(work)
    assert done.returncode != 0
    assert "plugin option package=bookgen is not supported" in done.stderr
    assert "goomerang package --package bookgen OUT" in done.stderr
