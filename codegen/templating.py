"""Jinja2 environment for the generated C sources (templates/*.j2)."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATE_DIR = Path(__file__).parent / "templates"

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
    undefined=jinja2.StrictUndefined,  # a missing value is a codegen bug, never an empty string in C
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(template: str, **context) -> str:
    return _ENV.get_template(template).render(**context)
