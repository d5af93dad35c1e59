"""Pydantic models that raise :class:`ConfigError` naming each bad field, never pydantic's own error.

The base of every validated options object (server, client, reconnect
policy, brokers): however one is built (the constructor, ``model_validate``,
``model_validate_json``, ``model_validate_strings``), a bad value raises a
:class:`~goomerang_runtime.errors.ConfigError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from .errors import ConfigError

__all__ = ["_Validated", "config_error"]


def config_error(owner: str, error: ValidationError) -> ConfigError:
    """The :class:`ConfigError` for pydantic's `error`: each bad field (dotted when nested) and why."""
    problems = {
        ".".join(str(part) for part in err["loc"]) or "options": err["msg"].removeprefix("Value error, ")
        for err in error.errors()
    }
    return ConfigError(owner, problems)


if TYPE_CHECKING:  # type checkers keep pydantic's signatures (a typed __init__, one parameter per field)
    _Validated = BaseModel
else:

    class _ConfigMeta(type(BaseModel)):
        def __call__(cls, *args, **kwargs):
            # Construction only: pydantic's own validation of nested models never comes here.
            try:
                return super().__call__(*args, **kwargs)
            except ValidationError as exc:
                raise config_error(cls.__name__, exc) from None

    class _Validated(BaseModel, metaclass=_ConfigMeta):
        @classmethod
        def model_validate(cls, obj, **options):
            try:
                return super().model_validate(obj, **options)
            except ValidationError as exc:
                raise config_error(cls.__name__, exc) from None

        @classmethod
        def model_validate_json(cls, json_data, **options):
            try:
                return super().model_validate_json(json_data, **options)
            except ValidationError as exc:
                raise config_error(cls.__name__, exc) from None

        @classmethod
        def model_validate_strings(cls, obj, **options):
            try:
                return super().model_validate_strings(obj, **options)
            except ValidationError as exc:
                raise config_error(cls.__name__, exc) from None
