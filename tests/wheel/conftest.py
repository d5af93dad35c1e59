"""The sdist and the wheel as a user gets them, and clean venvs outside the repository to install the wheel into.

``python -m build`` makes the sdist, then the wheel from the sdist (so the
sdist is shown to be complete). Each venv is made with this interpreter's
Python and has only the wheel and what it pulls from the package index,
with or without extras; commands run in a directory outside the repository
and without ``PYTHONPATH``, so nothing of this checkout can be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from goomerang_runtime.config import TRANSPORT_ENV

ROOT = Path(__file__).resolve().parents[2]


def run(
    cmd: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; its output is what an assertion on it shows."""
    return subprocess.run([str(part) for part in cmd], cwd=cwd, env=env, input=stdin, capture_output=True, timeout=900)


def check(cmd: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = run(cmd, cwd, env)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}"
    return done.stdout.decode()


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Env:
    """A clean venv with the wheel installed, and a working directory outside the repository."""

    root: Path
    work: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    @property
    def environ(self) -> dict[str, str]:
        """The venv's bin first on PATH (protoc finds its plugins there), no PYTHONPATH, no venv of ours.

        Nor the run's transport: a plain install has no picows (GOOMERANG_TRANSPORT=picows runs are the same here).
        """
        hidden = ("PYTHONPATH", "VIRTUAL_ENV", TRANSPORT_ENV)
        env = {key: value for key, value in os.environ.items() if key not in hidden}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}/usr/bin:/bin"
        return env

    def run(self, cmd: Sequence[str | Path], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return run(cmd, self.work, self.environ, stdin)

    def check(self, cmd: Sequence[str | Path]) -> str:
        return check(cmd, self.work, self.environ)


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    check([sys.executable, "-m", "build", "--outdir", out, ROOT], ROOT)
    (sdist,) = out.glob("goomerang-*.tar.gz")
    (wheel,) = out.glob("goomerang-*.whl")
    return Dists(sdist, wheel)


def _install(tmp_path_factory: pytest.TempPathFactory, dists: Dists, name: str, extras: str) -> Env:
    base = tmp_path_factory.mktemp(name)
    root, work = base / "venv", base / "work"
    work.mkdir()
    venv.create(root, with_pip=True)
    target = f"{dists.wheel}[{extras}]" if extras else str(dists.wheel)
    env = Env(root, work)
    env.check([env.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", target])
    return env


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory, dists: Dists) -> Env:
    """`pip install goomerang`: the runtime alone."""
    return _install(tmp_path_factory, dists, "plain", "")


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory, dists: Dists) -> Env:
    """`pip install 'goomerang[codegen,metrics]'`: what the README's programs need."""
    return _install(tmp_path_factory, dists, "full", "codegen,metrics")
