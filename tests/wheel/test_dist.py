"""The built sdist and wheel, installed into clean venvs outside the repository (issue 15.6-10)."""

from __future__ import annotations

import email.parser
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from .conftest import ROOT, Dists, Env

VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "goomerang_runtime" / "_version.py").read_text())
assert VERSION is not None


def _wheel_names(dists: Dists) -> set[str]:
    with zipfile.ZipFile(dists.wheel) as archive:
        return set(archive.namelist())


def _metadata(dists: Dists) -> email.message.Message:
    with zipfile.ZipFile(dists.wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_the_sdist_holds_what_builds_and_tests_the_package(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    top = {name.split("/")[0] for name in names}
    for needed in ("LICENSE", "NOTICE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"):
        assert needed in names, needed
    for directory in ("goomerang_runtime", "goomerang_codegen", "goomerang", "templates", "protos", "tests"):
        assert directory in top, directory
    assert "generated/chat/v1/chat_goomerang.py" in names  # the tests import the example output
    assert "tests/wheel/test_dist.py" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert not top & {".venv", ".venvs", ".ci", "dist", "build", ".git"}
    assert "goomerang/__init__.py" not in names


def test_the_wheel_has_three_import_packages_typed_and_licensed(dists: Dists) -> None:
    names = _wheel_names(dists)
    top = {name.split("/")[0] for name in names}
    info = f"goomerang-{VERSION[1]}.dist-info"
    assert top == {"goomerang", "goomerang_runtime", "goomerang_codegen", info}
    # The namespace holds the compiled annotations and `python -m goomerang`, no __init__.py.
    assert {n for n in names if n.startswith("goomerang/")} == {
        "goomerang/__main__.py",
        "goomerang/options_pb2.py",
        "goomerang/options_pb2.pyi",
        "goomerang/py.typed",
    }
    assert {"goomerang_runtime/py.typed", "goomerang_codegen/py.typed"} <= names
    assert "goomerang_codegen/templates/file.py.j2" in names
    assert "goomerang_codegen/include/goomerang/options.proto" in names
    assert {f"{info}/licenses/LICENSE", f"{info}/licenses/NOTICE"} <= names
    assert not any("__pycache__" in name for name in names)


def test_the_wheel_metadata(dists: Dists) -> None:
    meta = _metadata(dists)
    assert meta["Version"] == VERSION[1]
    assert meta["License-Expression"] == "Apache-2.0"
    assert set(meta.get_all("License-File") or []) == {"LICENSE", "NOTICE"}
    classifiers = set(meta.get_all("Classifier") or [])
    assert {f"Programming Language :: Python :: 3.{n}" for n in (11, 12, 13)} <= classifiers
    assert any(c.startswith("Development Status") for c in classifiers)
    assert meta.get_all("Project-URL")
    assert meta["Author"] or meta["Author-email"]
    requires = meta.get_all("Requires-Dist") or []
    plain = sorted(re.split(r"[<>=!; ]", r)[0] for r in requires if "extra ==" not in r)
    assert plain == ["protobuf", "pydantic", "typing-extensions", "websockets"]
    assert any(r.startswith("jinja2") and re.search(r"extra == ['\"]codegen['\"]", r) for r in requires)


PLUGIN_REQUEST = """
import subprocess, sys
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.compiler import plugin_pb2
from goomerang import options_pb2

request = plugin_pb2.CodeGeneratorRequest(file_to_generate=[options_pb2.DESCRIPTOR.name])
for name in ("google/protobuf/descriptor.proto", options_pb2.DESCRIPTOR.name):
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
    request.proto_file.append(proto)
done = subprocess.run([sys.argv[1]], input=request.SerializeToString(), capture_output=True, check=True)
print(plugin_pb2.CodeGeneratorResponse.FromString(done.stdout).error)
"""

# The runtime alone: any protobuf message works, here a well-known type, so no code is generated.
RUNTIME_ONLY = """
import asyncio, logging
from google.protobuf.wrappers_pb2 import StringValue
from goomerang_runtime import Client, Message, Sender, Server

logging.basicConfig(level=logging.WARNING)  # what the library reports, on stderr


async def greet(sender: Sender, msg: Message[StringValue]) -> None:
    await sender.send(StringValue(value="hi " + msg.payload.value))


async def main() -> None:
    server = Server()
    server.handle(StringValue, greet)
    async with server, Client(server=server.addr) as client:
        reply = await client.send_sync(StringValue(value="ana"), timeout=5.0, expect=StringValue)
        print(reply.payload.value)


asyncio.run(main())
"""


def test_a_plain_install_runs_the_runtime_and_names_the_extra_for_codegen(plain: Env) -> None:
    assert plain.check([plain.python, "-c", "import importlib.util as u; print(u.find_spec('jinja2'))"]) == "None\n"
    assert plain.check([plain.bin("goomerang"), "--version"]) == f"goomerang {VERSION[1]}\n"
    assert plain.check([plain.python, "-m", "goomerang", "--version"]) == f"goomerang {VERSION[1]}\n"
    where = plain.check([plain.python, "-c", "import goomerang_runtime as g; print(g.__file__, g.__version__)"])
    assert str(ROOT) not in where
    assert where.split()[1] == VERSION[1]
    (plain.work / "greet.py").write_text(RUNTIME_ONLY)
    done = plain.run([plain.python, "greet.py"])
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == "hi ana\n"
    assert done.stderr == b"", done.stderr.decode()
    # The plugin, run by protoc, answers with an error naming the extra; so does `goomerang generate`.
    (plain.work / "request.py").write_text(PLUGIN_REQUEST)
    said = plain.check([plain.python, "request.py", plain.bin("protoc-gen-goomerang")])
    assert said.strip() == "protoc-gen-goomerang needs jinja2, from the codegen extra: pip install 'goomerang[codegen]'"
    (plain.work / "a.proto").write_text('syntax = "proto3";\nmessage A {}\n')
    generate = plain.run([plain.bin("goomerang"), "generate", "-I", ".", "-o", "out", "a.proto"])
    assert generate.returncode == 2
    assert "pip install 'goomerang[codegen]'" in generate.stderr.decode()


def test_the_plugin_from_the_wheel_with_plain_protoc_beside_a_users_goomerang_protos(full: Env) -> None:
    include = Path(full.check([full.bin("goomerang"), "include-path"]).strip())
    assert str(ROOT) not in str(include)
    assert (include / "goomerang" / "options.proto").is_file()
    examples = ROOT / "protos" / "examples"
    out = full.work / "out"
    out.mkdir()
    full.check(
        [
            full.python,
            "-m",
            "grpc_tools.protoc",
            f"-I{examples}",
            f"-I{include}",
            f"--python_out={out}",
            f"--mypy_out={out}",
            f"--goomerang_out={out}",  # protoc finds protoc-gen-goomerang on PATH: the venv's
            "chat/v1/chat.proto",
            "goomerang/example/messages.proto",
        ]
    )
    assert (out / "chat" / "v1" / "chat_goomerang.py").read_text().startswith("# Generated by protoc-gen-goomerang.")
    # The user's own goomerang.example package installed beside ours, in the same site-packages.
    site = Path(full.check([full.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "goomerang" / "example").mkdir()
    for name in ("messages_pb2.py", "messages_pb2.pyi"):
        (site / "goomerang" / "example" / name).write_bytes((out / "goomerang" / "example" / name).read_bytes())
    (out / "app.py").write_text(
        "from chat.v1 import chat_goomerang as chat\n"
        "from goomerang import options_pb2\n"
        "from goomerang.example.messages_pb2 import MessageV1\n"
        "from goomerang_runtime import Server\n"
        "\n"
        "server = Server()\n"
        "chat.register_topic_kinds(server)\n"
        "side: int = options_pb2.CLIENT\n"
        "print(MessageV1(message='hi').message, side, chat.RoomsTopic.PATTERN)\n"
    )
    ran = Env(full.root, out).run([full.python, "app.py"])
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout.decode() == "hi 1 rooms.*\n"
    # The user's mypy --strict, against the wheel's environment, finds every package typed.
    typed = Env(full.root, out).run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable", full.python, "app.py"]
    )
    assert typed.returncode == 0, typed.stdout.decode()


# The README's programs, from the wheel: its `// protos/...` proto blocks written, its
# `goomerang generate` commands run, then each complete program (one calling asyncio.run).

README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_programs_run_from_the_wheel(full: Env) -> None:
    shutil.copytree(ROOT / "protos", full.work / "protos", dirs_exist_ok=True)  # the sdist has them too
    protos = [block for block in _blocks("proto") if block.startswith("// protos/")]
    for block in protos:
        path = full.work / block.splitlines()[0].removeprefix("// ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
    commands = [line.split("#")[0].split() for block in _blocks("bash") for line in block.splitlines()]
    for command in [c for c in commands if c[:2] == ["goomerang", "generate"]]:
        full.check([full.bin("goomerang"), *command[1:]])
    programs = [block for block in _blocks("python") if "asyncio.run(" in block]
    assert programs, "the README has no complete program"
    for index, program in enumerate(programs):
        imports = [line for line in program.splitlines() if line.startswith(("from ", "import "))]
        assert not [line for line in imports if "generated" in line], f"program {index} imports this checkout's code"
        script = full.work / f"readme_{index}.py"
        script.write_text("import logging\nlogging.basicConfig(level=logging.WARNING)\n" + program)
        done = full.run([full.python, script.name])
        assert done.returncode == 0, f"README program {index}:\n{done.stderr.decode()}"
        assert done.stderr == b"", f"README program {index} reported:\n{done.stderr.decode()}"


def test_getting_started_runs_step_by_step_from_the_wheel(dists: Dists, full: Env) -> None:
    """docs/getting-started.md as a new user follows it: its pip line installs this wheel, not this checkout."""
    from tests.test_docs import GETTING_STARTED, TITLE, blocks, shell_lines, snippet

    page = blocks(GETTING_STARTED)
    work = full.work / "getting-started"
    here = Env(full.root, work)
    for block in page:
        title = TITLE.search(block.attrs)
        if title is not None:
            [(name, _)] = block.includes
            target = work / title["title"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet(name).read_text())
    server: subprocess.Popen[str] | None = None
    address = ""
    ran: list[str] = []
    try:
        for block in page:
            for line in shell_lines(block) if block.lang == "bash" else []:
                words = [
                    str(dists.wheel) + word[9:] if word.startswith("goomerang[") else word for word in shlex.split(line)
                ]
                ran.append(words[0])
                if words[:2] == ["python", "app/server.py"]:
                    server = subprocess.Popen(
                        [str(full.python), "app/server.py", "127.0.0.1:0"],
                        cwd=work,
                        env=full.environ,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert server.stdout is not None
                    first = server.stdout.readline()  # the server prints it once it listens
                    assert first.startswith("listening on "), first
                    address = first.removeprefix("listening on ").strip()
                    continue
                if words[:2] == ["python", "app/client.py"]:
                    words = [*words[:2], address]
                program = full.python if words[0] == "python" else full.bin(words[0])
                done = here.run([program, *words[1:]])
                assert done.returncode == 0, f"{line}:\n{done.stdout.decode()}\n{done.stderr.decode()}"
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    assert {"pip", "goomerang", "python", "mypy"} <= set(ran)
    assert (work / "app" / "hello_gen" / "hello" / "v1" / "hello_goomerang.py").is_file()
