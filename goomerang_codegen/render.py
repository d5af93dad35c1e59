"""Rendering: a pure function from a FileModel to the module's text."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from .model import FileModel

__all__ = ["render", "templates_dir"]


def templates_dir() -> Path:
    """Where the templates are: inside the wheel, or the repository's ``templates/``."""
    here = Path(__file__).resolve().parent
    shipped = here / "templates"
    return shipped if shipped.is_dir() else here.parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(file: FileModel) -> str:
    """The generated module for one `.proto` file."""
    return _environment().get_template("file.py.j2").render(file=file)
