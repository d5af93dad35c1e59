from __future__ import annotations

from goomerang_runtime import HookError
from goomerang_runtime.hooks import Hook


def test_hooks_run_in_order_and_a_raising_one_is_reported() -> None:
    calls: list[str] = []
    reported: list[BaseException] = []
    hook: Hook[[str]] = Hook("on_thing", reported.append)
    hook.add(lambda x: calls.append("first " + x))

    def boom(x: str) -> None:
        raise RuntimeError("boom " + x)

    hook.add(boom)
    hook.add(lambda x: calls.append("third " + x))
    hook("go")
    assert calls == ["first go", "third go"]
    assert len(reported) == 1
    assert isinstance(reported[0], HookError)
    assert "on_thing" in str(reported[0])
    assert "boom go" in str(reported[0])


def test_a_raising_error_hook_is_logged_not_raised(caplog: object) -> None:
    hook: Hook[[BaseException]] = Hook("on_error", None)

    def boom(err: BaseException) -> None:
        raise RuntimeError("nested")

    hook.add(boom)
    hook(ValueError("x"))  # must not raise
