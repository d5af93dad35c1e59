"""An MkDocs hook: the API reference covers every public module, and every public name has a docstring.

Run by ``mkdocs build --strict`` (see mkdocs.yml): each problem is a warning,
and strict mode turns warnings into a failed build. Public means: the
package ``goomerang_runtime`` and its modules whose names do not start with
``_`` (protoc's ``*_pb2`` modules aside); in each, the names of ``__all__``
(or, without it, the names not starting with ``_``); in each public class,
its methods and properties not starting with ``_``. A method that overrides
a documented one of a base class inherits that documentation.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import griffe

PACKAGE = "goomerang_runtime"
ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^:::\s+(?P<path>[\w.]+)\s*$", re.MULTILINE)

log = logging.getLogger(f"mkdocs.plugins.{__name__}")


def public_modules(pkg: griffe.Module) -> list[griffe.Module]:
    """The package and every public module under it."""
    found = [pkg]
    for name, member in pkg.members.items():
        if isinstance(member, griffe.Module) and not name.startswith("_") and not name.endswith("_pb2"):
            found.extend(public_modules(member))
    return found


def public_names(module: griffe.Module) -> list[str]:
    if module.exports is not None:
        return [name if isinstance(name, str) else name.name for name in module.exports]
    return [name for name in module.members if not name.startswith("_")]


def _inherited_docstring(cls: griffe.Class, name: str) -> bool:
    try:
        bases = cls.mro()
    except ValueError:
        return False
    for base in bases:
        member = base.members.get(name)
        if member is not None and member.docstring is not None and member.docstring.value.strip():
            return True
    return False


def problems(pkg: griffe.Module, rendered: set[str]) -> list[str]:
    """Every public module not in the reference, and every public name without a docstring."""
    found: list[str] = []
    modules = public_modules(pkg)
    paths = {module.path for module in modules}
    for module in modules:
        if module.path not in rendered:
            found.append(f"public module {module.path} is not rendered in docs/reference/ (add '::: {module.path}')")
        if not (module.docstring and module.docstring.value.strip()):
            found.append(f"public module {module.path} has no docstring")
        for name in public_names(module):
            member: Any = module.members.get(name)
            if member is None:
                found.append(f"{module.path}.__all__ names {name!r}, which the module does not define")
                continue
            if member.is_alias:
                if not member.target_path.startswith(f"{PACKAGE}."):
                    continue  # another package's name (protobuf's Message as ProtoMessage): the page says so
                try:
                    target = member.final_target
                except griffe.AliasResolutionError as exc:
                    if not exc.alias.target_path.startswith(f"{PACKAGE}."):
                        continue  # a re-export of a re-export of another package's name
                    found.append(f"{member.path} is re-exported from a place the reference cannot resolve")
                    continue
                except griffe.CyclicAliasError:
                    found.append(f"{member.path} is re-exported in a cycle")
                    continue
                if target.module.path in paths:
                    continue  # documented, and checked, in its own public module
                member = target  # defined in a private module: this public module documents it
            if not (member.docstring and member.docstring.value.strip()):
                found.append(f"public name {member.path} has no docstring")
            if member.is_class:
                for child_name, child in member.members.items():
                    if child_name.startswith("_") or child.is_alias or not child.is_function:
                        continue
                    documented = child.docstring and child.docstring.value.strip()
                    if not documented and not _inherited_docstring(member, child_name):
                        found.append(f"public method {child.path} has no docstring")
    return found


def rendered_paths(docs_dir: Path) -> set[str]:
    """Objects rendered by a ``::: path`` directive anywhere in the docs."""
    return {m["path"] for page in docs_dir.rglob("*.md") for m in DIRECTIVE.finditer(page.read_text())}


def check(docs_dir: Path) -> list[str]:
    pkg = griffe.load(PACKAGE, search_paths=[str(ROOT)], allow_inspection=False, resolve_aliases=True)
    assert isinstance(pkg, griffe.Module)
    return problems(pkg, rendered_paths(docs_dir))


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """Warn about each gap; ``--strict`` fails the build on any."""
    for problem in check(Path(config["docs_dir"])):
        log.warning("API reference: %s", problem)


EXPORTS = "<!-- exports -->"


def _private(path: str) -> bool:
    return any(part.startswith("_") for part in path.split("."))


def public_exports(pkg: griffe.Module) -> dict[str, str]:
    """Canonical path -> where a public module below the package re-exports it (rendered with that module)."""
    found: dict[str, str] = {}
    for module in public_modules(pkg)[1:]:
        for name in public_names(module):
            member: Any = module.members.get(name)
            if member is not None and member.is_alias:
                try:
                    found.setdefault(member.final_target.path, f"{module.path}.{name}")
                except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                    continue
    return found


def exports_table(pkg: griffe.Module) -> str:
    """A Markdown table of the package's exported names, each linked to where it is documented.

    Names defined in a private module have no page of their own: they are
    rendered below the table, under the package's name.
    """
    rows = ["| name | what it is |", "|---|---|"]
    here: list[str] = []
    for name in public_names(pkg):
        member: Any = pkg.members[name]
        try:
            target = member.final_target if member.is_alias else member
        except griffe.AliasResolutionError:
            rows.append(f"| `{name}` | protobuf's message base class, for annotations |")
            continue
        doc = target.docstring.value.strip().split("\n\n")[0].replace("\n", " ") if target.docstring else ""
        cell = doc.replace("|", "\\|")
        anchor = target.path
        if _private(target.module.path):
            shown = public_exports(pkg).get(target.path)
            anchor = shown or f"{pkg.path}.{name}"
            if shown is None:
                here.append(f"::: {anchor}")
        rows.append(f"| [`{name}`][{anchor}] | {cell} |")
    extra = "\n\n## Defined in the package itself\n\n" + "\n\n".join(here) if here else ""
    return "\n".join(rows) + extra


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the export table of the reference's index page."""
    if EXPORTS not in markdown:
        return markdown
    pkg = griffe.load(PACKAGE, search_paths=[str(ROOT)], allow_inspection=False, resolve_aliases=True)
    assert isinstance(pkg, griffe.Module)
    return markdown.replace(EXPORTS, exports_table(pkg))
