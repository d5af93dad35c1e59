"""External tools the codegen tests drive: pyright and buf.

Each is found (or installed into a cache outside the repository) on first
use. Where one cannot be had, the test skips and says why, unless
``GOOMERANG_REQUIRE_TOOLS=1`` (set by CI) makes it fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF_VERSION = "1.75.0"
"""The npm package @bufbuild/buf the tests install."""


def _missing(what: str) -> None:
    if os.environ.get("GOOMERANG_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} (GOOMERANG_REQUIRE_TOOLS=1)")
    pytest.skip(what)


def pyright_command() -> list[str]:
    """How to run pyright: the dev extra's console script, beside this interpreter."""
    found = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    if found is None:
        _missing("pyright is not installed: pip install -e '.[dev]'")
    assert found is not None
    return [found]


def pyright_report(
    files: Sequence[Path], workdir: Path, extra_paths: Sequence[Path] = ()
) -> dict[str, list[tuple[int, str, str]]]:
    """Run pyright once, in strict mode, over `files`; its errors as file name -> [(line, rule, message)].

    The configuration is written to `workdir` (a scratch directory): strict,
    Python 3.11, this interpreter's packages, imports also from `extra_paths`,
    and nothing reported inside protoc's ``_pb2`` modules.
    """
    settings = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "extraPaths": [str(path) for path in extra_paths],
        "ignore": ["**/*_pb2.py", "**/*_pb2.pyi"],
    }
    (workdir / "pyrightconfig.json").write_text(json.dumps(settings))
    cmd = [*pyright_command(), "--outputjson", "--pythonpath", sys.executable, *(str(f) for f in files)]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no report (status {done.returncode}):\n{done.stdout}\n{done.stderr}")
    errors: dict[str, list[tuple[int, str, str]]] = {}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] != "error":
            continue
        line = int(diagnostic["range"]["start"]["line"]) + 1
        entry = (line, str(diagnostic.get("rule", "")), str(diagnostic["message"]))
        errors.setdefault(Path(diagnostic["file"]).name, []).append(entry)
    return errors


def buf_command(cache: Path) -> list[str]:
    """The buf CLI, from PATH or installed with npm into `cache` (outside the repository)."""
    found = shutil.which("buf")
    if found is not None:
        return [found]
    local = cache / "node_modules" / ".bin" / "buf"
    if not local.exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("buf is not on PATH and npm is not there to install @bufbuild/buf")
        assert npm is not None
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), f"@bufbuild/buf@{BUF_VERSION}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not local.exists():
            _missing(f"npm could not install @bufbuild/buf: {done.stderr.strip()[-500:]}")
    return [str(local)]


def buf_cache() -> Path:
    """Where the tests keep their buf: a user cache directory, reused between runs."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "goomerang-tests" / f"buf-{BUF_VERSION}"
