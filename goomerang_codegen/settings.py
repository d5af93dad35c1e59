"""The plugin's parameter (``--goomerang_opt=...``) parsed into typed settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A bad plugin parameter."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the plugin parameter can set.

    ``package=NAME``: the generated modules live in the Python package NAME
    (the output directory), so they import each other's ``_pb2`` modules as
    ``NAME.pkg.file_pb2``. Without it, imports are absolute from the output
    directory, like protoc's own ``--python_out``.
    """

    package: str | None = None

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
        if values:
            raise SettingsError(f"unknown plugin option(s) {sorted(values)}: the only one is 'package'")
        if package is not None and not all(part.isidentifier() for part in package.split(".")):
            raise SettingsError(f"plugin option package={package!r} is not a dotted Python name")
        return cls(package=package or None)
