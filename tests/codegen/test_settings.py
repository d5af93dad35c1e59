from __future__ import annotations

import pytest

from goomerang_codegen.settings import Settings, SettingsError


def test_parse() -> None:
    assert Settings.parse("") == Settings()
    assert Settings.parse("package=generated") == Settings(package="generated")
    assert Settings.parse("package=my.pkg") == Settings(package="my.pkg")


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("colour=red", "unknown plugin option"),
        ("package", "not key=value"),
        ("package=a,package=b", "twice"),
        ("package=1abc", "not a dotted Python name"),
    ],
)
def test_bad_parameters(parameter: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.parse(parameter)
