from __future__ import annotations

import inspect

import goomerang_runtime
from goomerang_runtime import errors


def test_every_error_descends_from_the_root_and_is_exported() -> None:
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass) if obj.__module__ == errors.__name__]
    assert classes
    for cls in classes:
        assert issubclass(cls, errors.GoomerangError)
        assert cls.__name__ in errors.__all__
        assert getattr(goomerang_runtime, cls.__name__) is cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the tree in the docstring"


def test_usage_and_transport_branches_are_apart() -> None:
    assert not issubclass(errors.ConnectionLostError, errors.UsageError)
    assert not issubclass(errors.NotRunningError, errors.TransportError)
    assert issubclass(errors.SyncTimeoutError, TimeoutError)
    assert "status is CLOSED" in str(errors.NotRunningError("send", "CLOSED"))
    assert "1009" in str(errors.MessageTooBigError("x"))
