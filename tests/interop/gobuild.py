"""Building the Go peer (tests/interop/gopeer) against the real Go library, without a module proxy.

The library's source (``GOOMERANG_GO_SRC``, by default ``../shared/goomerang-go``
next to the repository) is copied into a GOPATH tree as
``go.eloylp.dev/goomerang``; its dependencies come from Debian's
``golang-*-dev`` packages under ``/usr/share/gocode`` (see
``apt-packages.txt``). The binary is cached under
``GOOMERANG_INTEROP_CACHE`` (default ``~/.cache/goomerang-interop``), keyed
by a hash of every input, so it is rebuilt only when a source changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

__all__ = ["GoUnavailable", "build_go_peer", "go_env", "go_library_source"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEER_SOURCE = HERE / "gopeer"
SYSTEM_GOPATH = "/usr/share/gocode"
IMPORT_PATH = "goomerang-interop/gopeer"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY")


class GoUnavailable(Exception):
    """Go, or the Go library's source, is not there: the interop tests cannot run."""


def go_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without proxy variables.

    The Go client dials through ``http.ProxyFromEnvironment``; loopback tests
    must not go through a proxy.
    """
    env = dict(os.environ if base is None else base)
    for name in PROXY_VARIABLES:
        env.pop(name, None)
        env.pop(name.lower(), None)
    return env


def go_library_source() -> Path:
    """Where the Go library's source is; raises :class:`GoUnavailable` if absent."""
    src = Path(os.environ.get("GOOMERANG_GO_SRC", REPO.parent / "shared" / "goomerang-go"))
    if not (src / "client" / "client.go").is_file():
        raise GoUnavailable(f"the Go library's source is not at {src} (set GOOMERANG_GO_SRC)")
    return src


def _tree_digest(digest: hashlib._Hash, root: Path, skip: tuple[str, ...] = ()) -> None:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(rel == s or rel.startswith(s + "/") for s in skip):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")


def _go_version(go: str) -> str:
    out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def _make_writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def build_go_peer() -> Path:
    """The path of the built Go peer binary; builds it if its inputs changed.

    Raises :class:`GoUnavailable` without Go or the library's source, and
    :class:`RuntimeError` (with the compiler's output) when the build fails.
    """
    go = shutil.which("go")
    if go is None:
        raise GoUnavailable("no `go` on PATH (Debian: apt-get install $(cat tests/interop/apt-packages.txt))")
    src = go_library_source()
    digest = hashlib.sha256(_go_version(go).encode())
    _tree_digest(digest, src, skip=("internal/lab", ".git"))
    _tree_digest(digest, PEER_SOURCE)
    key = digest.hexdigest()[:16]
    cache = Path(os.environ.get("GOOMERANG_INTEROP_CACHE", Path.home() / ".cache" / "goomerang-interop"))
    binary = cache / f"gopeer-{key}"
    if binary.is_file():
        return binary
    work = cache / f"build-{key}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    library = work / "src" / "go.eloylp.dev" / "goomerang"
    shutil.copytree(src, library, ignore=shutil.ignore_patterns(".git"))
    _make_writable(library)
    shutil.rmtree(library / "internal" / "lab", ignore_errors=True)  # has its own go.mod
    shutil.copytree(PEER_SOURCE, work / "src" / IMPORT_PATH)
    env = go_env()
    env.update(
        GO111MODULE="off",
        GOFLAGS="",
        GOPATH=f"{work}:{SYSTEM_GOPATH}",
        GOCACHE=str(cache / "gocache"),
    )
    out = work / "gopeer"
    try:
        result = subprocess.run(
            [go, "build", "-o", str(out), IMPORT_PATH],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building the Go peer failed:\n{result.stdout}{result.stderr}")
        os.replace(out, binary)  # atomic: concurrent sessions never see half a binary
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(cache, keep=binary)
    return binary


def _prune(cache: Path, keep: Path, max_age: float = 7 * 86400) -> None:
    """Delete binaries of older sources not used for `max_age` seconds."""
    now = time.time()
    for old in cache.glob("gopeer-*"):
        if old != keep:
            with contextlib.suppress(OSError):
                if now - old.stat().st_atime > max_age:
                    old.unlink()
