"""Fixtures of the interop suite: the Go peer binary, and a world per test and direction.

Without Go (or the Go library's source) the suite skips, saying why, unless
``GOOMERANG_REQUIRE_GO=1`` makes that a failure (CI sets it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from ..helpers import Certs
from .gobuild import GoUnavailable, build_go_peer
from .harness import Direction, Interop
from .table import ENV_VAR, Results

_results = Results()
MODULE_ORDER = ["test_messaging", "test_pubsub", "test_lifecycle", "test_limits", "test_wire", "test_relay"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scenario(name, column=...): the interop scenario (results table row) of a test; column if not by direction",
    )


@pytest.fixture(scope="session")
def go_peer() -> Path:
    """The Go peer binary, built once per session (and cached across sessions by source hash)."""
    try:
        return build_go_peer()
    except GoUnavailable as exc:
        if os.environ.get("GOOMERANG_REQUIRE_GO") == "1":
            pytest.fail(f"GOOMERANG_REQUIRE_GO=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(params=list(Direction), ids=[d.value for d in Direction])
def direction(request: pytest.FixtureRequest) -> Direction:
    """Both directions: a Python client against a Go server, a Go client against a Python server."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def interop(direction: Direction, go_peer: Path, certs: Certs, tmp_path: Path) -> AsyncIterator[Interop]:
    """Peers for one test; everything started through it is stopped at teardown."""
    world = Interop(direction, go_peer, certs, tmp_path)
    try:
        yield world
    finally:
        await world.aclose()


# The results table.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    marker = item.get_closest_marker("scenario")
    if marker is None:
        return
    callspec = getattr(item, "callspec", None)
    direction = callspec.params.get("direction") if callspec is not None else None
    column = direction.title if isinstance(direction, Direction) else str(marker.kwargs.get("column", "either"))
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            result = "pass"
        elif report.skipped:
            result = "skip"
        else:
            result = "fail" if report.when == "call" else "error"
        _results.add(str(marker.args[0]), column, result, item.nodeid, _rank(item))
    elif report.when == "teardown" and report.failed:
        _results.add(str(marker.args[0]), column, "error", item.nodeid, _rank(item))


def _rank(item: pytest.Item) -> int:
    """Where a test's module comes in the table (the order of the brief, not the alphabet)."""
    name = item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
    return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(ENV_VAR)
    if path and _results.rows:
        _results.write(Path(path))
