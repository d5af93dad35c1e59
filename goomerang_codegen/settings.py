"""The plugin's parameter (``--goomerang_opt=...``) parsed into typed settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PACKAGE_REFUSED", "Settings", "SettingsError"]

PACKAGE_REFUSED = (
    "plugin option package={package} is not supported: protoc's --python_out and --mypy_out keep absolute"
    " imports between the _pb2 modules, so the output would not import as a package."
    " Generate without it, then run `goomerang package --package {package} OUT` on the output directory"
    " (after protoc, or after `buf generate` with any strategy); or run `goomerang generate --package {package}`."
    " Without a package, put OUT on sys.path."
)


class SettingsError(ValueError):
    """A bad plugin parameter."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the plugin parameter can set: nothing yet; every key is refused with its reason.

    There is no ``package=``: protoc's ``--python_out`` and mypy-protobuf's
    ``--mypy_out`` write absolute imports (``from shop.v1 import money_pb2``)
    that a plugin cannot change, so a prefix on our modules alone gives a
    package that does not import. The plugin writes absolute imports like
    them; ``goomerang package`` (or ``goomerang generate``) then moves the
    whole output under a package.
    """

    @classmethod
    def parse(cls, parameter: str) -> Settings:
        """Parse ``key=value,key=value``; unknown keys or bad values raise SettingsError."""
        values: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in parameter.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise SettingsError(f"plugin option {item!r} is not key=value")
            if key in values:
                raise SettingsError(f"plugin option {key!r} is given twice")
            values[key] = value
        package = values.pop("package", None)
        if package is not None:
            raise SettingsError(PACKAGE_REFUSED.format(package=package or "NAME"))
        if values:
            raise SettingsError(f"unknown plugin option(s) {sorted(values)}: the plugin takes none")
        return cls()
