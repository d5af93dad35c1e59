"""A griffe extension: the runtime's reST roles in docstrings become cross-references for mkdocstrings.

The runtime's docstrings are written for ``help()`` and IDEs, with Sphinx
roles (:class:`ConfigError`, :meth:`Client.subscription`,
:class:`~goomerang_runtime.Server`) and ``::`` before literal blocks. Here,
before rendering, each role becomes an autorefs link to the object's
canonical path (so a broken reference fails ``mkdocs build --strict``), and
each ``::`` an ordinary colon before the indented block Markdown shows as code.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):`(?P<short>~)?(?P<target>[^`<>]+?)(?P<call>\(\))?`")
LITERAL = re.compile(r"(?m)(\S)::$")
BARE_LITERAL = re.compile(r"(?m)^(\s*)::$")
STDLIB = {"asyncio", "collections", "contextvars", "logging", "ssl", "typing", "websockets", "pydantic"}


def _private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


def _resolve(obj: griffe.Object | griffe.Alias, target: str) -> str | None:
    """The canonical path of `target` as seen from `obj`, or None."""
    root = obj.package
    if target.startswith("."):  # relative to the module's package, as in an import
        package = obj.module.path if obj.module.is_init_module else obj.module.path.rpartition(".")[0]
        dots = len(target) - len(target.lstrip("."))
        for _ in range(dots - 1):
            package = package.rpartition(".")[0]
        return _lookup(root, f"{package}.{target.lstrip('.')}")
    candidates = [target]
    scope: griffe.Object | griffe.Alias | None = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    for candidate in candidates:
        found = _lookup(root, candidate)
        if found is not None:
            return found
    # Relative to the module's imports: `ConfigError` imported from .errors.
    module = obj.module
    head, _, rest = target.partition(".")
    if head in module.members:
        member = module.members[head]
        path = member.target_path if member.is_alias else member.path  # type: ignore[union-attr]
        return _lookup(root, f"{path}.{rest}" if rest else path)
    return None


def _lookup(root: griffe.Module, path: str) -> str | None:
    top, _, rest = path.partition(".")
    if top != root.name:
        return None
    obj: Any = root
    for part in rest.split(".") if rest else []:
        try:
            obj = obj.members[part]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
        if obj.is_alias:
            try:
                obj = obj.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
    return str(obj.path)


def _convert(obj: griffe.Object | griffe.Alias, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rsplit(".", 1)[-1] if match["short"] else target
        shown += match["call"] or ""
        path = _resolve(obj, target)
        if path is not None and _private(path):
            return f"`{shown.lstrip('.')}`"  # a private module or name: no page to link to
        if path is None:
            if hasattr(builtins, target) or target.split(".")[0] in STDLIB:
                return f"`{shown}`"  # Python's own: shown as code
            return f"[`{shown}`][{target}]"  # left to autorefs: a warning if nothing has that anchor
        return f"[`{shown}`][{path}]"

    text = ROLE.sub(link, text)
    text = BARE_LITERAL.sub(r"\1", text)
    return LITERAL.sub(r"\1:", text)


class Roles(griffe.Extension):
    """Rewrite every docstring of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _convert(obj, obj.docstring.value)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            found.extend(_walk(member))
    return found
