from __future__ import annotations

import goomerang_runtime


def test_public_names() -> None:
    exported = set(goomerang_runtime.__all__)
    for name in exported:
        assert hasattr(goomerang_runtime, name), name
    assert {"Server", "Client", "Message", "Status", "GoomerangError", "Handler", "Sender", "Middleware"} <= exported
    assert not any(name.startswith("_") for name in exported)
