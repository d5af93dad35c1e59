from __future__ import annotations

import pytest

from goomerang_codegen.settings import Settings, SettingsError


def test_parse() -> None:
    assert Settings.parse("") == Settings()
    assert Settings.parse(" , ") == Settings()


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("colour=red", "unknown plugin option"),
        ("colour", "not key=value"),
        ("colour=a,colour=b", "twice"),
        ("package=generated", "goomerang package --package generated OUT"),
        ("package=", "goomerang package --package NAME OUT"),
    ],
)
def test_bad_parameters(parameter: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.parse(parameter)
