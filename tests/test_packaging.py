"""The distribution as the Python ecosystem sees it: layout, gencode, metadata, dependencies (issue 15).

What only a built wheel or sdist can show (their contents, a clean venv)
is in ``tests/wheel/``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

import goomerang_codegen
import goomerang_runtime

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXAMPLES = ROOT / "protos" / "examples"
INCLUDE = ROOT / "goomerang_codegen" / "include"


def _regen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regen", ROOT / "scripts" / "regen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=300, check=False)


# Item 3: gencode that every supported protobuf imports.


def test_committed_gencode_carries_no_runtime_version_check() -> None:
    """protoc 7's check refuses protobuf 5 and 6; CI imports this gencode on each of them instead."""
    note = _regen().NEUTRAL_NOTE
    files = [
        *sorted((ROOT / "goomerang_runtime").glob("*_pb2.py")),
        *sorted((ROOT / "goomerang").glob("*_pb2.py")),
        *sorted((ROOT / "generated").rglob("*_pb2.py")),
    ]
    assert len(files) >= 11
    for path in files:
        text = path.read_text()
        assert "_runtime_version" not in text, f"{path.relative_to(ROOT)}: run scripts/regen.py"
        assert note in text, path


def test_the_declared_protobuf_range_is_the_tested_one() -> None:
    (protobuf,) = [Requirement(dep) for dep in PROJECT["dependencies"] if Requirement(dep).name == "protobuf"]
    assert str(protobuf.specifier) == "<8,>=5.26.1"
    matrix = (ROOT / "scripts" / "matrix").read_text()
    assert '"protobuf==5.26.1' in matrix  # the floor
    assert '"protobuf>=6,<7' in matrix
    # This environment is one of them.
    assert protobuf.specifier.contains(importlib.metadata.version("protobuf"))


# Item 4: `goomerang` is a namespace package; a user's own goomerang.* protos import beside it.


def test_goomerang_is_a_namespace_package_holding_only_the_annotations_and_the_command() -> None:
    import goomerang

    assert getattr(goomerang, "__file__", None) is None  # a namespace package: no __init__.py
    assert sorted(path.name for path in (ROOT / "goomerang").iterdir() if path.name != "__pycache__") == [
        "__main__.py",
        "options_pb2.py",
        "options_pb2.pyi",
        "py.typed",
    ]


def test_a_users_own_goomerang_protos_import_beside_ours(tmp_path: Path) -> None:
    """Plain protoc output of the Go library's example protos (package goomerang.example), as protoc writes it."""
    out = tmp_path / "out"
    out.mkdir()
    protoc = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{EXAMPLES}",
        f"-I{INCLUDE}",
        f"--plugin=protoc-gen-mypy={Path(sys.executable).parent / 'protoc-gen-mypy'}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        "goomerang/example/messages.proto",
    ]
    done = _run(protoc, EXAMPLES)
    assert done.returncode == 0, done.stderr.decode()
    assert not (out / "goomerang" / "__init__.py").exists()  # protoc writes none
    (out / "app.py").write_text(
        "from goomerang import options_pb2\n"
        "from goomerang.example import messages_pb2\n"
        "\n"
        "message: messages_pb2.MessageV1 = messages_pb2.MessageV1(message='hi')\n"
        "side: int = options_pb2.CLIENT\n"
        "print(type(message).DESCRIPTOR.full_name, side)\n"
    )
    ran = _run([sys.executable, "app.py"], out)
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout.decode().split() == ["goomerang.example.MessageV1", "1"]
    typed = _run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "app.py"], out)
    assert typed.returncode == 0, typed.stdout.decode()


def test_python_m_goomerang_is_the_goomerang_command() -> None:
    version = _run([sys.executable, "-m", "goomerang", "--version"], ROOT)
    assert version.returncode == 0, version.stderr.decode()
    assert version.stdout.decode().strip() == f"goomerang {goomerang_runtime.__version__}"
    usage = _run([sys.executable, "-m", "goomerang", "--help"], ROOT)
    assert usage.returncode == 0
    assert all(command in usage.stdout.decode() for command in ("generate", "package", "include-path"))


def test_the_wheel_has_the_runtime_the_generator_and_the_namespace_only() -> None:
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["goomerang_runtime", "goomerang_codegen", "goomerang"]
    assert PROJECT["scripts"] == {
        "protoc-gen-goomerang": "goomerang_codegen.plugin:main",
        "goomerang": "goomerang_codegen.cli:console",
    }


# Item 6: licence, metadata, version.


def test_licence_files_are_there_and_declared() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE", "NOTICE"]
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    notice = (ROOT / "NOTICE").read_text()
    # The wire proto follows the Go library's, which is MIT: its notice ships with ours, word for word.
    go_licence = ROOT.parent / "shared" / "goomerang-go" / "LICENSE"
    mit = notice[notice.index("\nMIT License\n") + 1 :]
    assert "Copyright (c) 2021 Eloy" in mit
    assert "Permission is hereby granted, free of charge" in mit
    if go_licence.is_file():
        assert mit == go_licence.read_text()
    for path in ("protos/goomerang/protocol.proto", "protos/examples/goomerang/example/messages.proto"):
        assert path in notice
        assert (ROOT / path).is_file()


def test_metadata_says_what_a_user_looks_for() -> None:
    classifiers = set(PROJECT["classifiers"])
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert "Typing :: Typed" in classifiers
    assert "Framework :: AsyncIO" in classifiers
    pythons = {c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert pythons == {"3.11", "3.12", "3.13"}
    assert PROJECT["requires-python"] == ">=3.11"
    # The Pythons CI runs the suite on are the declared ones.
    matrix = (ROOT / "scripts" / "matrix").read_text()
    assert {f"3.{n}" for n in re.findall(r"PY=3\.(\d+)", matrix)} | {"3.11"} == pythons
    assert PROJECT["urls"]
    assert PROJECT["authors"]
    assert PROJECT["readme"] == "README.md"


def test_one_version_everywhere() -> None:
    version = goomerang_runtime.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert goomerang_codegen.__version__ == version
    assert importlib.metadata.version("goomerang") == version, "reinstall: scripts/setup dev"
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "goomerang_runtime/_version.py"
    assert "version" in PROJECT["dynamic"]
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()


# Item 7: the runtime depends on what it imports, and on nothing else.

RUNTIME_DEPENDENCIES = {"websockets", "protobuf", "pydantic", "typing-extensions"}
OURS = {"goomerang", "goomerang_runtime", "goomerang_codegen"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(module: str) -> str:
    """The distribution that provides `module` (a dotted name)."""
    top = module.partition(".")[0]
    if top == "google":  # a namespace shared by many distributions
        return {"google.protobuf": "protobuf"}.get(".".join(module.split(".")[:2]), module)
    owners = importlib.metadata.packages_distributions().get(top, [])
    return _normal(owners[0]) if len(owners) == 1 else _normal(top)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports:
    """What one module imports: third-party modules and our own, when it is imported (eager) or later (lazy)."""

    def __init__(self, name: str, path: Path) -> None:
        self.eager: set[str] = set()
        self.lazy: set[str] = set()
        self.internal: set[str] = set()
        self._package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self._visit(ast.parse(path.read_text(), str(path)), False)

    def _visit(self, node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                self._visit(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    self._visit(ast.Module(body=[statement], type_ignores=[]), True)
                for statement in child.orelse:
                    self._visit(ast.Module(body=[statement], type_ignores=[]), deferred)
            else:
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        self._add(alias.name, deferred)
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        parts = self._package.split(".")
                        parts = parts[: len(parts) - child.level + 1]
                        base = ".".join([*parts, base] if base else parts)
                    self._add(base, deferred)
                    for alias in child.names:  # `from . import _version` imports a module
                        self._add(f"{base}.{alias.name}", deferred, only_ours=True)
                self._visit(child, deferred)

    def _add(self, name: str, deferred: bool, only_ours: bool = False) -> None:
        top = name.partition(".")[0]
        if top in OURS:
            if not deferred:
                parts = name.split(".")
                self.internal.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
        elif not only_ours and top not in sys.stdlib_module_names and top != "__future__":
            (self.lazy if deferred else self.eager).add(_distribution(name))


def _modules(package: str) -> dict[str, _Imports]:
    modules: dict[str, _Imports] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = _Imports(name, path)
    return modules


def _loaded_with(modules: dict[str, _Imports], roots: set[str]) -> set[str]:
    """`roots` and every module of ours that importing them imports."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        todo.extend(modules[name].internal)
    return seen


def _extras() -> dict[str, set[str]]:
    return {
        extra: {_normal(Requirement(dep).name) for dep in deps}
        for extra, deps in PROJECT["optional-dependencies"].items()
        if extra != "dev"
    }


EXTRA_MODULES = {"goomerang_runtime.metrics": "metrics"}
"""Public runtime modules that need an extra (imported on their own, never by the package)."""


def test_runtime_dependencies_are_what_the_runtime_imports() -> None:
    declared = {_normal(Requirement(dep).name) for dep in PROJECT["dependencies"]}
    assert declared == RUNTIME_DEPENDENCIES
    extras = _extras()
    modules = _modules("goomerang_runtime")
    public = {name for name in modules if not any(part.startswith("_") for part in name.split("."))}
    core = _loaded_with(modules, public - EXTRA_MODULES.keys())
    assert "goomerang_runtime.metrics" not in core
    used = set().union(*(modules[name].eager for name in core))
    assert used == declared, f"importing the runtime imports {sorted(used)}; it declares {sorted(declared)}"
    for name, extra in EXTRA_MODULES.items():
        needs = set().union(*(modules[m].eager for m in _loaded_with(modules, {name}))) - declared
        assert needs, name
        assert needs <= extras[extra], f"{name} imports {sorted(needs)}; the {extra} extra has {extras[extra]}"
    optional = set().union(*extras.values())
    for name, imports in modules.items():
        later = imports.lazy | (imports.eager if name not in core else set())
        assert later <= declared | optional, f"{name} imports {sorted(later - declared - optional)}, in no extra"


def test_the_code_generator_needs_the_codegen_extra_only() -> None:
    extras = _extras()
    assert extras["codegen"] == {"jinja2", "grpcio-tools", "mypy-protobuf"}
    modules = _modules("goomerang_codegen")
    assert set().union(*(m.eager | m.lazy for m in modules.values())) <= RUNTIME_DEPENDENCIES | extras["codegen"]
    # The plugin and the command start without the extra and say which one they need (tests/codegen/test_usage.py).
    for entry in ("goomerang_codegen.plugin", "goomerang_codegen.cli"):
        started = _loaded_with(modules, {entry})
        assert set().union(*(modules[m].eager for m in started)) <= RUNTIME_DEPENDENCIES, entry


# Item 8: the README stands on its own, in the repository and on the package index.


def test_the_readme_links_only_to_files_of_the_repository_or_to_urls() -> None:
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"README links outside the repository: {target}"
        assert path.exists(), f"README links to a missing file: {target}"
    assert "../" not in text
